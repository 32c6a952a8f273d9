"""Image backbones: tokens, a pooled embedding, and the preprocessing they expect.

Names keep timm's meanings: ``forward_features(x)`` returns the token sequence ``[B, N, C]`` (a ViT's tokens after
its final norm, prefix tokens first; a CNN's last feature map as ``h * w`` tokens), ``forward_head(tokens,
pre_logits=True)`` the pooled embedding ``[B, D]``, and ``forward(x)`` is the two in a row. Models that pool,
attend to or sparsify tokens read ``forward_features``; the adapter heads and the feature cache read
``forward(x)``.

Registered (``list_backbones()``): ``clip_vit_b16`` (open_clip ``ViT-B-16`` image tower), ``vit_b16``
(timm ``vit_base_patch16_224``), ``resnet18`` (timm), and CPU-sized twins ``tiny_clip_vit``, ``tiny_vit``,
``tiny_resnet`` built by the same code paths.

Feature definitions (``num_features`` = D):

* timm ViT: the CLS token after the final norm (timm ``forward_head(pre_logits=True)``), D = embed dim;
* ResNet: global average pool of the last stage, D = its channels;
* CLIP: the **projected** image embedding (CLS token after ``ln_post``, times ``proj``; not L2-normalised),
  D = CLIP's ``embed_dim`` (512 for ViT-B/16). Chosen so that zero-shot, linear-probe and DSID heads all read
  the same vector, the one CLIP aligned with text.

Training modes: ``"frozen"`` (no gradients, kept in eval mode even when the model trains), ``"finetune"``,
``"last_n_blocks=N"`` (also ``"last_n_blocks:N"`` or the int N): the last N transformer blocks (ResNet: stages)
plus what follows them (final norm; CLIP's ``proj``) train, the rest is frozen and kept in eval mode.
A CLIP text tower, when built (zero-shot), is always frozen.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import BACKBONES, register_backbone

logger = logging.getLogger("unmask")

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip OPENAI_DATASET_MEAN / STD
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def parse_mode(mode: str | int) -> tuple[str, int]:
    """``"frozen"`` | ``"finetune"`` | ``"last_n_blocks=N"`` | ``"last_n_blocks:N"`` | N -> (kind, N)."""
    if isinstance(mode, bool):
        raise UnmaskError(f"invalid backbone mode {mode!r}")
    if isinstance(mode, int):
        kind, n_text = "last_n_blocks", str(mode)
    elif mode in ("frozen", "finetune"):
        return mode, 0
    else:
        kind, sep, n_text = str(mode).replace(":", "=").partition("=")
        if kind != "last_n_blocks" or not sep:
            kind = ""
    if kind == "last_n_blocks" and n_text.strip().isdigit() and int(n_text) >= 1:
        return kind, int(n_text)
    raise UnmaskError(f"invalid backbone mode {mode!r}; expected 'frozen', 'finetune', 'last_n_blocks=N' "
                      f"(or 'last_n_blocks:N' or an int N >= 1)")


class Backbone(nn.Module):
    """Base class: wraps a library model, owns the freezing policy and the preprocessing config.

    ``blocks`` are the model's sequential stages (transformer blocks, ResNet stages) in order, ``tail`` the
    modules/parameters after the last block (final norm, projection) that train with ``last_n_blocks``.
    """

    def __init__(self, name: str, model: nn.Module, *, num_features: int, data_config: dict[str, Any],
                 build_args: dict[str, Any], mode: str | int, blocks: Sequence[nn.Module],
                 tail: Sequence[nn.Module | nn.Parameter] = ()):
        super().__init__()
        self.name = name
        self.model = model
        self.num_features = int(num_features)
        self.data_config = dict(data_config)
        self.build_args = dict(build_args)  # architecture kwargs (resolved), excluding weights/mode
        self._blocks = list(blocks)
        self._tail = list(tail)
        self.mode = mode
        self.set_mode(mode)

    # -- features ----------------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> tokens [B, N, C]
        raise NotImplementedError

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:  # [B, N, C] -> [B, D]
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> the pooled embedding [B, D]
        return self.forward_head(self.forward_features(x))

    @property
    def image_tower(self) -> nn.Module:
        return self.model

    # -- freezing ----------------------------------------------------------------------------------
    def set_mode(self, mode: str | int) -> None:
        kind, n = parse_mode(mode)
        if kind == "last_n_blocks" and n > len(self._blocks):
            raise UnmaskError(f"mode {mode!r}: backbone {self.name} has only {len(self._blocks)} blocks")
        self.mode = mode
        for p in self.parameters():
            p.requires_grad_(False)
        if kind == "finetune":
            for p in self.image_tower.parameters():
                p.requires_grad_(True)
        elif kind == "last_n_blocks":
            for item in self._blocks[len(self._blocks) - n:] + self._tail:
                params = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
                for p in params:
                    p.requires_grad_(True)
        self.train(self.training)
        counts = self.param_counts()
        logger.info("backbone %s mode=%s: %d trainable, %d frozen parameters",
                    self.name, mode, counts["trainable"], counts["frozen"])

    def train(self, mode: bool = True) -> Backbone:
        """Frozen sub-modules (every parameter frozen) stay in eval mode, so BatchNorm/dropout do not move."""
        super().train(mode)
        if mode:
            done: list[str] = []
            for name, module in self.named_modules():
                if any(name.startswith(prefix) for prefix in done):
                    continue  # inside a frozen sub-tree already put in eval mode
                params = list(module.parameters())
                if params and not any(p.requires_grad for p in params):
                    nn.Module.train(module, False)  # whole sub-tree (param-less dropout included)
                    done.append(f"{name}." if name else "")
        return self

    # -- inference copy ----------------------------------------------------------------------------
    def inference_copy(self, dtype: torch.dtype, device: torch.device | str | None = None) -> Backbone:
        """A copy of this backbone for inference (feature extraction, prediction) whose floating-point
        parameters and buffers are cast once to ``dtype`` (and moved to ``device``); ``self`` is untouched and
        shares no storage with the copy. The copy computes the same ``forward_features`` (up to ``dtype``
        rounding) but may be rewritten into a faster equivalent form, so it is not meant for training."""
        return _cast_copy(self, dtype, device, self._inference_scales())

    def _inference_scales(self) -> dict[int, float]:
        """``id(tensor) -> factor``: parameters the inference copy stores multiplied by ``factor``."""
        return {}

    def param_counts(self) -> dict[str, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"trainable": trainable, "frozen": frozen}


def _cast_copy(module: nn.Module, dtype: torch.dtype, device, scales: dict[int, float]) -> nn.Module:
    """``copy.deepcopy(module)`` whose floating-point tensors are created directly in ``dtype`` on ``device``
    (no full-precision intermediate copy: a deepcopy then ``.to(bf16)`` of CLIP ViT-B/16 took 0.7-0.9 s on this
    CPU), a tensor listed in ``scales`` multiplied by its factor in fp32 before the cast (one rounding)."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(module.parameters(), module.buffers()):
        if id(t) in memo or not t.is_floating_point():
            continue
        value = t.detach()
        factor = scales.get(id(t))
        if factor is None:
            value = value.to(device=device or value.device, dtype=dtype, copy=True)
        else:
            value = (value.float() * factor).to(device=device or value.device, dtype=dtype)
        memo[id(t)] = nn.Parameter(value, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else value
    return copy.deepcopy(module, memo)


class TimmBackbone(Backbone):
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.model.forward_features(x)  # ViT [B, N, D]; ResNet [B, C, h, w]
        return tokens.flatten(2).transpose(1, 2) if tokens.dim() == 4 else tokens  # [B, N, C]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        if self._spatial:  # a CNN's map as tokens: global average pool (timm's avg pool, the same numbers)
            return tokens.mean(1)  # [B, C]
        return self.model.forward_head(tokens, pre_logits=True)  # [B, D]

    @property
    def _spatial(self) -> bool:
        return not hasattr(self.model, "patch_embed")


class ClipBackbone(Backbone):
    """open_clip CLIP image tower; with ``text_tower=True`` the whole CLIP model (for zero-shot)."""

    @property
    def has_text_tower(self) -> bool:
        return hasattr(self.model, "encode_text")

    @property
    def image_tower(self) -> nn.Module:
        return self.model.visual if self.has_text_tower else self.model

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """open_clip's image tower up to its tokens ``[B, 1 + grid**2, width]`` (class token first), after
        ``ln_post`` unless the tower normalises after pooling; the same steps as its ``forward``."""
        vt = self.image_tower
        if getattr(vt, "attn_pool", None) is not None:
            raise UnmaskError(f"backbone {self.name}: attention-pooled CLIP towers have no token output here")
        t = vt.transformer(vt._embeds(x))
        return t if vt.final_ln_after_pool else vt.ln_post(t)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        vt = self.image_tower
        pooled, _ = vt._global_pool(tokens)
        if vt.final_ln_after_pool:
            pooled = vt.ln_post(pooled)
        return pooled @ vt.proj if vt.proj is not None else pooled  # [B, embed_dim], projected, not normalised

    _QUICK_GELU = 1.702  # open_clip QuickGELU: x * sigmoid(1.702 x)

    def _quick_gelu_mlps(self) -> list[nn.Sequential]:
        """The image tower's MLPs ``c_fc -> QuickGELU -> c_proj`` (OpenAI weights use QuickGELU)."""
        from open_clip.transformer import QuickGELU

        mlps = []
        for block in self._blocks:
            mlp = getattr(block, "mlp", None)
            if (isinstance(mlp, nn.Sequential) and isinstance(getattr(mlp, "gelu", None), QuickGELU)
                    and isinstance(getattr(mlp, "c_fc", None), nn.Linear)
                    and isinstance(getattr(mlp, "c_proj", None), nn.Linear)):
                mlps.append(mlp)
        return mlps

    def _inference_scales(self) -> dict[int, float]:
        k = self._QUICK_GELU
        scales: dict[int, float] = {}
        for mlp in self._quick_gelu_mlps():
            scales[id(mlp.c_fc.weight)] = k
            if mlp.c_fc.bias is not None:
                scales[id(mlp.c_fc.bias)] = k
            scales[id(mlp.c_proj.weight)] = 1.0 / k
        return scales

    def inference_copy(self, dtype: torch.dtype, device: torch.device | str | None = None) -> Backbone:
        """As :meth:`Backbone.inference_copy`; QuickGELU MLPs become SiLU MLPs: with ``y = 1.702 x``,
        ``c_proj(x * sigmoid(1.702 x)) = (c_proj.weight / 1.702) silu(y) + c_proj.bias``, so ``c_fc`` is stored
        times 1.702, ``c_proj.weight`` divided by 1.702, and the three elementwise passes of QuickGELU become
        one ``silu`` (CLIP ViT-B/16 with OpenAI weights: about 15% faster bf16 extraction on this CPU)."""
        clone = super().inference_copy(dtype, device)
        for mlp in clone._quick_gelu_mlps():  # the scaled weights were stored by _inference_scales
            mlp.gelu = nn.SiLU()
        return clone

    def tokenizer(self) -> Any:
        """open_clip's BPE tokenizer (its vocabulary ships inside the package: works offline)."""
        from open_clip.tokenizer import SimpleTokenizer

        return SimpleTokenizer(context_length=self.model.context_length)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:  # [C, L] -> [C, embed_dim]
        return self.model.encode_text(tokens)

    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.exp()


# -- builders ---------------------------------------------------------------------------------------
def _build_timm(name: str, weights, mode, *, arch: str | None, make, classifier: str, file_hint: str,
                data_config: dict[str, Any] | None, build_args: dict[str, Any], blocks_of, tail_of):
    """Shared path of timm backbones. ``make()`` builds the randomly initialised model (num_classes=0)."""
    import timm.data

    spec = W.parse_weights(weights)
    if spec.kind == "tag":
        if arch is None:
            raise UnmaskError(f"backbone {name} has no pretrained tags; pass a local file or weights=None")
        model = W.timm_pretrained_model(arch, spec.value, name, file_hint, **build_args)
    else:
        model = make()
        if spec.kind == "file":
            state_dict, _ = W.read_checkpoint(spec.path)
            state_dict = W.drop_keys(state_dict, (f"{classifier}.weight", f"{classifier}.bias"))
            W.load_strict(model, state_dict, what=f"{spec.path} -> {name}")
        else:
            W.announce_random_init(name)
    if data_config is None:
        data_config = timm.data.resolve_model_data_config(model)
    cfg = {k: data_config[k] for k in ("input_size", "mean", "std", "interpolation")}
    return TimmBackbone(name, model, num_features=model.num_features, data_config=cfg, build_args=build_args,
                        mode=mode, blocks=blocks_of(model), tail=tail_of(model))


def _vit_parts(model):
    return list(model.blocks), [model.norm, model.fc_norm]


@register_backbone
def vit_b16(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 224) -> Backbone:
    """ImageNet ViT-B/16 (timm ``vit_base_patch16_224``), D=768."""
    import timm

    build_args = {"img_size": img_size}
    return _build_timm("vit_b16", weights, mode, arch="vit_base_patch16_224", classifier="head",
                       make=lambda: timm.create_model("vit_base_patch16_224", num_classes=0, **build_args),
                       file_hint="vit_base_patch16_224.safetensors", data_config=None, build_args=build_args,
                       blocks_of=lambda m: _vit_parts(m)[0], tail_of=lambda m: _vit_parts(m)[1])


@register_backbone
def resnet18(weights: str | os.PathLike | None = None, mode: str | int = "frozen") -> Backbone:
    """ImageNet ResNet-18 (timm ``resnet18``), D=512."""
    import timm

    return _build_timm("resnet18", weights, mode, arch="resnet18", classifier="fc",
                       make=lambda: timm.create_model("resnet18", num_classes=0),
                       file_hint="resnet18.safetensors", data_config=None, build_args={},
                       blocks_of=lambda m: [m.layer1, m.layer2, m.layer3, m.layer4], tail_of=lambda m: [])


@register_backbone
def tiny_vit(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 64) -> Backbone:
    """timm VisionTransformer, patch 8, width 64, depth 2, 2 heads, D=64 (tests, CPU demo)."""
    from timm.models.vision_transformer import VisionTransformer

    build_args = {"img_size": img_size}
    make = lambda: VisionTransformer(img_size=img_size, patch_size=8, embed_dim=64, depth=2, num_heads=2,  # noqa: E731
                                     mlp_ratio=2.0, num_classes=0)
    data_config = {"input_size": (3, img_size, img_size), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                   "interpolation": "bicubic"}  # as vit_b16's default timm weights
    return _build_timm("tiny_vit", weights, mode, arch=None, classifier="head", make=make,
                       file_hint="tiny_vit.safetensors", data_config=data_config, build_args=build_args,
                       blocks_of=lambda m: _vit_parts(m)[0], tail_of=lambda m: _vit_parts(m)[1])


@register_backbone
def tiny_resnet(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 64) -> Backbone:
    """timm ResNet(BasicBlock, [1, 1, 1, 1]) with channels 16-128, D=128 (tests, CPU demo)."""
    from timm.models.resnet import BasicBlock, ResNet

    make = lambda: ResNet(BasicBlock, [1, 1, 1, 1], channels=(16, 32, 64, 128), stem_width=16,  # noqa: E731
                          num_classes=0)
    data_config = {"input_size": (3, img_size, img_size), "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD,
                   "interpolation": "bicubic"}  # as resnet18's default timm weights
    return _build_timm("tiny_resnet", weights, mode, arch=None, classifier="fc", make=make,
                       file_hint="tiny_resnet.safetensors", data_config=data_config,
                       build_args={"img_size": img_size},
                       blocks_of=lambda m: [m.layer1, m.layer2, m.layer3, m.layer4], tail_of=lambda m: [])


def _build_clip(name: str, weights, mode, *, arch: str | None, config: dict[str, Any], quick_gelu: bool | None,
                text_tower: bool, file_hint: str, build_args: dict[str, Any]) -> Backbone:
    """Build an open_clip ``CLIP`` from ``config``, load weights strictly into the whole model, keep the image
    tower (and the text tower when asked). ``quick_gelu=None`` resolves to True for OpenAI weights."""
    from open_clip.model import CLIP

    spec = W.parse_weights(weights)
    state_dict, is_openai = None, False
    if spec.kind == "tag":
        if arch is None:
            raise UnmaskError(f"backbone {name} has no pretrained tags; pass a local file or weights=None")
        import open_clip

        path = W.download_open_clip(arch, spec.value, name, file_hint)
        tag_quick_gelu = bool(open_clip.pretrained.get_pretrained_cfg(arch, spec.value).get("quick_gelu"))
        state_dict, is_openai = W.read_clip_checkpoint(path)
        is_openai = is_openai or tag_quick_gelu
    elif spec.kind == "file":
        state_dict, is_openai = W.read_clip_checkpoint(spec.path)
    if quick_gelu is None:
        quick_gelu = is_openai
    clip = CLIP(**config, quick_gelu=quick_gelu)
    if state_dict is not None:
        scale = state_dict.get("logit_scale")
        if scale is not None and scale.numel() == 1 and scale.shape != clip.logit_scale.shape:
            state_dict["logit_scale"] = scale.reshape(clip.logit_scale.shape)  # 0-d vs [1] across versions
        W.load_strict(clip, state_dict, what=f"{spec.value} -> {name}")
    else:
        W.announce_random_init(name)
    model = clip if text_tower else clip.visual
    visual = clip.visual
    vision_cfg = config["vision_cfg"]
    size = int(vision_cfg["image_size"])
    data_config = {"input_size": (3, size, size), "mean": _CLIP_MEAN, "std": _CLIP_STD, "interpolation": "bicubic"}
    return ClipBackbone(name, model, num_features=config["embed_dim"], data_config=data_config,
                        build_args={**build_args, "quick_gelu": quick_gelu}, mode=mode,
                        blocks=list(visual.transformer.resblocks), tail=[visual.ln_post, visual.proj])


@register_backbone
def clip_vit_b16(weights: str | os.PathLike | None = None, mode: str | int = "frozen", quick_gelu: bool | None = None, text_tower: bool = False) -> Backbone:
    """CLIP ViT-B/16 image encoder (open_clip ``ViT-B-16``), D=512 (projected embedding)."""
    import open_clip

    return _build_clip("clip_vit_b16", weights, mode, arch="ViT-B-16", config=open_clip.get_model_config("ViT-B-16"),
                       quick_gelu=quick_gelu, text_tower=text_tower, file_hint="ViT-B-16.pt", build_args={})


@register_backbone
def tiny_clip_vit(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 64, quick_gelu: bool | None = None,
                  text_tower: bool = False) -> Backbone:
    """open_clip CLIP from a small config: vision patch 8 / width 64 / 2 layers / 2 heads, text width 64 /
    2 layers / 2 heads / context 32, embed 32 (tests, CPU demo). Full BPE vocabulary so the real tokenizer works."""
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": img_size, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    return _build_clip("tiny_clip_vit", weights, mode, arch=None, config=config, quick_gelu=quick_gelu,
                       text_tower=text_tower, file_hint="tiny_clip_vit.pt", build_args={"img_size": img_size})


def create_backbone(name: str, weights: str | os.PathLike | None = None, mode: str | int = "frozen", **kwargs: Any) -> Backbone:
    """Create a registered backbone; unknown names/arguments raise UnmaskError listing the known ones."""
    return BACKBONES.call(name, weights=weights, mode=mode, **kwargs)


def list_backbones() -> list[str]:
    return BACKBONES.names()
