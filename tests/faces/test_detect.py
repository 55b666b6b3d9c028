import numpy as np
import pytest
import torch

from privlens.faces import DETECTORS, best_face, detect_faces
from privlens.faces.convert import to_uint8_rgb

# The astronaut's face, measured once by eye on the 512 px photo: x 175-265, y 70-170.
FACE_CENTRE = np.array([221.0, 120.0])


@pytest.mark.parametrize("detector", DETECTORS)
def test_every_detector_finds_the_astronaut_face(astro, detector):
    face = best_face(astro, detector)
    assert face is not None and face.detector == detector
    x0, y0, x1, y1 = face.box
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    assert np.abs(centre - FACE_CENTRE).max() < 15
    assert 70 < face.width < 120 and 70 < face.height < 130


def test_mtcnn_gives_five_points_inside_the_box(astro):
    face = best_face(astro, "mtcnn")
    assert face.points5.shape == (5, 2) and face.points5.dtype == np.float64
    x0, y0, x1, y1 = face.box
    assert np.all((face.points5[:, 0] > x0) & (face.points5[:, 0] < x1))
    assert np.all((face.points5[:, 1] > y0) & (face.points5[:, 1] < y1))
    # order: left eye, right eye (image sides), nose, mouth left, mouth right
    assert face.points5[0, 0] < face.points5[1, 0] and face.points5[3, 0] < face.points5[4, 0]
    assert face.points5[:2, 1].max() < face.points5[2, 1] < face.points5[3:, 1].min()


def test_faces_are_sorted_by_score(astro):
    faces = detect_faces(astro, "dlib")
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_lfw_detection_counts(lfw, non_faces):
    """ENVIRONMENT.md reports HOG finds most of the 100 upsampled LFW faces; few non-faces fire."""
    found = sum(best_face(image, "dlib") is not None for image in lfw)
    false = sum(best_face(image, "dlib") is not None for image in non_faces[:30])
    assert found >= 90
    assert false <= 3


def test_a_blank_image_has_no_face():
    blank = torch.full((3, 120, 120), 0.5)
    for detector in ("dlib", "mtcnn"):
        assert detect_faces(blank, detector) == []
        assert best_face(blank, detector) is None


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown detector"):
        detect_faces(torch.zeros(3, 8, 8), "haar")
    with pytest.raises(ValueError):
        to_uint8_rgb(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError):
        to_uint8_rgb(np.zeros((8, 8, 3), dtype=np.float32))


def test_uint8_and_tensor_inputs_agree(astro):
    array = to_uint8_rgb(astro)
    assert array.shape == (512, 512, 3) and array.dtype == np.uint8
    assert detect_faces(array, "dlib")[0].box == detect_faces(astro, "dlib")[0].box


def test_detection_on_a_shrunk_copy_maps_boxes_back(astro):
    full = detect_faces(astro, "mtcnn")[0]
    shrunk = detect_faces(astro, "mtcnn", max_side=256)[0]
    assert np.abs(np.array(full.box) - np.array(shrunk.box)).max() < 8
    assert np.abs(full.points5 - shrunk.points5).max() < 6
    assert detect_faces(astro, "mtcnn", min_face=200) == []


def test_boxes_are_matched_one_to_one_by_overlap():
    from privlens.faces.detect import iou, match_boxes

    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    a = [(0, 0, 10, 10), (100, 100, 120, 120)]
    b = [(101, 99, 121, 119), (1, 1, 11, 11), (300, 300, 310, 310)]
    assert sorted(match_boxes(a, b, 0.3)) == [(0, 1), (1, 0)]
    assert match_boxes(a, [(50, 50, 60, 60)], 0.3) == []
