"""Predict every task of a trained model (DSID: the felt and the shown emotion) for every face in new images
and videos.

::

    p = Predictor.from_checkpoint("runs/demo/run/folds/s01")     # a checkpoint.pt or its fold folder
    df = p.predict_paths(["photo.jpg", "clip.mp4"], every=5)       # one row per face per frame

Preprocessing is the training one, read from the checkpoint (``ckpt["preprocess"]``): the face detector,
the square crop (``crop_face`` with the checkpoint's margin, at its ``crop_size``), the resize of the crop to
the model's input size (:func:`unmask.data.transforms.resize_uint8`, as training resized the cached crops) and the
normalisation (:class:`unmask.data.transforms.Preprocess` with the checkpoint's mean/std). A checkpoint made
with the ``annotated`` detector (boxes from a manifest) cannot find faces in new media: ``auto`` is used
instead and the reason is logged once. Every face of a frame is classified, in batches across faces and
frames.

Result columns (:data:`BASE_COLUMNS`, then per task of the checkpoint, in its order, ``<task>_pred``,
``<task>_conf`` and ``<task>_p_<label>...`` in the task's label order, then ``error``):

* ``source`` the file (or ``<image>`` for an in-memory image); ``kind`` image | video;
* ``frame`` the 0-based decoded frame index (-1 for images), ``time_s`` its timestamp (NaN for images);
* ``face`` the face's index in its frame (0 = highest detector score; -1 when none), ``track`` its face track
  in a video (-1 for images);
* ``x, y, w, h`` the detector's box in pixels, ``det_score`` its score;
* ``face_found`` False for a frame without a face: one row with empty predictions (never silently skipped);
* ``apex`` True on the apex summary rows of :meth:`Predictor.predict_video` with ``apex_search``, whose
  ``apex_score`` is the feature distance that chose the frame;
* ``<task>_pred``/``<task>_conf``: the top class and its probability (a multi-label task: the labels at
  p >= 0.5 joined by ``+``, ``none`` when there are none, and the highest probability);
* ``error``: empty, or why the input could not be read (that input then has this one row).

Clip models (trained on the ``clip`` paradigm: T frames per example) are given clips: on a video, each face
track's sampled detections in consecutive windows of T (the last one padded by repeating its last crop), every
row of a window carrying that window's prediction; an image is a still clip (its crop repeated T times).

Onset-to-apex clip models (trained on the ``clip_flow`` paradigm: MEDN) read one input per video, made as
``prepare`` made it from the settings the checkpoint records (:mod:`unmask.data.onset_apex`): the T frames from
the onset to the apex (frame indices given, or the onset = the first frame and the apex searched) with their
face crops and the onset-to-apex flow. Each video gives one row, at the apex frame, with ``onset`` and
``apex_from`` (given | search) columns; images are refused with an error row.

Apex search (videos): the model was trained on apex frames, where the disguise is at full intensity, so a
per-frame prediction far from the apex means little. The heuristic: for each face track, the mean backbone
feature of its first ``neutral_frames`` detections is the neutral reference (clips start neutral); each
frame's score is the cosine distance of its feature to that reference, averaged over a centred window of
about ``smooth_s`` = 0.2 s of sampled frames (an apex is a plateau; a one-frame jump is more likely noise, a
blink or a brief leak of the true emotion); the apex is the frame with the highest score, and its prediction is repeated as an extra
row with ``apex=True``. It assumes the video starts near neutral and that the disguise is the largest
change in the face, and it only sees the sampled frames (``every``).

Layout, one job a module: :mod:`.media` (media in: what a path is, images as RGB), :mod:`.faces` (the
detector, each frame's faces and crops, tracks, apex rows), :mod:`.inputs` (the model input per paradigm:
frames, windows, onset-to-apex clips), :mod:`.model_pass` (crops -> probabilities and features), :mod:`.rows`
(the result columns and the rows that fill them; the table itself: :mod:`unmask.results`),
:mod:`.predictor` (:class:`Predictor`, which wires them) and :mod:`.render` (boxes, annotated copies and the
timeline, which ``unmask predict`` and ``unmask serve`` both show).
"""

from __future__ import annotations

from unmask.predict.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, find_media, media_kind, read_image
from unmask.predict.predictor import Predictor, resolve_checkpoint_path
from unmask.results import BASE_COLUMNS, ONSET_APEX_COLUMNS, read_results, task_columns, video_summary, write_results
from unmask.tracking import FaceTracker, apex_index

__all__ = ["Predictor", "find_media", "read_image", "apex_index", "read_results", "write_results", "video_summary",
           "resolve_checkpoint_path", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "media_kind", "BASE_COLUMNS",
           "ONSET_APEX_COLUMNS", "task_columns", "FaceTracker"]
