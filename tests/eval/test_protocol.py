"""The evaluation protocol: reference draws, baselines, Pareto front."""

import pytest
import torch

from privlens.eval.protocol import blur_baseline, draw_references, pixelate_baseline
from privlens.eval.sweep import pareto_front


def test_exactly_k_distinct_references_per_source_deterministic_for_a_seed():
    plan = draw_references(7, 30, k=10, seed=3)
    assert len(plan) == 7
    for row in plan:
        assert len(row) == 10 and len(set(row)) == 10
        assert all(0 <= r < 30 for r in row)
    assert plan == draw_references(7, 30, k=10, seed=3)
    assert plan != draw_references(7, 30, k=10, seed=4)
    assert len({tuple(row) for row in plan}) > 1  # sources do not all share one draw


def test_a_source_never_gets_itself_as_reference():
    exclude = list(range(11))  # source i is pool face i
    plan = draw_references(11, 11, k=10, seed=0, exclude=exclude)
    for i, row in enumerate(plan):
        assert i not in row and len(set(row)) == 10


def test_too_small_pool_is_an_error():
    with pytest.raises(ValueError, match="at least 10"):
        draw_references(3, 9, k=10)
    with pytest.raises(ValueError, match="at least 11"):
        draw_references(3, 10, k=10, exclude=[0, 1, 2])
    with pytest.raises(ValueError):
        draw_references(3, 10, k=0)


def test_software_baselines():
    images = torch.rand(2, 3, 32, 32)
    blurred = blur_baseline().deidentify(images, [[0]] * 2)
    pixelated = pixelate_baseline(8).deidentify(images, [[0]] * 2)
    assert blurred.shape == pixelated.shape == (2, 1, 3, 32, 32)
    assert blurred.std() < images.std() / 2
    assert torch.equal(pixelated[0, 0, :, :4, :4], pixelated[0, 0, :, 0, 0][:, None, None].expand(3, 4, 4))
    assert torch.allclose(pixelated.mean(dim=(-2, -1)), images.mean(dim=(-2, -1))[:, None], atol=1e-6)


def test_pareto_front():
    # (privacy, error): b dominates a; c and b trade off; d is dominated by c
    privacy = [0.5, 0.6, 0.9, 0.8]
    error = [20.0, 10.0, 30.0, 35.0]
    assert pareto_front(privacy, error) == [False, True, True, False]


def test_strongest_attack_is_the_best_identifier_then_the_closest():
    from privlens.attacks.suite import strongest

    scores = {
        "none": {"rank1": 0.2, "identity_distance": 0.5},
        "wiener": {"rank1": 0.6, "identity_distance": 0.55},
        "inversion": {"rank1": 0.6, "identity_distance": 0.45},
        "blind-rl": {"rank1": float("nan"), "identity_distance": 0.1},
    }
    assert strongest(scores) == "inversion"
    scores["wiener"]["rank1"] = 0.7
    assert strongest(scores) == "wiener"
