"""Landmark augmentation: the similarity warp moves image and landmarks together; colour jitter."""

from __future__ import annotations

import pytest
import torch

from privlens.data.transforms import colour_jitter, random_similarity, similarity_warp
from privlens.train.data import FLIP_PERMUTATION, hflip


def _blob(height: int, width: int, x: float, y: float, sigma: float = 2.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    return torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)).expand(3, -1, -1).clone()


def _peak(image: torch.Tensor) -> tuple[float, float]:
    """Sub-pixel centroid of the 17 x 17 window around the brightest pixel."""
    channel = image[0]
    y, x = divmod(int(channel.flatten().argmax()), channel.shape[1])
    rows, cols = slice(y - 8, y + 9), slice(x - 8, x + 9)
    ys, xs = torch.meshgrid(
        torch.arange(float(y - 8), y + 9), torch.arange(float(x - 8), x + 9), indexing="ij"
    )
    weights = channel[rows, cols] / channel[rows, cols].sum()
    return float((weights * xs).sum()), float((weights * ys).sum())


@pytest.mark.parametrize(
    ("angle", "scale", "shift"), [(0.0, 1.0, (0.0, 0.0)), (30.0, 1.2, (3.0, -2.0)), (-20.0, 0.8, (-4.0, 5.0))]
)
def test_similarity_warp_moves_the_landmark_with_the_image(angle, scale, shift):
    image = _blob(64, 48, 30.0, 20.0)
    warped, moved = similarity_warp(image, torch.tensor([[30.0, 20.0]]), angle, scale, shift)
    assert warped.shape == image.shape
    assert _peak(warped) == pytest.approx(tuple(moved[0].tolist()), abs=0.05)


def test_quarter_turn_is_exact_and_counter_clockwise_on_screen():
    _, moved = similarity_warp(torch.zeros(3, 64, 64), torch.tensor([[50.0, 31.5]]), 90.0, 1.0, (0.0, 0.0))
    assert moved[0].tolist() == pytest.approx([31.5, 13.0], abs=1e-4)  # right of centre -> above it


def test_random_draws_stay_in_range_and_are_reproducible():
    draws = [random_similarity(64, 15, 0.15, 0.08, torch.Generator().manual_seed(s)) for s in range(50)]
    assert all(abs(a) <= 15 and 1 / 1.15 <= s <= 1.15 and max(map(abs, t)) <= 0.08 * 64 for a, s, t in draws)
    assert draws[3] == random_similarity(64, 15, 0.15, 0.08, torch.Generator().manual_seed(3))


def test_flip_swaps_left_and_right_landmarks():
    assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[0] == 16 and FLIP_PERMUTATION[30] == 30
    points = torch.zeros(68, 2)
    points[36], points[45] = torch.tensor([10.0, 20.0]), torch.tensor([50.0, 20.0])
    _, flipped = hflip(torch.zeros(3, 64, 64), points)
    assert flipped[36].tolist() == [13.0, 20.0] and flipped[45].tolist() == [53.0, 20.0]


def test_colour_jitter_stays_in_range_and_changes_the_image():
    image = torch.rand(3, 16, 16)
    out = colour_jitter(image, 1.0, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, image)
    assert colour_jitter(image, 0.0) is image
