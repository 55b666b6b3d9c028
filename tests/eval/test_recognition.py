"""Rank-1, TAR@FAR and bootstrap intervals against independent loop computations."""

import math

import numpy as np
import pytest

from privlens.eval.recognition import (
    bootstrap_ci,
    distance_matrix,
    rank1_hits,
    recognition_figures,
    threshold_at_far,
)


def _embeddings(rng, n, noise):
    gallery = rng.normal(size=(n, 8))
    return gallery, gallery + noise * rng.normal(size=(n, 8))


def test_rank1_matches_a_loop_over_probes(rng):
    gallery, probes = _embeddings(rng, 30, 0.9)
    hits = rank1_hits(distance_matrix(probes, gallery))
    expected = []
    for i, probe in enumerate(probes):
        dists = [math.dist(probe, g) for g in gallery]
        expected.append(min(range(len(dists)), key=dists.__getitem__) == i)
    assert hits.tolist() == expected
    assert 0 < hits.mean() < 1  # a mix of hits and misses: the test discriminates


def test_rank1_of_unrelated_probes_is_near_chance(rng):
    gallery = rng.normal(size=(50, 8))
    hits = [rank1_hits(distance_matrix(rng.normal(size=(50, 8)), gallery)).mean() for _ in range(40)]
    assert np.mean(hits) == pytest.approx(1 / 50, abs=0.01)


def test_tar_at_far_matches_counting_pairs(rng):
    gallery, probes = _embeddings(rng, 12, 0.8)
    cal_gallery, cal_probes = _embeddings(rng, 40, 0.8)
    result = recognition_figures(gallery, probes, cal_gallery, cal_probes, fars=(1e-2, 1e-3))
    impostors = sorted(
        math.dist(cal_probes[i], cal_gallery[j]) for i in range(40) for j in range(40) if i != j
    )
    assert result.impostor_pairs == len(impostors) == 1560
    for far in (1e-2, 1e-3):
        t = result.thresholds[far]
        accepted = sum(d < t for d in impostors)
        assert accepted <= far * len(impostors)
        assert sum(d <= t for d in impostors) > far * len(impostors)  # the largest such threshold
        genuine = [math.dist(probes[i], gallery[i]) for i in range(12)]
        assert result.tar[far].value == pytest.approx(np.mean([d < t for d in genuine]))
        assert result.tar[far].n == 12
    assert result.chance == pytest.approx(1 / 12)
    assert result.identity_distance.value == pytest.approx(np.mean(genuine))


def test_threshold_below_resolution_accepts_no_impostor():
    assert threshold_at_far(np.array([0.3, 0.2, 0.9]), 1e-3) == 0.2
    with pytest.raises(ValueError):
        threshold_at_far(np.array([]), 1e-2)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n(rng):
    small = rng.random(20) < 0.3
    large = rng.random(2000) < 0.3
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded


def test_gallery_figures_identify_people_by_their_nearest_photo():
    """Three people with two gallery photos each (1-d embeddings): a probe counts as identified
    when a photo of its own person is strictly nearest; chance is one over the people."""
    from privlens.eval.recognition import gallery_figures, identity_distances

    gallery = np.array([[0.0], [10.0], [3.0], [4.0], [7.0], [20.0]])
    labels = ["ann", "ann", "bob", "bob", "cid", "cid"]
    probes = np.array([[9.0], [3.2], [6.0], [21.0]])  # ann (near her 10), bob, bob (nearer cid), cid
    distances, people = identity_distances(probes, gallery, labels)
    assert people == ["ann", "bob", "cid"]
    assert distances[0].tolist() == [1.0, 5.0, 2.0]  # the nearest photo of each person
    calibration = np.arange(6.0)[:, None]
    result = gallery_figures(
        probes, ["ann", "bob", "bob", "cid"], gallery, labels, calibration, calibration + 0.5
    )
    assert result.hits.tolist() == [True, True, False, True]
    assert result.rank1.value == 0.75 and result.chance == pytest.approx(1 / 3) and result.n == 4
    assert result.genuine.tolist() == pytest.approx([1.0, 0.2, 2.0, 1.0])
    with pytest.raises(ValueError, match="without a gallery photo: dan"):
        gallery_figures(probes[:1], ["dan"], gallery, labels, calibration, calibration)
    with pytest.raises(ValueError, match="at least 2 identities"):
        gallery_figures(probes[:1], ["ann"], gallery[:2], labels[:2], calibration, calibration)


def test_same_photo_recognition_is_the_gallery_case_with_one_photo_each():
    rng = np.random.default_rng(3)
    gallery, probes = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    calibration = rng.normal(size=(6, 4))
    from privlens.eval.recognition import gallery_figures

    same = recognition_figures(gallery, probes, calibration, calibration + 0.1)
    labels = list("abcdefgh")
    by_people = gallery_figures(probes, labels, gallery, labels, calibration, calibration + 0.1)
    assert same.row() == by_people.row()
    assert same.hits.tolist() == rank1_hits(distance_matrix(probes, gallery)).tolist()
