"""Onset-to-apex optical flow for micro-expressions: horizontal u, vertical v and optical strain.

``prepare --flow METHOD`` computes it once per clip from the onset and apex face crops and caches it as
``flow.png`` beside the crops; the method and the alignment are prepare settings, so they are part of the
prepared set's cache key (a set prepared with one method is never silently reused for another).

Methods, by name:

* ``tvl1``: TV-L1 (Zach et al. 2007), the field's default for micro-expressions: OpenCV's *contrib* build
  (``cv2.optflow``), which unmask depends on (``opencv-contrib-python-headless<5``; it keeps the Haar
  cascades). An OpenCV without it makes asking for ``tvl1`` an error naming that package. The slowest here.
* ``dis``: OpenCV's DIS flow (Kroeger et al. 2016, preset *medium*): fast.
* ``farneback``: Farneback's polynomial-expansion flow.

Alignment (``--flow-align``): ``ecc`` registers the apex crop onto the onset crop with a Euclidean transform
(OpenCV's ECC) before the flow, so that head motion between the two frames does not swamp the facial
movement; ``none`` skips it. ECC that does not converge leaves the crop as it is and says so in meta.json.

Optical strain is the magnitude of the flow's symmetric gradient (the infinitesimal strain tensor):
``sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2)`` with ``e_xx = du/dx``, ``e_yy = dv/dy``, ``e_xy = (du/dy + dv/dx) / 2``.

Cache encoding (lossless PNG, 8 bits a channel): ``u, v -> 128 + FLOW_LEVELS * px`` (1/32 px steps, +-4 px)
and ``strain -> STRAIN_LEVELS * strain`` (0 to ~0.5); :func:`decode_flow` inverts it.
"""

from __future__ import annotations

import numpy as np

from unmask.errors import UnmaskError

METHODS = ("tvl1", "dis", "farneback")
ALIGNS = ("ecc", "none")
FLOW_LEVELS = 32.0  # uint8 levels per pixel of flow
STRAIN_LEVELS = 510.0  # uint8 levels per unit of strain


def check_method(name: str) -> str:
    if name not in METHODS:
        raise UnmaskError(f"unknown flow method {name!r}; expected one of: {', '.join(METHODS)}")
    if name == "tvl1":
        import cv2

        if not hasattr(cv2, "optflow"):
            raise UnmaskError("flow method 'tvl1' needs OpenCV's contrib build (cv2.optflow), which this OpenCV "
                              f"({cv2.__version__}) lacks: unmask depends on opencv-contrib-python-headless<5; "
                              "if opencv-python-headless was installed over it, uninstall both and reinstall "
                              "opencv-contrib-python-headless<5, or use --flow dis or --flow farneback")
    return name


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def dense_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow from ``prev`` to ``nxt`` (RGB or gray uint8 ``[H, W]``) -> float32 ``[H, W, 2]`` (u, v) in pixels."""
    import cv2

    a, b = _gray(prev), _gray(nxt)
    check_method(method)
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 5, 5, 1.1, 0)
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)


def align_to(reference: np.ndarray, moving: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, dict]:
    """Register ``moving`` onto ``reference`` with a Euclidean transform (ECC); returns the warped image and
    ``{"ecc": "ok" | "failed", "dx", "dy", "angle"}``."""
    import cv2

    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5)
    try:
        _, warp = cv2.findTransformECC(_gray(reference).astype(np.float32), _gray(moving).astype(np.float32), warp,
                                       cv2.MOTION_EUCLIDEAN, criteria, None, 5)
    except cv2.error:
        return moving, {"ecc": "failed"}
    h, w = moving.shape[:2]
    out = cv2.warpAffine(moving, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    angle = float(np.degrees(np.arctan2(warp[1, 0], warp[0, 0])))
    return out, {"ecc": "ok", "dx": round(float(warp[0, 2]), 3), "dy": round(float(warp[1, 2]), 3),
                 "angle": round(angle, 3)}


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """``[H, W, 2]`` flow -> ``[H, W]`` strain magnitude."""
    u, v = flow[..., 0], flow[..., 1]
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2 * exy ** 2).astype(np.float32)


def onset_apex_flow(onset: np.ndarray, apex: np.ndarray, method: str = "dis", align: str = "ecc"
                    ) -> tuple[np.ndarray, dict]:
    """Onset and apex crops (RGB uint8) -> float32 ``[H, W, 3]`` (u, v, strain) and what was done."""
    if align not in ALIGNS:
        raise UnmaskError(f"unknown flow alignment {align!r}; expected one of: {', '.join(ALIGNS)}")
    info: dict = {"method": method, "align": align}
    if align == "ecc":
        apex, how = align_to(onset, apex)
        info.update(how)
    flow = dense_flow(onset, apex, method)
    return np.dstack([flow, optical_strain(flow)]).astype(np.float32), info


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """float ``[H, W, 3]`` (u, v, strain) -> uint8 ``[H, W, 3]`` (the cache's PNG)."""
    out = np.empty(flow.shape, np.float32)
    out[..., :2] = 128.0 + FLOW_LEVELS * flow[..., :2]
    out[..., 2] = STRAIN_LEVELS * flow[..., 2]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def decode_flow(img: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode_flow` (to 1/32 px): uint8 ``[..., 3]`` -> float32 (u, v, strain)."""
    x = img.astype(np.float32)
    return np.stack([(x[..., 0] - 128.0) / FLOW_LEVELS, (x[..., 1] - 128.0) / FLOW_LEVELS,
                     x[..., 2] / STRAIN_LEVELS], -1)
