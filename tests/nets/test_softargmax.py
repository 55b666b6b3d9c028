"""Soft-argmax against rendered Gaussians with known sub-pixel centres."""

from __future__ import annotations

import pytest
import torch

from privlens.faces.heatmaps import heatmap_to_image_coords, render_heatmaps
from privlens.nets import soft_argmax


def test_recovers_subpixel_centres_in_heatmap_pixels():
    centres = torch.tensor([[[10.3, 20.7], [31.25, 5.5], [16.0, 16.0]]])  # (u, v)
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(48.0), indexing="ij")
    maps = torch.exp(
        -((xs - centres[..., 0, None, None]) ** 2 + (ys - centres[..., 1, None, None]) ** 2) / 4.5
    )
    found = soft_argmax(maps)
    assert found.shape == (1, 3, 2)
    assert torch.allclose(found, centres, atol=0.05)


def test_round_trip_with_the_ground_truth_renderer():
    landmarks = torch.tensor([[[100.0, 80.0], [37.5, 200.25]]])
    maps = render_heatmaps(landmarks, 256, 64, sigma=1.5)
    points = heatmap_to_image_coords(soft_argmax(maps), 256, 64)
    assert torch.allclose(points, landmarks, atol=0.2)  # 0.05 heatmap px at 4 image px each


def test_window_ignores_the_flat_background_of_a_large_map():
    maps = torch.zeros(1, 1, 64, 64)
    maps[0, 0, 5, 7] = 1.0
    assert torch.allclose(soft_argmax(maps), torch.tensor([[[7.0, 5.0]]]), atol=1e-3)
    assert soft_argmax(maps, window=None)[0, 0, 0] > 9  # the global softmax is dragged to the centre


def test_differentiable_and_validated():
    maps = torch.rand(2, 5, 8, 8, requires_grad=True)
    soft_argmax(maps, temperature=0.5).sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="temperature"):
        soft_argmax(maps, temperature=0)
    with pytest.raises(ValueError, match="window"):
        soft_argmax(maps, window=0)
