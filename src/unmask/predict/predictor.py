"""The Predictor: a checkpoint's model with its training preprocessing, run over images, videos and folders.

It wires the pieces, one job each: media in (:mod:`.media`), faces and tracks (:mod:`.faces`), the model input
of the checkpoint's paradigm (:mod:`.inputs`), the model pass (:mod:`.model_pass`) and rows out (:mod:`.rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from unmask.errors import UnmaskError
from unmask.predict.faces import FaceFinder, FaceTracker, Pending, Row, apex_rows, make_detector
from unmask.predict.inputs import model_input
from unmask.predict.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, as_rgb, find_media, media_kind
from unmask.predict.model_pass import ModelPass
from unmask.predict.rows import error_row, fill_tasks, result_frame, time_of


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, a fold folder holding ``checkpoint.pt``, or a run folder with exactly one fold."""
    p = Path(path)
    if p.is_file() or (p / "checkpoint.pt").is_file():
        return p if p.is_file() else p / "checkpoint.pt"
    folds = sorted(f.parent.name for f in p.glob("folds/*/checkpoint.pt")) if p.is_dir() else []
    if len(folds) == 1:
        return p / "folds" / folds[0] / "checkpoint.pt"
    if len(folds) > 1:
        raise UnmaskError(f"{p} is a run with {len(folds)} folds; pick one checkpoint, e.g. {p / 'folds' / folds[0]}",
                          [f"fold: {p / 'folds' / f}" for f in folds])
    raise UnmaskError(f"no checkpoint at {p} (expected a checkpoint.pt, a fold folder or a run folder)")


class Predictor:
    """A trained model with its training preprocessing; see :mod:`unmask.predict`."""

    def __init__(self, model: Any, ckpt: dict[str, Any], *, device: torch.device, detector: Any = None,
                 batch_size: int = 32, precision: str = "fp32", neutral_frames: int = 3, smooth_s: float = 0.2,
                 peers: Iterable[str] = (), calibrated: bool = True):
        if precision not in ("fp32", "bf16"):
            raise UnmaskError(f"unknown precision {precision!r}; expected fp32 or bf16")
        if batch_size < 1:
            raise UnmaskError(f"batch size must be at least 1 (got {batch_size})")
        self.model, self.ckpt, self.device = model, ckpt, device
        self.tasks = tuple(model.tasks)  # what this model predicts: tasks with their label names
        prep = ckpt["preprocess"]
        self.inputs = model_input(model, prep)  # frames, windows or onset-to-apex clips: the paradigm's piece
        # an onset-to-apex clip model's prepare settings (unmask.data.onset_apex.OnsetApexInput), else None
        self.onset_apex = getattr(self.inputs, "spec", None) if self.inputs.whole_videos else None
        self.input_size = int(prep["input_size"][-1])
        self.margin = float(prep["margin"] if prep.get("margin") is not None else 0.2)
        self.crop_size = int(prep.get("crop_size") or self.input_size)
        self.batch_size, self.precision = batch_size, precision
        self.model_pass = ModelPass(model, prep, device=device, batch_size=batch_size, precision=precision)
        self.clip_frames, self.encodes_clips = self.model_pass.clip_frames, self.model_pass.encodes_clips
        self.normalize = self.model_pass.normalize
        self.neutral_frames, self.smooth_s = neutral_frames, smooth_s
        self.detector, self.detector_note = make_detector(detector, prep.get("detector"))
        self.detector_fallback = "(auto:" in self.detector_note  # the checkpoint's detector could not be used
        self.faces = FaceFinder(self.detector, self.margin, self.crop_size)
        from unmask.peers import Peer  # off-the-shelf models whose columns go beside ours (unmask.peers)

        self.peers = [Peer(name, device, batch_size) for name in dict.fromkeys(peers)]
        from unmask.trust import Trust

        self.trust = Trust(ckpt, calibrated)  # provenance, calibration, the "unlike the training faces" flag
        self.model_pass.trust = self.trust

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", detector: Any = None,
                        **kwargs: Any) -> Predictor:
        from unmask.checkpoint import load_checkpoint
        from unmask.runtime import resolve_device

        dev = resolve_device(device)
        path = resolve_checkpoint_path(path)
        model, ckpt = load_checkpoint(path, dev)
        return cls(model, ckpt, device=dev, detector=detector, **kwargs)

    # -- the model ------------------------------------------------------------------------------------
    def predict_crops(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Face crops (uint8 ``[N, H, W, 3]``, as :func:`~unmask.data.faces.crop_face` makes them; a clip model:
        ``[N, T, H, W, 3]``) -> ``{<task>: [N, C] probabilities, ..., "features": [N, D]}`` (backbone features,
        averaged over a clip's frames)."""
        return self.model_pass(crops)

    def _flush(self, pending: Pending, features: dict[int, np.ndarray] | None = None, *,
               video: bool = False) -> None:
        """Predict the waiting rows: the paradigm cuts the model inputs (:mod:`unmask.predict.inputs`)."""
        if not pending:
            return
        self._peers(pending)
        groups, x = (self.inputs.video if video else self.inputs.still)(pending)
        if groups:
            fill_tasks(groups, self.predict_crops(x), self.tasks, features, self.trust)
        pending.clear()

    def _peers(self, pending: Pending) -> None:
        """Each ``--peer`` model's prediction for every face crop of ``pending``, into its rows."""
        if self.peers and pending:
            crops = np.stack([c for _, c in pending])  # [N, H, W, 3]
            for peer in self.peers:
                for (row, _), p in zip(pending, peer.predict_crops(crops)):
                    peer.fill(row, p)

    def _frame(self, rows: list[Row]) -> pd.DataFrame:
        return result_frame(rows, self.tasks, onset_apex=bool(self.onset_apex), peers=self.peers, trust=self.trust)

    # -- public API -------------------------------------------------------------------------------------
    def predict_image(self, img: Any, source: str | None = None) -> pd.DataFrame:
        """One image (path, PIL image or RGB uint8 ndarray) -> one row per face (or one ``face_found=False``)."""
        pending: Pending = []
        rows = self._image_rows(img, source, pending)
        self._flush(pending)
        return self._frame(rows)

    def _image_rows(self, img: Any, source: str | None, pending: Pending) -> list[Row]:
        name = source or (str(img) if isinstance(img, (str, Path)) else "<image>")
        base = dict(source=name, kind="image", frame=-1, track=-1)
        refused = self.inputs.image_error(name)
        if refused:
            return [error_row(base, refused)]
        try:
            rgb = as_rgb(img)
        except UnmaskError as e:
            return [error_row(base, str(e))]
        return self.faces.frame_rows(rgb, base, pending)

    def predict_video(self, path: str | Path, every: int = 1, apex_search: bool = False,
                      on_frame: Callable[[int], None] | None = None, *, onset: int | None = None,
                      apex: int | None = None) -> pd.DataFrame:
        """Every ``every``-th frame of a video -> rows per face per sampled frame (+ apex rows, see module doc).

        A video that fails to decode part-way keeps the rows of the frames read and ends with an error row.
        ``on_frame(index)`` is called after each sampled frame is read (progress for a caller such as a web page).
        An onset-to-apex clip model (paradigm ``clip_flow``) gives one row per video instead: ``onset`` and
        ``apex`` are frame indices (None: the first frame; the apex searched), ``every`` does not apply.
        """
        return self._frame(self._video_rows(Path(path), every, apex_search, on_frame, onset=onset, apex=apex))

    def _video_rows(self, path: Path, every: int, apex_search: bool, on_frame: Callable[[int], None] | None = None,
                    *, onset: int | None = None, apex: int | None = None) -> list[Row]:
        from unmask.data.video import VideoError, header_fps, iter_timed_frames

        if self.inputs.whole_videos:  # one input per video (onset-to-apex clips), one row at its apex
            row, x = self.inputs.read_video(path, self.detector, onset, apex)
            if x is not None:
                fill_tasks([[row]], self.predict_crops(x), self.tasks, trust=self.trust)
            return [row]
        if every < 1:
            raise UnmaskError(f"--every must be at least 1 (got {every})")
        fps = header_fps(path)
        base = dict(source=str(path), kind="video")
        rows: list[Row] = []
        pending: Pending = []
        features: dict[int, np.ndarray] = {}
        tracker = FaceTracker()
        try:
            for index, t, rgb in iter_timed_frames(path, every=every):
                new = self.faces.frame_rows(rgb, dict(base, frame=index, time_s=time_of(index, t, fps)), pending,
                                            frame=index)
                tracker.assign(new)
                rows += new
                if on_frame is not None:
                    on_frame(index)
                if len(pending) >= self.batch_size and self.inputs.flush_while_decoding:
                    self._flush(pending, features, video=True)
        except VideoError as e:
            self._flush(pending, features, video=True)
            return rows + [error_row(base, str(e))]
        self._flush(pending, features, video=True)
        if apex_search:
            # the smoothing window spans about smooth_s seconds of sampled frames (odd, centred; 1 = none)
            window = max(1, round(self.smooth_s * (fps or 25.0) / every)) // 2 * 2 + 1
            rows += apex_rows(rows, features, self.neutral_frames, window)
        return rows

    def predict_paths(self, paths: Iterable[str | Path], every: int = 1, apex_search: bool = False,
                      progress: bool = False, *, onset: int | None = None, apex: int | None = None,
                      sequences: bool = False) -> pd.DataFrame:
        """Images, videos and folders (searched recursively) -> one frame of rows; images are batched together.

        An unreadable input gives one row with ``error`` set and the others go on. ``onset``/``apex``: frame
        indices for an onset-to-apex clip model (:meth:`predict_video`), the same for every video.
        ``sequences``: each folder is one video, a dataset's frame folder (``sub01/EP02_01f/img46.jpg``); there
        ``onset``/``apex`` are the numbers in the images' names, as the coding sheets give them.
        """
        if (onset is not None or apex is not None) and not self.onset_apex:
            raise UnmaskError("--onset/--apex apply to models of onset-to-apex clips (paradigm clip_flow); this "
                              f"checkpoint was trained on {self.ckpt['preprocess'].get('paradigm')!r}")
        from unmask.data.onset_apex import check_onset_apex

        check_onset_apex(onset, apex)
        from tqdm.auto import tqdm

        files = find_media(paths, sequences)
        rows: list[Row] = []
        pending: Pending = []
        bar = tqdm(files, desc="predict", unit="file", disable=not progress)
        for f in bar:
            bar.set_postfix_str(f.name, refresh=False)
            kind = media_kind(f) if f.is_file() else "video" if sequences and f.is_dir() else None
            if kind == "image":
                rows += self._image_rows(f, str(f), pending)
                if len(pending) >= self.batch_size:
                    self._flush(pending)
            elif kind == "video":
                rows += self._video_rows(f, every, apex_search, onset=onset, apex=apex)
            else:
                why = ("not found" if not f.exists() else "a folder without images or videos" if f.is_dir()
                       else f"not an image or video (extensions: {', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})")
                rows.append(error_row(dict(source=str(f), kind=""), f"{f}: {why}"))
        self._flush(pending)
        return self._frame(rows)
