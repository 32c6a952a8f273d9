"""Run on the pre-refactor code (commit c3e31af) to produce tests/data/regression_reference.json."""
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
import pandas as pd

from unmask.cli import main
from unmask.data.prepare import prepare
from unmask.synth.masked import SynthConfig, generate

RUNS = {
    "dsid_frozen": ["model.name=dsid", "model.backbone=tiny_resnet", "model.adapter_dim=32", "model.branch_dim=16"],
    "dsid_clip_paradigm": ["model.name=dsid", "model.backbone=tiny_resnet", "model.adapter_dim=32",
                           "model.branch_dim=16", "data.paradigm=clip"],
    "single_stream_disguised": ["model.name=single_stream", "model.backbone=tiny_vit", "model.task=disguised",
                                "model.adapter_dim=32"],
    "clip_linear_probe": ["model.name=clip_linear_probe", "model.backbone=tiny_clip_vit"],
    "dsid_finetune": ["model.name=dsid", "model.backbone=tiny_resnet", "model.adapter_dim=32", "model.branch_dim=16",
                      "model.mode=finetune", "optim.epochs=2"],
}
COMMON = ["model.weights=null", "model.img_size=32", "optim.epochs=3", "optim.patience=3", "optim.batch_size=16",
          "features.views=2", "features.precision=fp32", "runtime.threads=1"]

import unmask.train.engine as E

_old = E.model_kwargs
def _kw(cfg):  # the old CLI passed model.mode to the CLIP baselines, which set it themselves (a TypeError)
    kw = _old(cfg)
    if kw["name"].startswith("clip_"):
        kw.pop("mode")
    return kw
E.model_kwargs = _kw
root = Path(tempfile.mkdtemp())
manifest = generate(root / "synth", SynthConfig(subjects=3, seed=0, width=160, height=120), progress=False)
prepare(manifest, root / "prepared", detector="annotated", size=64, clip_frames=4, progress=False)
ref = {}
for name, extra in RUNS.items():
    out = root / name
    args = ["train", "--config", "dsid_synth", f"data.prepared={root/'prepared'}", *COMMON, *extra, "--out", str(out), "--quiet"]
    assert main(args) == 0, name
    folds = {}
    for f in sorted((out / "folds").iterdir()):
        m = json.loads((f / "metrics.json").read_text())
        p = pd.read_csv(f / "predictions.csv")
        probs = {c: p[c].round(5).tolist() for c in p.columns if "_p_" in c}
        folds[f.name] = {"best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
                         "metrics": {t: m[t] for t in ("true", "disguised") if t in m},
                         "clip_ids": p.clip_id.tolist(), "probs": probs}
    ref[name] = {"overrides": COMMON + extra, "folds": folds}
# zero-shot: the old engine could not run a model without a trainable head, so its reference is the model's
# forward on the apex crops (unaugmented, ImageNet normalisation), with the seed train_run sets before building
import torch

from unmask.data.datasets import load_frames
from unmask.data.prepare import PreparedSet
from unmask.data.transforms import Preprocess
from unmask.models import create_model

torch.manual_seed(0)
zs = create_model("clip_zero_shot", backbone="tiny_clip_vit", weights=None, img_size=32).eval()
data = load_frames(PreparedSet(root / "prepared"), "apex", size=32)
pre = Preprocess((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
with torch.no_grad():
    out = zs(pre(data.images, train=False))
from unmask.emotions import EMOTIONS

probs = out["true_logits"].softmax(-1).numpy()
ref["clip_zero_shot"] = {"overrides": COMMON + ["model.name=clip_zero_shot", "model.backbone=tiny_clip_vit"],
    "clip_ids": data.clip_ids, "probs": {f"p_{e}": [round(float(x), 5) for x in probs[:, j]] for j, e in enumerate(EMOTIONS)}}
Path(sys.argv[1]).write_text(json.dumps(ref, indent=1))
print("wrote", sys.argv[1])
