import numpy as np
import pytest

from privlens.eval import box_error, detection_rate, face_geometry, landmark_error


def test_error_definitions():
    points = np.array([[10.0, 10.0], [20.0, 30.0]])
    assert landmark_error(points, points) == 0.0
    assert landmark_error(points, points + [3.0, -4.0]) == pytest.approx(7.0)  # |dx| + |dy|
    assert box_error([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        landmark_error(points, points[:1])
    assert detection_rate([True, False, True, True]) == 0.75 and detection_rate([]) == 0.0


@pytest.mark.parametrize(("detector", "points", "tolerance"), [("dlib", 68, 0.5), ("mtcnn", 5, 2.0)])
def test_image_against_itself_is_zero_and_against_a_shift_is_the_shift(
    astro, shift_right, detector, points, tolerance
):
    if detector == "mtcnn":  # MTCNN is slow on 512 px: a 192 px crop around the face
        astro = astro[:, 30:222, 125:317].contiguous()
    original = face_geometry(astro, detector)
    again = face_geometry(astro.clone(), detector)
    moved = face_geometry(shift_right(astro, 20), detector)
    assert original.points.shape == (points, 2)
    assert landmark_error(original.points, again.points) == 0.0
    assert box_error(original.box, again.box) == 0.0
    assert landmark_error(original.points, moved.points) == pytest.approx(20.0, abs=tolerance)
    assert box_error(original.box, moved.box) == pytest.approx(20.0, abs=tolerance)


def test_no_face_gives_none(non_faces):
    assert face_geometry(non_faces[0], "dlib") is None
    with pytest.raises(ValueError):
        face_geometry(non_faces[0], "dlib-cnn")
