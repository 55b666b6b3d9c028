"""eval.shape_identity: shape space, its distances against a brute-force Procrustes fit, rank-1."""

from __future__ import annotations

import numpy as np
import pytest

from privlens.eval.shape_identity import (
    choose_expansion,
    expand_from_mean,
    genuine_ranks,
    landmark_rank1_hits,
    shape_distances,
    shape_space,
)


def _shapes(n: int, seed: int = 0, jitter: float = 2.0) -> np.ndarray:
    """``[n, 68, 2]`` faces: one random template, each face's points moved by ``jitter`` px."""
    rng = np.random.default_rng(seed)
    template = rng.uniform(10, 54, (68, 2))
    return template + rng.normal(0.0, jitter, (n, 68, 2))


def _similar(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) * scale + np.asarray(shift)


def _brute_force_procrustes(a: np.ndarray, b: np.ndarray, steps: int = 20000) -> float:
    """min over rotation angles (a fine grid, no SVD) of the distance of unit, centred a to b."""

    def unit(p):
        p = p - p.mean(axis=0)
        return p / np.linalg.norm(p)

    a, b = unit(a), unit(b)
    return min(np.linalg.norm(_similar(a, t, 1.0, (0, 0)) - b) for t in np.linspace(-np.pi, np.pi, steps))


def test_position_scale_and_rotation_carry_no_weight():
    faces = _shapes(3)
    moved = np.stack([_similar(f, 0.3 * k, 1.0 + 0.4 * k, (5.0 * k, -3.0)) for k, f in enumerate(faces)])
    distances = shape_distances(moved, faces)
    assert np.diagonal(distances) == pytest.approx(0.0, abs=1e-9)
    assert distances[~np.eye(3, dtype=bool)].min() > 0.01


def test_distance_to_the_reference_is_the_procrustes_distance():
    a, b = _shapes(2, seed=3, jitter=4.0)
    vectors = shape_space(np.stack([a, b]), reference=b)
    assert np.linalg.norm(vectors[0] - vectors[1]) == pytest.approx(_brute_force_procrustes(a, b), abs=1e-6)


def test_a_mirrored_pose_is_another_shape():
    face = _shapes(1, seed=1)[0]
    mirrored = face * np.array([-1.0, 1.0])
    assert shape_distances(mirrored[None], face[None])[0, 0] > 0.1


def test_rank1_hits_against_a_hand_count():
    gallery = _shapes(6, seed=2)
    rng = np.random.default_rng(9)
    probes = gallery + rng.normal(0.0, 0.05, gallery.shape)  # captures of the same photos
    assert landmark_rank1_hits(probes, gallery).all()
    swapped = probes[[1, 0, 2, 3, 4, 5]]  # faces 0 and 1 point to each other's photo
    assert landmark_rank1_hits(swapped, gallery).tolist() == [False, False, True, True, True, True]
    same = np.broadcast_to(gallery.mean(axis=0), gallery.shape)  # one average face for all
    nearest = shape_distances(same[:1], gallery)[0].argmin()
    assert landmark_rank1_hits(same, gallery).tolist() == [k == nearest for k in range(6)]


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\[N, 68, 2\]"):
        shape_distances(np.zeros((2, 5, 2)), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="no shape"):
        shape_distances(np.ones((2, 68, 2)), _shapes(2))
    with pytest.raises(ValueError, match="N >= 2"):
        landmark_rank1_hits(_shapes(1), _shapes(1))


def test_expansion_from_the_mean_and_genuine_ranks_by_hand():
    points = np.stack([np.full((68, 2), 1.0), np.full((68, 2), 3.0)])
    assert expand_from_mean(points, 2.0)[:, 0, 0].tolist() == [0.0, 4.0]  # mean 2, differences doubled
    assert expand_from_mean(points, 0.0)[:, 0, 0].tolist() == [2.0, 2.0]
    gallery = _shapes(5, seed=4)
    probes = gallery[[0, 1, 2, 4, 3]]  # faces 3 and 4 swapped
    ranks = genuine_ranks(probes, gallery)
    assert ranks[:3].tolist() == [0, 0, 0] and ranks[3] >= 1 and ranks[4] >= 1
    alpha, table = choose_expansion(gallery, gallery, (1.0, 2.0))
    assert alpha == 1.0 and table[1.0] == 0.0  # exact landmarks: no push, ties go to the first
