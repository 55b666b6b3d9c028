"""Stage I losses (Lopez et al. 2024, Eqs. 4-6) and the heatmap targets U*(x).

``L = L_optics + alpha2 * L_heatmap`` with

* ``L_optics = (1 - ||x - y||^2) + alpha1 * ||H - H_f||_2``: ``||x - y||^2`` is the mean squared
  difference per pixel and channel between scene and capture (images in [0, 1], so it lies in
  [0, 1]); ``||H - H_f||_2`` the Frobenius norm of the difference between the camera's PSF stack
  ``[3, N, N]`` (each PSF sums to 1) and the frozen defocus PSF ``H_f``.
* ``L_heatmap = ||U(y) - U*(x)||_1``: the mean absolute difference over the heatmap channels and
  pixels, averaged over the network's stacks (intermediate supervision). It is computed with
  gradients: it trains U and, through the capture y, the lens.

Every loss is computed in float32, also when U runs under bf16 autocast.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from privlens.faces.heatmaps import face_part_masks, render_heatmaps


def heatmap_targets(
    landmarks: torch.Tensor,
    image_size: int,
    heatmap_size: int,
    sigma: float = 1.5,
    mask_sigma_fraction: float = 0.04,
) -> torch.Tensor:
    """U*(x): ``[B, 68, 2]`` landmarks (x, y image pixels) -> ``[B, 70, h, w]``: the 68 landmark
    Gaussians (peak 1, ``sigma`` heatmap pixels) then the coarse and fine face masks, rendered on
    the landmarks' device with :mod:`privlens.faces.heatmaps`."""
    landmarks = landmarks.float()
    gaussians = render_heatmaps(landmarks, image_size, heatmap_size, sigma)
    masks = face_part_masks(landmarks, image_size, heatmap_size, mask_sigma_fraction)
    return torch.cat([gaussians, masks], dim=-3)


def distortion(scene: torch.Tensor, capture: torch.Tensor) -> torch.Tensor:
    """``||x - y||^2``: mean squared difference per pixel and channel (a scalar in [0, 1])."""
    return (scene.float() - capture.float()).square().mean()


def psf_distance(psf: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||H - H_f||_2``: Frobenius norm of the PSF difference over all wavelengths."""
    return torch.linalg.vector_norm((psf.float() - reference.float()).flatten())


def heatmap_l1(predictions: list[torch.Tensor] | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||U(y) - U*(x)||_1``: mean absolute error, averaged over the stacks' predictions."""
    if isinstance(predictions, torch.Tensor):
        predictions = [predictions]
    target = target.float()
    return torch.stack([(p.float() - target).abs().mean() for p in predictions]).mean()


class Stage1Loss(NamedTuple):
    """The total loss and its parts (scalars); ``optics`` is 0 when the lens does not train."""

    total: torch.Tensor
    distortion: torch.Tensor
    psf: torch.Tensor
    heatmap: torch.Tensor
    optics: torch.Tensor


def stage1_loss(
    scene: torch.Tensor,
    capture: torch.Tensor,
    psf: torch.Tensor,
    reference_psf: torch.Tensor | None,
    predictions: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    alpha1: float = 10.0,
    alpha2: float = 2.0,
    optics: bool = True,
) -> Stage1Loss:
    """Eq. 6 of the paper. With ``optics=False`` (heatmap pretraining, the low-resolution
    baseline) only ``alpha2 * L_heatmap`` is minimised; the other parts are still reported."""
    d = distortion(scene, capture)
    p = psf_distance(psf, reference_psf) if reference_psf is not None else d.new_zeros(())
    h = heatmap_l1(predictions, target)
    l_optics = (1.0 - d) + alpha1 * p
    total = alpha2 * h + (l_optics if optics else 0.0)
    return Stage1Loss(total, d, p, h, l_optics if optics else d.new_zeros(()))
