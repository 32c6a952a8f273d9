"""``facex``: the ``facex`` package's expression model (MobileNetV2, tflite) as a frozen backbone.

The model ships only as a tflite flatbuffer (int8 weights dequantised at run time), so it runs through
``ai-edge-litert``'s interpreter, on the CPU, and cannot be fine-tuned. Its graph ends::

    out_relu (ReLU6)   [B, 6, 6, 1280]   <- tokens [B, 36, 1280]; their average is the embedding, D = 1280
    FULLY_CONNECTED    [B, 7]            (over the flattened map, 46080 inputs)
    SOFTMAX            [B, 7]            <- classify(): the log of these, in FACEX_LABELS order

The features tensor is found by name in the interpreter's tensor details; reading an intermediate tensor
needs ``experimental_preserve_all_tensors`` and the builtin kernels (the XNNPACK delegate fuses it away).

Preprocessing as ``facex.EmotionClassifier.predict`` does it: BGR -> grey, ``skimage.transform.resize`` to
(200, 200, 3) (the grey image repeated over 3 channels, scaled to [0, 1]). Here ``data_config`` says mean 0,
std 1 (train with ``augment.normalization=backbone``) and the model takes the grey mix of the channels.

Weights: ``None`` or ``"facex"`` (the cached file, ``unmask weights fetch facex``), or a local ``.tflite``.
There is no random initialisation: the file is the architecture. A buffer holds the file's sha256, so the
feature cache and checkpoints tell one file from another.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import register_backbone
from unmask.models.backbones import Backbone, parse_mode
from unmask.models.fer import GREY_WEIGHTS

#: The package's class order (``EmotionClassifier.category``).
FACEX_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
FEATURES_TENSOR = "out_relu/Relu6"  # suffix of the feature map's tensor name


class TfliteModel(nn.Module):
    """A tflite interpreter behind ``forward(x: [B, 200, 200, 3] float32 numpy) -> (features, probs)``.

    The interpreter is created lazily per copy (it cannot be deep-copied or pickled) and used under a lock.
    """

    def __init__(self, path: Path):
        super().__init__()
        from unmask.models.packaged import sha256_file

        self.path = Path(path)
        digest = bytes.fromhex(sha256_file(self.path))
        self.register_buffer("file_sha256", torch.tensor(list(digest), dtype=torch.uint8))  # [32]
        self._interpreter = None
        self._lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_interpreter"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _make(self):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": we read one intermediate
            warnings.simplefilter("ignore", UserWarning)
            it = Interpreter(model_path=str(self.path), num_threads=max(1, torch.get_num_threads()),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                             experimental_preserve_all_tensors=True)
        found = [t["index"] for t in it.get_tensor_details() if t["name"].endswith(FEATURES_TENSOR)]
        if len(found) != 1:
            raise UnmaskError(f"{self.path}: no single '{FEATURES_TENSOR}' tensor; is this facex's model?")
        self._features_index, self._batch = found[0], 0
        return it

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # -> tokens [B, 36, 1280], probs [B, 7]
        with self._lock:
            if self._interpreter is None:
                self._interpreter = self._make()
            it = self._interpreter
            inp = it.get_input_details()[0]["index"]
            if self._batch != len(x):
                it.resize_tensor_input(inp, list(x.shape))
                it.allocate_tensors()
                self._batch = len(x)
            it.set_tensor(inp, np.ascontiguousarray(x, dtype=np.float32))
            it.invoke()
            fmap = it.get_tensor(self._features_index)  # [B, 6, 6, 1280]
            probs = it.get_tensor(it.get_output_details()[0]["index"])  # [B, 7]
        return fmap.reshape(len(fmap), -1, fmap.shape[-1]).copy(), probs.copy()  # [B, 36, 1280], [B, 7]


class FacexBackbone(Backbone):
    labels = FACEX_LABELS

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.tensor(GREY_WEIGHTS, dtype=torch.float32).view(1, 3, 1, 1)
        grey = (x.detach().float().cpu() * w).sum(dim=1, keepdim=True)  # [B, 1, H, W]
        nhwc = grey.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()  # [B, H, W, 3], grey in every channel
        feats, probs = self.model(nhwc)
        return (torch.from_numpy(feats).to(x.device, x.dtype),
                torch.from_numpy(probs).to(x.device, x.dtype))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, 200, 200] -> tokens [B, 36, 1280]
        return self._run(x)[0]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:  # -> [B, 1280]
        return tokens.mean(dim=1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, 200, 200] -> [B, 7] log-probabilities
        return self._run(x)[1].clamp_min(1e-12).log()


@register_backbone
def facex(weights: str | os.PathLike | None = None, mode: str | int = "frozen") -> Backbone:
    """The ``facex`` package's MobileNetV2 expression model (tflite, via ai-edge-litert), frozen, D=1280."""
    if parse_mode(mode)[0] != "frozen":
        raise UnmaskError(f"backbone facex runs as a tflite model and cannot be trained; mode must be 'frozen', "
                          f"got {mode!r}")
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        raise UnmaskError("backbone facex needs ai-edge-litert: pip install 'unmask[realface]'") from None
    spec = W.parse_weights(weights)
    if spec.kind == "file":
        path = spec.path
    elif spec.kind == "none" or spec.value == "facex":
        from unmask.models.packaged import resolve

        path = resolve("facex", "tflite")
    else:
        raise UnmaskError(f"unknown weights {spec.value!r} for facex; pass 'facex' (or nothing: the package's "
                          f"model, `unmask weights fetch facex` once) or a local .tflite file")
    model = TfliteModel(path)
    data_config = {"input_size": (3, 200, 200), "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                   "interpolation": "bilinear", "own_scaling": "facex"}
    return FacexBackbone("facex", model, num_features=1280, data_config=data_config, build_args={}, mode="frozen",
                         blocks=[])
