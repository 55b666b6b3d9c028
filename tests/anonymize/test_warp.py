"""The warp backend moves reference landmarks onto the target geometry (analytically and in pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privlens.anonymize.warp import fit_similarity, warp_map, warp_reference


@pytest.fixture(scope="module")
def astronaut_face():
    from privlens.data.samples import astronaut
    from privlens.faces import face_landmarks

    image = astronaut(256)
    found = face_landmarks(image)
    assert found is not None
    return image, found[1]


def new_geometry(points: np.ndarray) -> np.ndarray:
    """Another pose and expression: rotate 12 degrees, scale 0.85, shift, open the mouth."""
    centre = points.mean(0)
    angle = np.deg2rad(12)
    rotation = 0.85 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = (points - centre) @ rotation.T + centre + np.array([14.0, -6.0])
    target[56:59] += [0.0, 4.0]  # lower outer lip down
    target[48:51] += [0.0, -1.5]
    return target


def test_similarity_is_recovered():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (68, 2))
    angle, scale, shift = 0.4, 1.7, np.array([3.0, -8.0])
    matrix = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    fitted = fit_similarity(source, source @ matrix.T + shift)
    np.testing.assert_allclose(fitted[:, :2], matrix, atol=1e-9)
    np.testing.assert_allclose(fitted[:, 2], shift, atol=1e-9)


def test_map_sends_each_target_landmark_to_its_reference_landmark(astronaut_face):
    _, reference = astronaut_face
    target = np.round(new_geometry(reference))  # on pixel centres, where the map is read exactly
    _, first = np.unique(target, axis=0, return_index=True)
    keep = np.sort(first)  # distinct target points only
    assert len(keep) > 60
    mapping = warp_map(reference[keep], target[keep], 256)
    xs, ys = target[keep].astype(int).T
    np.testing.assert_allclose(mapping[ys, xs], reference[keep], atol=1e-3)


def test_identity_warp_returns_the_reference(astronaut_face):
    image, points = astronaut_face
    out = warp_reference(image, points, points)
    assert out.shape == image.shape
    assert (out - image).abs().max() < 1e-5


def test_blobs_land_on_the_target_landmarks(astronaut_face):
    """A bright dot drawn at reference landmark k appears at target landmark k after the warp."""
    _, reference = astronaut_face
    target = new_geometry(reference)
    ys, xs = np.mgrid[0:256, 0:256].astype(np.float64)
    for k in (0, 8, 16, 19, 24, 30, 36, 45, 48, 54, 57, 62, 66):
        blob = np.exp(-((xs - reference[k, 0]) ** 2 + (ys - reference[k, 1]) ** 2) / 2.0)
        image = torch.from_numpy(np.repeat(blob[None], 3, 0)).float()
        out = warp_reference(image, reference, target)[0].double().numpy()
        peak = out.argmax()
        # the brightest pixel is the one nearest the target (at most half a pixel diagonal off) ...
        assert np.linalg.norm(np.array([peak % 256, peak // 256]) - target[k]) <= 0.75, k
        # ... and the blob's centre (above half maximum) lies within 2 px of it, though the mouth's
        # triangles stretch unevenly around the moved lip points
        top = np.where(out > 0.5 * out.max(), out, 0.0)
        centre = np.array([(top * xs).sum(), (top * ys).sum()]) / top.sum()
        assert np.linalg.norm(centre - target[k]) < 2.0, k


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_dlib_finds_the_warped_face_on_the_target_geometry(astronaut_face):
    """Re-detection with dlib on the warped photo: landmarks within 2 px of the target (mean)."""
    from privlens.faces import detect_faces, landmarks68

    image, reference = astronaut_face
    target = new_geometry(reference)
    warped = warp_reference(image, reference, target)
    # dlib also fires on the suit here: take the detection on the target face
    faces = [f for f in detect_faces(warped) if _inside(target.mean(0), f.box)]
    assert faces, "dlib finds no face around the target geometry"
    error = np.linalg.norm(landmarks68(warped, faces[0]) - target, axis=1)
    assert error.mean() < 2.0, error.mean()
    # the geometry really moved: the unwarped face is far from the target
    assert np.linalg.norm(reference - target, axis=1).mean() > 10.0


def test_output_size_and_reference_of_another_size(astronaut_face):
    image, reference = astronaut_face
    target = (reference + 0.5) * 0.5 - 0.5  # the same face, in a 128 px frame
    out = warp_reference(image, reference, target, size=128)
    assert out.shape == (3, 128, 128)
    half = torch.nn.functional.interpolate(image[None], size=128, mode="bilinear", antialias=True)[0]
    assert (out - half).abs().mean() < 0.03


def test_degenerate_and_bad_landmarks(astronaut_face):
    image, reference = astronaut_face
    collapsed = np.full((68, 2), 100.0)  # an untrained U can put every landmark on one pixel
    out = warp_reference(image, reference, collapsed)
    assert torch.isfinite(out).all() and out.shape == image.shape
    with pytest.raises(ValueError, match="NaN"):
        warp_reference(image, reference, np.full((68, 2), np.nan))
    with pytest.raises(ValueError, match="counts differ"):
        warp_reference(image, reference, reference[:60])
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        warp_reference(image[:1], reference, reference)
