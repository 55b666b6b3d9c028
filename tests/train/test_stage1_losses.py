"""Stage I heatmap loss options (MSE, foreground weight, soft-argmax coordinates, PSF normalisation)."""

from __future__ import annotations

import pytest
import torch

from privlens.faces.heatmaps import render_heatmaps
from privlens.train.losses import (
    MSE_SCALE,
    coordinate_loss,
    foreground_weights,
    heatmap_loss,
    psf_distance,
    stage1_loss,
)


def _landmarks(batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(batch, 68, 2) * 40 + 12


def test_mse_and_l1_values():
    target = render_heatmaps(_landmarks(), 64, 16)
    assert float(heatmap_loss(target, target, "mse")) == 0.0
    zero = torch.zeros_like(target)
    assert float(heatmap_loss(zero, target, "mse")) == pytest.approx(
        MSE_SCALE * float(target.square().mean())
    )
    assert float(heatmap_loss(zero, target, "l1")) == pytest.approx(float(target.mean()))
    with pytest.raises(ValueError, match="heatmap loss"):
        heatmap_loss(zero, target, "huber")


def test_foreground_weighting_counts_errors_near_landmarks_more():
    target = render_heatmaps(torch.tensor([[[32.0, 32.0]]]), 64, 16)
    weights = foreground_weights(target, 9.0)
    assert weights[0, 0, 7, 7] == 10.0 and weights[0, 0, 0, 0] == 1.0
    near, far = torch.zeros_like(target), torch.zeros_like(target)
    near[0, 0, 7, 7], far[0, 0, 0, 0] = 1.0, 1.0  # the same error, on and off the landmark
    on = heatmap_loss(target + near, target, "mse", 9.0) - heatmap_loss(target, target, "mse", 9.0)
    off = heatmap_loss(target + far, target, "mse", 9.0)
    assert float(on) == pytest.approx(10 * float(off))


def test_coordinate_loss_measures_heatmap_pixels_and_has_gradients():
    points = _landmarks()
    exact = render_heatmaps(points, 64, 16)
    assert float(coordinate_loss(exact, points, 64)) < 0.05
    shifted = render_heatmaps(points + torch.tensor([4.0, 0.0]), 64, 16)  # 4 image px = 1 heatmap px
    assert float(coordinate_loss(shifted, points, 64)) == pytest.approx(1.0, abs=0.06)
    predictions = shifted.clone().requires_grad_(True)
    coordinate_loss([predictions, predictions], points, 64).backward()
    assert predictions.grad.abs().sum() > 0


def test_stage1_loss_options():
    points = _landmarks()
    target = torch.cat([render_heatmaps(points, 64, 16), torch.zeros(2, 2, 16, 16)], dim=1)
    scene = torch.rand(2, 3, 64, 64)
    psf, reference = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    base = stage1_loss(scene, scene, psf, reference, target, target, 10.0, 2.0)
    assert base.coords is None and float(base.heatmap) == 0.0
    scaled = stage1_loss(scene, scene, psf, reference, target, target, 10.0, 2.0, psf_scale=4.0)
    assert float(scaled.psf) == pytest.approx(float(psf_distance(psf, reference)) / 4)
    full = stage1_loss(
        scene, scene, psf, reference, target, target, heatmap="mse", coord_weight=0.5, landmarks=points
    )
    assert float(full.coords) < 0.05 and float(full.heatmap) == pytest.approx(0.5 * float(full.coords))
    with pytest.raises(ValueError, match="needs the landmarks"):
        stage1_loss(scene, scene, psf, reference, target, target, coord_weight=0.5)
