"""Face detectors on real photos and videos, and the crop geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unmask.data.faces import (
    Detection,
    best_face,
    create_detector,
    crop_face,
    list_detectors,
    resolve_detector_name,
    yuface_available,
)
from unmask.data.video import read_frames
from unmask.errors import UnmaskError

DETECTORS = [
    pytest.param("yuface", marks=pytest.mark.skipif(not yuface_available(),
                                                    reason="yuface is not importable (wheels: CPython 3.11)")),
    "haar",
]


@pytest.fixture(scope="module", params=DETECTORS)
def detector(request):
    return create_detector(request.param)


def _image(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_registry():
    assert set(list_detectors()) == {"auto", "yuface", "haar", "annotated", "none"}
    assert resolve_detector_name("auto") == "auto"
    assert [m.name for m in create_detector("auto").members] == ["yuface", "haar"][not yuface_available():]
    with pytest.raises(UnmaskError, match="auto, yuface, haar, annotated, none"):
        create_detector("mtcnn")
    assert create_detector("none").name == "none"


@pytest.mark.parametrize("name,centre", [("0-f1-su-ph.jpg", (256, 280)), ("single_face.jpg", (280, 270)),
                                         ("0-f15-hao-ph.jpg", (256, 290))])
def test_photos_one_face(detector, faces_dir, name, centre):
    image = _image(faces_dir / name)
    faces = detector.detect(image)
    assert len(faces) == 1, faces
    x, y, w, h = faces[0].box
    # A plausible face: 1/4 to 3/4 of the image's side, centred near the face (checked by eye once).
    side = min(image.shape[:2])
    assert 0.25 * side < w < 0.75 * side and 0.25 * side < h < 0.8 * side
    assert abs(x + w / 2 - centre[0]) < 0.12 * side and abs(y + h / 2 - centre[1]) < 0.12 * side
    assert 0 < faces[0].score <= 1


def test_landscape_no_face(detector, faces_dir):
    assert detector.detect(_image(faces_dir / "free-mountain-vector-01.jpg")) == []


def test_video_single_face_stable(detector, faces_dir):
    frames = read_frames(faces_dir / "single_face.mp4", range(0, 72, 6))
    boxes = []
    for i, f in sorted(frames.items()):
        faces = detector.detect(f)
        assert len(faces) == 1, f"frame {i}: {faces}"
        boxes.append(faces[0].box)
    boxes = np.array(boxes, float)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    # The person barely moves: centres within 10% of the face size, sizes within 10%.
    assert np.ptp(centres, axis=0).max() < 0.1 * boxes[:, 2].mean()
    assert np.ptp(boxes[:, 2]) < 0.1 * boxes[:, 2].mean()


def test_video_without_face(detector, faces_dir):
    frames = read_frames(faces_dir / "no_face.mp4", range(0, 95, 16))
    found = {i: faces for i, f in frames.items() if (faces := detector.detect(f))}
    assert found == {}


def test_face_leaves_the_frame(detector, faces_dir):
    frames = read_frames(faces_dir / "face_noface.mov", range(0, 169, 16))
    missing = sorted(i for i, f in frames.items() if not detector.detect(f))
    found = sorted(set(frames) - set(missing))
    # The face is there at the start and gone at the end (checked by eye: it leaves around frame 70).
    assert found and missing
    assert found[0] == 0 and max(found) < 72 and min(missing) >= 72


def test_none_and_annotated(tmp_path):
    image = np.zeros((50, 80, 3), np.uint8)
    assert create_detector("none").detect(image) == [Detection((0, 0, 80, 50), 1.0, "none")]

    class ClipLike:
        annotations = tmp_path / "ann.csv"
        face_box = (5, 6, 20, 20)

    ClipLike.annotations.write_text("frame,x,y,w,h\n3,10,12,30,30\n")
    det = create_detector("annotated")
    assert det.detect(image, clip=ClipLike, frame=3)[0].box == (10, 12, 30, 30)
    assert det.detect(image, clip=ClipLike, frame=4)[0].box == (5, 6, 20, 20)  # falls back to face_box
    ClipLike.face_box = None
    assert det.detect(image, clip=ClipLike, frame=4) == []
    with pytest.raises(UnmaskError, match="annotated"):
        det.detect(image)


def test_detect_rejects_bad_images():
    with pytest.raises(UnmaskError, match="RGB uint8"):
        create_detector("none").detect(np.zeros((10, 10), np.uint8))


def test_best_face_is_largest():
    small, big = Detection((0, 0, 10, 10), 0.99), Detection((0, 0, 40, 40), 0.6)
    assert best_face([small, big]) == big and best_face([]) is None


def test_crop_exact_square_box():
    image = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    np.testing.assert_array_equal(crop_face(image, (10, 5, 32, 32), margin=0, size=32), image[5:37, 10:42])
    crop = crop_face(image, (10, 5, 32, 32), margin=0, size=16)
    expected = cv2.resize(image[5:37, 10:42], (16, 16), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop, expected)


def test_crop_margin_square_and_padding():
    image = np.full((40, 40, 3), 200, np.uint8)
    # Box 10x20 at the top-left corner, margin 0.25: side 20 * 1.5 = 30 centred on (5, 10) -> [-10, 20) x [-5, 25)
    crop = crop_face(image, (0, 0, 10, 20), margin=0.25, size=30)
    assert crop.shape == (30, 30, 3) and crop.dtype == np.uint8
    assert (crop[:, :10] == 0).all() and (crop[:5] == 0).all()  # black outside the image
    assert (crop[5:, 10:] == 200).all()
    edge = crop_face(image, (0, 0, 10, 20), margin=0.25, size=30, pad="edge")
    assert (edge == 200).all()
    with pytest.raises(UnmaskError, match="outside"):
        crop_face(image, (100, 100, 5, 5), margin=0, size=8)
