"""Landmark heatmaps: the ground truth U*(x) of the paper, and their inverse.

Channel layout of :func:`render_heatmaps`: ``[..., 68, h, w]``, channel ``k`` is dlib landmark
``k`` (iBUG 300-W order, see :mod:`privlens.faces.landmarks`): 0-16 jaw, 17-26 brows, 27-35 nose,
36-47 eyes, 48-67 mouth. Each channel is an unnormalised Gaussian, peak 1 at the landmark,
``sigma`` in heatmap pixels.

Channel layout of :func:`face_part_masks`: ``[..., 2, h, w]`` in [0, 1], the two aggregated
face-part masks used by StarGAN v2: channel 0 the *coarse* mask (all 68 landmarks), channel 1 the
*fine* mask (eyes 36-47 and nose 27-35). Each is the pixel-wise maximum of wider Gaussians
(``sigma`` as a fraction of the mask side) over its landmarks.

Coordinates: landmarks are (x, y) in pixels of an image of ``image_size``, origin at the centre of
the top-left pixel. Heatmap pixel ``j`` covers the same area as image pixels
``[j * s, (j + 1) * s)`` with ``s = image_size / heatmap_size``, so
``u = (x + 0.5) / s - 0.5``.
"""

from __future__ import annotations

import numpy as np
import torch

from privlens.faces.landmarks import LANDMARK_GROUPS, NUM_LANDMARKS

COARSE_CHANNELS: tuple[int, ...] = tuple(range(NUM_LANDMARKS))
FINE_CHANNELS: tuple[int, ...] = (
    LANDMARK_GROUPS["nose"] + LANDMARK_GROUPS["right_eye"] + LANDMARK_GROUPS["left_eye"]
)

Size = int | tuple[int, int]


def _hw(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _as_tensor(points: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = torch.as_tensor(points)
    if not tensor.is_floating_point():
        tensor = tensor.float()
    if tensor.shape[-1] != 2:
        raise ValueError(f"landmarks must end in (x, y), got shape {tuple(tensor.shape)}")
    return tensor


def image_to_heatmap_coords(points: torch.Tensor, image_size: Size, heatmap_size: Size) -> torch.Tensor:
    """(x, y) image pixels -> (u, v) heatmap pixels (pixel-centre convention above)."""
    (ih, iw), (hh, hw) = _hw(image_size), _hw(heatmap_size)
    scale = points.new_tensor([hw / iw, hh / ih])
    return (points + 0.5) * scale - 0.5


def heatmap_to_image_coords(points: torch.Tensor, image_size: Size, heatmap_size: Size) -> torch.Tensor:
    """(u, v) heatmap pixels -> (x, y) image pixels."""
    (ih, iw), (hh, hw) = _hw(image_size), _hw(heatmap_size)
    scale = points.new_tensor([iw / hw, ih / hh])
    return (points + 0.5) * scale - 0.5


def _gaussians(uv: torch.Tensor, heatmap_size: Size, sigma: float) -> torch.Tensor:
    hh, hw = _hw(heatmap_size)
    ys = torch.arange(hh, dtype=uv.dtype, device=uv.device)
    xs = torch.arange(hw, dtype=uv.dtype, device=uv.device)
    dx2 = (xs - uv[..., 0:1]).square()  # [..., K, w]
    dy2 = (ys - uv[..., 1:2]).square()  # [..., K, h]
    return torch.exp(-(dy2[..., :, None] + dx2[..., None, :]) / (2 * sigma**2))


def render_heatmaps(
    landmarks: torch.Tensor | np.ndarray, image_size: Size, heatmap_size: Size = 64, sigma: float = 1.5
) -> torch.Tensor:
    """``[..., K, 2]`` landmarks -> ``[..., K, h, w]`` Gaussian heatmaps (peak 1, ``sigma`` in
    heatmap pixels). Differentiable with respect to the landmarks."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    uv = image_to_heatmap_coords(_as_tensor(landmarks), image_size, heatmap_size)
    return _gaussians(uv, heatmap_size, sigma)


def face_part_masks(
    landmarks: torch.Tensor | np.ndarray, image_size: Size, mask_size: Size = 64, sigma_fraction: float = 0.04
) -> torch.Tensor:
    """``[..., 68, 2]`` landmarks -> ``[..., 2, h, w]`` masks: 0 coarse (all parts), 1 fine (eyes,
    nose). ``sigma_fraction`` is the Gaussian width relative to the mask's larger side."""
    points = _as_tensor(landmarks)
    if points.shape[-2] != NUM_LANDMARKS:
        raise ValueError(f"face part masks need 68 landmarks, got {points.shape[-2]}")
    sigma = sigma_fraction * max(_hw(mask_size))
    uv = image_to_heatmap_coords(points, image_size, mask_size)
    coarse = _gaussians(uv[..., list(COARSE_CHANNELS), :], mask_size, sigma).amax(dim=-3)
    fine = _gaussians(uv[..., list(FINE_CHANNELS), :], mask_size, sigma).amax(dim=-3)
    return torch.stack([coarse, fine], dim=-3)


def heatmaps_to_landmarks(
    heatmaps: torch.Tensor, image_size: Size, method: str = "argmax", temperature: float = 0.02
) -> torch.Tensor:
    """``[..., K, h, w]`` heatmaps -> ``[..., K, 2]`` (x, y) image pixels.

    ``argmax``: the centre of the brightest heatmap pixel (error at most half a heatmap pixel).
    ``soft``: the softmax-weighted mean position (``softmax(heatmap / temperature)``), differentiable
    and sub-pixel for a peak-1 Gaussian away from the border.
    """
    hh, hw = heatmaps.shape[-2:]
    flat = heatmaps.flatten(-2)
    if method == "argmax":
        index = flat.argmax(dim=-1)
        uv = torch.stack([index % hw, torch.div(index, hw, rounding_mode="floor")], dim=-1)
        uv = uv.to(heatmaps.dtype if heatmaps.is_floating_point() else torch.float32)
    elif method == "soft":
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        weights = torch.softmax(flat.float() / temperature, dim=-1).view(heatmaps.shape)
        xs = torch.arange(hw, dtype=weights.dtype, device=weights.device)
        ys = torch.arange(hh, dtype=weights.dtype, device=weights.device)
        uv = torch.stack([(weights.sum(-2) * xs).sum(-1), (weights.sum(-1) * ys).sum(-1)], dim=-1)
    else:
        raise ValueError(f"method must be 'argmax' or 'soft', got {method!r}")
    return heatmap_to_image_coords(uv, image_size, (hh, hw))
