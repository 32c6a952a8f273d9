"""The input of an onset-to-apex clip model (the ``clip_flow`` paradigm: MEDN) made from a raw video, as
``prepare`` made it for training, so that ``unmask predict`` gives on a video what the engine gives on the
prepared clip.

The checkpoint records the prepare settings (``ckpt["preprocess"]``: the frame sampling ``rise:T``, the crop
size, margin and eye alignment, the flow method and the flow alignment); :class:`OnsetApexInput` reads them and
:meth:`OnsetApexInput.video_input` decodes the onset, the apex and the T frames between them, finds and crops
the face in each (:func:`unmask.data.prepare.crop_frames`, prepare's own function), computes the
onset-to-apex flow with the checkpoint's method (:func:`unmask.data.flow.onset_apex_flow`) and stacks the T
crops and the uint8-encoded flow, ``[T + 1, S, S, 3]``.

Onset and apex are frame indices (0-based, in decoding order). Without an onset, the first frame is the
onset (a clip is expected to start neutral). Without an apex, :func:`search_apex` picks it: the frame after
the onset whose face differs most from the onset's face. The search (our heuristic; the field's spotting
methods are more elaborate) crops every frame with the onset frame's face box (no margin: the face, not the
background; ``SEARCH_SIDE`` pixels a side, whatever the model's crop size), registers each crop onto the onset crop with a Euclidean ECC transform (head motion), blurs both
(Gaussian, sigma = side / 56: sensor noise) and scores the mean absolute grey-level difference over the crop
without its outer 1/14 border; the apex is the first frame whose score reaches ``PLATEAU`` = 97% of the highest
score within ``MAX_RISE_S`` = 0.3 s of the onset (micro-expressions reach their apex within about 260 ms, Yan et
al. 2013; the whole video when its frame rate is unknown, e.g. a frame folder): the start of the plateau, not a
noisy maximum on it. 0.97 was chosen on the synthetic micro set of seed 0 and checked on seed 1. It assumes one face, a neutral onset and that
the expression is the largest change in the face after the head motion is taken out; on the synthetic micro
set of seed 1 (head sway included) it lands within two frames of the true apex on about four clips in five
(docs/medn.md; `bench/medn_apex_search.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.data.faces import FaceDetector

PLATEAU = 0.97  # the apex: the first frame whose score reaches this share of the largest
MAX_RISE_S = 0.3  # the apex search looks this long after the onset
SEARCH_SIDE = 112  # the apex search's crop side (a model's crops can be smaller than a micro-movement needs)


def check_onset_apex(onset: int | None, apex: int | None) -> None:
    """Frame indices given by a user: not negative, and the onset before the apex."""
    for name, v in (("onset", onset), ("apex", apex)):
        if v is not None and v < 0:
            raise UnmaskError(f"--{name} {v}: a frame index is 0 or more")
    if onset is not None and apex is not None and apex <= onset:
        raise UnmaskError(f"--onset {onset} --apex {apex}: the onset must come before the apex")


@dataclass(frozen=True)
class OnsetApexInput:
    """The prepare settings of a ``clip_flow`` checkpoint, and the video -> model input that follows from them."""

    frames: str  # the sampling policy, rise:T
    size: int  # the crop side, in pixels
    margin: float
    align: bool  # eye alignment of each crop
    flow: str  # flow method
    flow_align: str  # ecc | none

    @classmethod
    def from_preprocess(cls, prep: dict) -> OnsetApexInput:
        from unmask.data.flow import check_method
        from unmask.data.sampling import parse_sampling

        missing = [k for k in ("frames", "flow") if not prep.get(k)]
        if missing:
            raise UnmaskError(f"this checkpoint reads onset-to-apex clips with their flow but does not record how they "
                              f"were prepared ({', '.join(missing)}; checkpoints record it since unmask 0.x of this "
                              "change): train it again, or predict on prepared clips with unmask.checkpoint."
                              "load_checkpoint")
        sampling = parse_sampling(prep["frames"])
        if sampling.kind != "rise":
            raise UnmaskError(f"predicting a clip_flow model on a video needs frames sampled from onset to apex "
                              f"(prepare --frames rise:T); this checkpoint's set used --frames {prep['frames']}")
        return cls(str(sampling), int(prep.get("crop_size") or prep["input_size"][-1]),
                   float(prep["margin"] if prep.get("margin") is not None else 0.2), bool(prep.get("align")),
                   check_method(prep["flow"]), prep.get("flow_align") or "ecc")

    def video_input(self, video: str | Path, detector: FaceDetector, onset: int | None = None, apex: int | None = None
                    ) -> tuple[np.ndarray, dict]:
        """``[T + 1, S, S, 3]`` uint8 (T crops from onset to apex, then the encoded flow) and what was done:
        ``{"onset", "apex", "apex_from": "given" | "search", "apex_score", "box": apex frame's box, "frames"}``."""
        from unmask.data.flow import encode_flow, onset_apex_flow
        from unmask.data.prepare import crop_frames
        from unmask.data.sampling import parse_sampling, planned_frames
        from unmask.data.video import read_frames

        check_onset_apex(onset, apex)
        onset = 0 if onset is None else onset
        info: dict = {"onset": onset, "apex_from": "given", "apex_score": float("nan")}
        if apex is None:
            apex, score = search_apex(video, onset, detector)
            info.update(apex_from="search", apex_score=score)
        info["apex"] = apex
        clip = SimpleNamespace(clip_id=Path(video).name, onset=onset, apex=apex, offset=None)
        frames = planned_frames(clip, parse_sampling(self.frames))
        images = read_frames(video, {onset, apex, *frames["clip"]})  # a frame past the end: VideoError
        crops, boxes, _, _ = crop_frames(images, detector, size=self.size, margin=self.margin, align=self.align)
        field, _ = onset_apex_flow(crops[onset], crops[apex], self.flow, self.flow_align)
        info.update(box=tuple(int(v) for v in boxes[apex]), frames=frames["clip"])
        return np.stack([crops[i] for i in frames["clip"]] + [encode_flow(field)]), info


def difference_scores(crops: list[np.ndarray]) -> np.ndarray:
    """Grey face crops ``[S, S]`` uint8 of frames onset, onset + 1, ... -> each one's difference from the first
    (see the module docstring), ``[n]`` (0 for the onset itself)."""
    import cv2

    from unmask.data.flow import align_to

    side = crops[0].shape[0]
    sigma, border = side / 56.0, max(1, side // 14)
    inner = (slice(border, side - border),) * 2
    ref = cv2.GaussianBlur(crops[0], (0, 0), sigma).astype(np.float32)[inner]
    scores = [0.0]
    for c in crops[1:]:
        c, _ = align_to(crops[0], c)  # head motion out (ECC; a failed fit leaves the crop as it is)
        scores.append(float(np.abs(cv2.GaussianBlur(c, (0, 0), sigma).astype(np.float32)[inner] - ref).mean()))
    return np.asarray(scores)


def search_apex(video: str | Path, onset: int, detector: FaceDetector, size: int = SEARCH_SIDE, max_rise_s: float | None = MAX_RISE_S
                ) -> tuple[int, float]:
    """The apex of the expression in ``video`` within ``max_rise_s`` seconds after ``onset`` (None: to the end;
    the module docstring) and its score."""
    import cv2

    from unmask.data.faces import best_face, crop_face
    from unmask.data.video import header_fps, iter_frames

    crops, box = [], None
    fps = header_fps(video) if max_rise_s else 0.0
    stop = onset + round(max_rise_s * fps) + 1 if fps else None
    for index, rgb in iter_frames(video, start=onset, stop=stop):  # an onset past the end: VideoError
        if box is None:
            face = best_face(detector.detect(rgb, frame=index))
            if face is None:
                raise UnmaskError(f"{video}: no face in the onset frame {onset} ({detector.name} detector), so the "
                                  "apex cannot be searched; give --onset at a frame with a face, or --apex")
            box = face.box
        crops.append(cv2.cvtColor(crop_face(rgb, box, margin=0.0, size=size), cv2.COLOR_RGB2GRAY))
    if len(crops) < 2:
        raise UnmaskError(f"{video}: no frame after the onset frame {onset} to search for the apex")
    scores = difference_scores(crops)
    i = int(np.argmax(scores >= PLATEAU * scores.max()))  # the first frame on the plateau of the largest change
    return onset + i, float(scores[i])
