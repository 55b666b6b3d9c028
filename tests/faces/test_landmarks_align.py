import numpy as np
import torch

from privlens.faces import align_face, face_landmarks, ffhq_quad, landmarks68
from privlens.faces.landmarks import LANDMARK_GROUPS, eye_centres
from privlens.faces.models import dlib_model_path


def test_dlib_models_are_found_without_importing_face_recognition_models():
    import sys

    assert dlib_model_path("shape68").is_file()
    assert "face_recognition_models" not in sys.modules


def test_68_landmarks_have_the_ibug_layout(astro, astro_landmarks):
    points = astro_landmarks
    assert points.shape == (68, 2)
    right_eye, left_eye = eye_centres(points)
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image's left
    nose_tip = points[30]
    mouth = points[list(LANDMARK_GROUPS["mouth"])].mean(0)
    assert max(right_eye[1], left_eye[1]) < nose_tip[1] < mouth[1] < points[8, 1]  # chin lowest


def test_landmarks_follow_a_shift_exactly(astro, astro_landmarks):
    """A 20 px shift moves dlib's HOG box and the 68 points by exactly 20 px."""
    shifted = torch.nn.functional.pad(astro[None], (20, 0, 0, 0), mode="replicate")[0, :, :, :512]
    _, moved = face_landmarks(shifted)
    np.testing.assert_allclose(moved - astro_landmarks, np.tile([20.0, 0.0], (68, 1)), atol=0.5)


def test_alignment_levels_the_eyes_and_matches_a_redetection(astro, astro_landmarks):
    # rotate the photo by 12 degrees so there is something to level
    import cv2

    array = (astro.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    rotation = cv2.getRotationMatrix2D((256, 256), 12, 1.0)
    tilted = cv2.warpAffine(array, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT)
    _, points = face_landmarks(tilted)
    right, left = eye_centres(points)
    assert abs(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))) > 8

    aligned = align_face(tilted, points, 256)
    assert aligned.image.shape == (3, 256, 256) and aligned.image.dtype == torch.float32
    right, left = eye_centres(aligned.landmarks)
    assert abs(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))) < 1.5
    # FFHQ framing: eyes centred horizontally, just above the middle (0.1 of eye-to-mouth)
    assert abs((right[0] + left[0]) / 2 - 128) < 4
    assert 0.44 * 256 < (right[1] + left[1]) / 2 < 0.5 * 256
    # the transformed landmarks are where dlib finds them again on the crop
    _, again = face_landmarks(aligned.image)
    assert np.abs(again - aligned.landmarks).mean() < 1.5


def test_small_output_uses_the_shrink_path(astro, astro_landmarks):
    small = align_face(astro, astro_landmarks, 32)
    big = align_face(astro, astro_landmarks, 256)
    np.testing.assert_allclose(small.landmarks, (big.landmarks + 0.5) / 8 - 0.5, atol=0.05)


def test_quad_is_a_square(astro_landmarks):
    quad = ffhq_quad(astro_landmarks)
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    np.testing.assert_allclose(sides, sides[0], rtol=1e-9)


def test_landmarks68_takes_a_plain_box(astro, astro_landmarks):
    np.testing.assert_array_equal(landmarks68(astro, (175, 76, 265, 166)), astro_landmarks)


def test_crop_beyond_the_border_repeats_the_edge_and_is_marked(astro, astro_landmarks):
    """A face near the left border: the crop part outside the photo is the edge column repeated
    (never a mirror image) and ``valid`` is False there only."""
    shift = 150  # move the face left so that its FFHQ square leaves the photo
    moved = astro[:, :, shift:]
    points = astro_landmarks - np.array([shift, 0.0])
    aligned = align_face(moved, points, 64)
    assert aligned.valid is not None and aligned.valid.shape == (64, 64)
    assert 0 < (~aligned.valid).sum() < 64 * 64 / 2
    assert not aligned.valid[:, 0].any() and aligned.valid[:, -1].all()
    # outside the photo each crop pixel shows the photo's left edge at its source height (a mirror
    # would show the photo's inside at -x instead)
    import cv2

    inverse = cv2.invertAffineTransform(aligned.matrix)
    crop = aligned.image.numpy().transpose(1, 2, 0)
    edge = moved[:, :, 0].numpy().T  # [H, 3]
    inside = moved.numpy().transpose(1, 2, 0)
    edge_errors, mirror_errors = [], []
    for y, x in zip(*np.nonzero(~aligned.valid), strict=True):
        sx, sy = inverse @ np.array([x, y, 1.0])
        row = int(np.clip(round(sy), 0, edge.shape[0] - 1))
        edge_errors.append(np.abs(crop[y, x] - edge[row]).max())
        mirror_errors.append(
            np.abs(crop[y, x] - inside[row, min(int(round(-sx)), inside.shape[1] - 1)]).max()
        )
    assert np.median(edge_errors) < 0.03 and np.median(mirror_errors) > 2 * np.median(edge_errors)


def test_alignment_reads_only_the_region_under_the_crop(astro, astro_landmarks):
    """A huge canvas around the face gives the same crop as the photo alone."""
    canvas = torch.zeros(3, 2000, 3000)
    canvas[:, 700:1212, 1100:1612] = astro
    big = align_face(canvas, astro_landmarks + np.array([1100.0, 700.0]), 64)
    small = align_face(astro, astro_landmarks, 64)
    assert (big.image - small.image).abs().max() < 2 / 255
    np.testing.assert_allclose(big.landmarks, small.landmarks, atol=1e-6)
