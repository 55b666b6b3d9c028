"""Stage I losses (Lopez et al. 2024, Eqs. 4-6) and the heatmap targets U*(x).

``L = L_optics + alpha2 * L_heatmap`` with

* ``L_optics = (1 - ||x - y||^2) + alpha1 * ||H - H_f||_2``: ``||x - y||^2`` is the mean squared
  difference per pixel and channel between scene and capture (images in [0, 1], so it lies in
  [0, 1]); ``||H - H_f||_2`` the Frobenius norm of the difference between the camera's PSF stack
  ``[3, N, N]`` (each PSF sums to 1) and the frozen defocus PSF ``H_f``.
* ``L_heatmap = ||U(y) - U*(x)||_1``: the mean absolute difference over the heatmap channels and
  pixels, averaged over the network's stacks (intermediate supervision). It is computed with
  gradients: it trains U and, through the capture y, the lens.

Deviations from Eq. 5 that the config can select (``loss.heatmap``, ``loss.foreground_weight``,
``loss.coord_weight``; the README's Stage I section gives the measured reasons):

* ``mse``: mean squared error instead of L1 (the L1 optimum on sparse Gaussians is an all-zero
  map), scaled by :data:`MSE_SCALE` so that its size is that of the L1 term at the start;
* foreground weighting: pixels within one heatmap pixel of a Gaussian above 0.2 weigh
  ``1 + foreground_weight``;
* a coordinate term: the soft-argmax of each landmark channel against the true landmark
  (mean Euclidean distance in heatmap pixels), the quantity the NME measures.

``||H - H_f||`` can be normalised by ``||H_o - H_f||`` (open lens to the defocus reference,
:func:`psf_distance` with ``scale``) so that alpha1 weighs a fraction of the open-to-defocus
distance rather than raw PSF units, whose size changes with the image size.

Every loss is computed in float32, also when U runs under bf16 autocast.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from privlens.faces.heatmaps import face_part_masks, image_to_heatmap_coords, render_heatmaps
from privlens.nets.softargmax import soft_argmax

HEATMAP_LOSSES = ("l1", "mse")
MSE_SCALE = 10.0  # MSE x 10 is about the size of the L1 term on Gaussians of sigma 1.5 at 16 px
NUM_LANDMARKS = 68


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


def psf_distance(psf: torch.Tensor, reference: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``||H - H_f||_2 / scale``: Frobenius norm of the PSF difference over all wavelengths."""
    return torch.linalg.vector_norm((psf.float() - reference.float()).flatten()) / scale


def heatmap_l1(predictions: list[torch.Tensor] | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||U(y) - U*(x)||_1``: mean absolute error, averaged over the stacks' predictions."""
    if isinstance(predictions, torch.Tensor):
        predictions = [predictions]
    target = target.float()
    return torch.stack([(p.float() - target).abs().mean() for p in predictions]).mean()


def foreground_weights(target: torch.Tensor, weight: float) -> torch.Tensor:
    """``1 + weight`` on the pixels within one pixel of a target value above 0.2, else 1."""
    near = F.max_pool2d(target.float(), 3, stride=1, padding=1) > 0.2
    return 1.0 + weight * near.float()


def heatmap_loss(
    predictions: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    kind: str = "l1",
    foreground_weight: float = 0.0,
) -> torch.Tensor:
    """The heatmap term, averaged over the stacks: ``l1`` (Eq. 5) or ``mse`` (x :data:`MSE_SCALE`),
    each pixel weighted by :func:`foreground_weights` when ``foreground_weight`` > 0."""
    if kind not in HEATMAP_LOSSES:
        raise ValueError(f"heatmap loss must be one of {', '.join(HEATMAP_LOSSES)}, got {kind!r}")
    if isinstance(predictions, torch.Tensor):
        predictions = [predictions]
    target = target.float()
    weights = foreground_weights(target, foreground_weight) if foreground_weight > 0 else None
    terms = []
    for p in predictions:
        diff = p.float() - target
        error = diff.abs() if kind == "l1" else MSE_SCALE * diff.square()
        terms.append((error * weights).mean() if weights is not None else error.mean())
    return torch.stack(terms).mean()


def coordinate_loss(
    predictions: list[torch.Tensor] | torch.Tensor, landmarks: torch.Tensor, image_size: int
) -> torch.Tensor:
    """Mean Euclidean distance (heatmap pixels) between the soft-argmax of the 68 landmark
    channels and the true ``[B, 68, 2]`` landmarks (image pixels), averaged over the stacks."""
    if isinstance(predictions, torch.Tensor):
        predictions = [predictions]
    heat = predictions[0].shape[-1]
    truth = image_to_heatmap_coords(landmarks.float(), image_size, heat)
    terms = [
        torch.linalg.vector_norm(soft_argmax(p[:, :NUM_LANDMARKS].float()) - truth, dim=-1).mean()
        for p in predictions
    ]
    return torch.stack(terms).mean()


class Stage1Loss(NamedTuple):
    """The total loss and its parts (scalars); ``optics`` is 0 when the lens does not train."""

    total: torch.Tensor
    distortion: torch.Tensor
    psf: torch.Tensor
    heatmap: torch.Tensor
    optics: torch.Tensor
    coords: torch.Tensor | None = None


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
    *,
    heatmap: str = "l1",
    foreground_weight: float = 0.0,
    coord_weight: float = 0.0,
    landmarks: torch.Tensor | None = None,
    psf_scale: float = 1.0,
) -> Stage1Loss:
    """Eq. 6 of the paper. With ``optics=False`` (heatmap pretraining, the low-resolution
    baseline) only ``alpha2 * L_heatmap`` is minimised; the other parts are still reported.

    The keyword options select the deviations of the module docstring; their defaults are the
    paper's terms. ``coord_weight`` > 0 needs the ``landmarks`` (image pixels); the coordinate term
    is added to ``L_heatmap`` (so alpha2 weighs both)."""
    d = distortion(scene, capture)
    p = psf_distance(psf, reference_psf, psf_scale) if reference_psf is not None else d.new_zeros(())
    h = heatmap_loss(predictions, target, heatmap, foreground_weight)
    c = None
    if coord_weight > 0:
        if landmarks is None:
            raise ValueError("coord_weight > 0 needs the landmarks")
        c = coordinate_loss(predictions, landmarks, scene.shape[-1])
        h = h + coord_weight * c
    l_optics = (1.0 - d) + alpha1 * p
    total = alpha2 * h + (l_optics if optics else 0.0)
    return Stage1Loss(total, d, p, h, l_optics if optics else d.new_zeros(()), c)
