"""Pretrain a backbone on action-unit intensities: a frozen-backbone starting point where no weights exist.

DSID trains heads on a *pretrained*, frozen backbone (CLIP). The tiny backbones that let the demo and the
quick experiments run on a CPU have no published weights, and random frozen features carry no expression
information (heads on them stay at chance). This module gives them one: regress the per-frame AU
intensities of a prepared set (the manifest's ``annotations`` files, e.g. those ``unmask synth`` writes) from
its face crops, then save the backbone in its library's own checkpoint format, loadable through the normal
weights spec (``model.weights=FILE``).

Pretrain on subjects that are *not* in the evaluation set (``unmask demo`` uses a second synthetic set with
another seed, hence other identities), as one would with any pretrained backbone.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unmask.data.manifest import read_annotations
from unmask.data.transforms import Preprocess, build_augment, normalization, resize_uint8
from unmask.errors import UnmaskError
from unmask.runtime import seed_everything

if TYPE_CHECKING:
    from unmask.config import AugmentConfig
    from unmask.data.prepare import PreparedSet

log = logging.getLogger("unmask")


def load_au_frames(prepared: PreparedSet, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Every prepared frame with its AU intensities: uint8 ``[N, 3, size, size]``, float ``[N, A]``, AU names,
    subjects."""
    clips = prepared.manifest.by_id()
    images, targets, subjects = [], [], []
    names: list[str] | None = None
    for cid in prepared.clip_ids():
        clip = clips[cid]
        if clip.annotations is None:
            raise UnmaskError(f"clip {cid} (row {clip.row}) has no annotations file with AU intensities")
        aus = read_annotations(clip.annotations)["aus"]
        frames = prepared.meta(cid)["frames"]
        crops = [(frames[r], prepared.load(cid, r)) for r in prepared.roles(cid)]
        if frames.get("clip"):
            crops += list(zip(frames["clip"], prepared.load_clip(cid)))
        for index, crop in crops:
            if index not in aus:
                raise UnmaskError(f"{clip.annotations}: no AU intensities for frame {index}")
            names = names or sorted(aus[index])
            images.append(crop)
            targets.append([aus[index].get(a, 0.0) for a in names])
            subjects.append(clip.subject)
    if not images:
        raise UnmaskError(f"no prepared clips in {prepared.root}")
    stack = resize_uint8(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), size)
    return stack, torch.tensor(targets, dtype=torch.float32), names, subjects


def _full_clip_state(backbone) -> dict:
    """An open_clip CLIP backbone's whole-model state dict (what ``create_backbone(name, weights=FILE)`` loads
    strictly): its image tower as trained, under ``visual.``; where the backbone holds no text tower, the text
    tower, ``logit_scale`` etc. come from a freshly built (random-init) CLIP of the same architecture."""
    if backbone.has_text_tower:
        return backbone.model.state_dict()
    from unmask.models import create_backbone
    from unmask.models.weights import restoring_checkpoint

    with restoring_checkpoint():  # the random text tower is deliberate: no random-init warning
        full = create_backbone(backbone.name, weights=None, mode="frozen", text_tower=True, **backbone.build_args)
    full.model.visual.load_state_dict(backbone.model.state_dict(), strict=True)
    return full.model.state_dict()


def save_backbone_weights(backbone: nn.Module, path: str | Path) -> Path:
    """Save in the library's format: timm -> safetensors state dict; open_clip -> a torch state dict (.pt) of
    the whole CLIP model (image tower + text tower), the layout open_clip checkpoints have, so that
    ``create_backbone(name, weights=path)`` loads it strictly. A CLIP backbone built without its text tower
    gets a random-init one in the file: its image features are trained, its text alignment is not."""
    from unmask.models.backbones import ClipBackbone

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(backbone, ClipBackbone):
        if path.suffix == ".safetensors":
            raise UnmaskError(f"{path}: CLIP backbones are saved as open_clip state dicts; use a .pt suffix")
        state = _full_clip_state(backbone)
    else:
        state = backbone.model.state_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def pretrain_au(prepared_dir: str | Path, out: str | Path, *, backbone: str = "tiny_resnet", img_size: int | None = 64,
                epochs: int = 20, lr: float = 2e-3, batch_size: int = 32, seed: int = 0, augment: AugmentConfig | None = None,
                progress: bool = True, threads: int | None = 2) -> Path:
    """Fine-tune ``backbone`` (random init) + a linear AU head on a prepared set; save the backbone to ``out``.

    ``threads``: torch threads while it trains (restored afterwards; None: leave them as they are). Fixed by
    default because the weights depend on it: float reductions (conv and matmul backward) sum in another order
    with another thread count, and the epochs amplify that into other weights (tiny_resnet's differ by up to 1.1
    after 2 epochs at 1 vs 2 threads), hence other downstream numbers on a machine with more cores.

    ``out``'s suffix picks the format (``.safetensors`` for timm backbones, ``.pt`` for CLIP). A JSON sidecar
    (``out`` + ``.json``) records the AU names, subjects, settings and the loss per epoch.
    """
    from unmask.data.prepare import PreparedSet

    out = Path(out)
    prepared = PreparedSet(prepared_dir)  # a wrong folder fails before the backbone is built
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _pretrain(prepared, prepared_dir, out, backbone, img_size, epochs, lr, batch_size, seed, augment,
                         progress)
    finally:
        torch.set_num_threads(before)


def _pretrain(prepared, prepared_dir, out, backbone, img_size, epochs, lr, batch_size, seed, augment,
              progress) -> Path:
    from unmask.config import AugmentConfig
    from unmask.models import create_backbone

    seed_everything(seed)
    kwargs = {"img_size": img_size} if img_size else {}
    bb = create_backbone(backbone, weights=None, mode="finetune", **kwargs)
    size = bb.data_config["input_size"][-1]
    images, targets, names, subjects = load_au_frames(prepared, size)
    augment = augment or AugmentConfig(hflip=True, rotation=5.0, color_jitter=0.2)
    mean, std = normalization(augment, bb.data_config)
    pre = Preprocess(mean, std, build_augment(augment))
    head = torch.nn.Linear(bb.num_features, len(names))
    opt = torch.optim.Adam(list(bb.parameters()) + list(head.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    history = []
    t0 = time.time()
    bar = tqdm(range(epochs), desc=f"AU pretraining {backbone}", unit="ep", disable=not progress)
    for _ in bar:
        bb.train()
        perm = torch.randperm(len(images), generator=gen)
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:
                continue
            loss = torch.nn.functional.mse_loss(head(bb(pre(images[idx], train=True))), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append(total / len(perm))
        bar.set_postfix(mse=f"{history[-1]:.4f}")
    save_backbone_weights(bb, out)
    Path(f"{out}.json").write_text(json.dumps({
        "backbone": backbone, "img_size": img_size, "task": "AU intensity regression (MSE)", "aus": names,
        "prepared": str(Path(prepared_dir).resolve()), "subjects": sorted(set(subjects)), "frames": len(images),
        "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
        "torch_threads": torch.get_num_threads(),  # the weights depend on it (float summation order)
        "mse_per_epoch": history,
        "target_variance": float(targets.var(0).mean()), "seconds": round(time.time() - t0, 1)}, indent=2))
    log.info("AU pretraining: MSE %.4f -> %.4f (target variance %.4f); weights in %s", history[0], history[-1],
             float(targets.var(0).mean()), out)
    return out
