"""Training augmentation.

* StarGAN v2's: a random resized crop with probability ``p`` (scale 0.8-1, aspect ratio
  0.9-1.1), then a horizontal flip with probability 0.5 (:class:`StarGANAugment`).
* For landmark training (Stage I): a random similarity warp (rotation, scale, shift) that moves
  the landmarks with the image (:func:`similarity_warp`), and a colour jitter (brightness,
  contrast, saturation, per-channel gain, gamma; :func:`colour_jitter`).

Operates on one ``[3, H, W]`` float image in [0, 1]; pass a :class:`torch.Generator` for
reproducible draws. Landmarks are ``[K, 2]`` (x, y) pixels, origin at the centre of the top-left
pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from privlens.data.images import square_resize


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def random_resized_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (0.9, 1.1),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a crop covering ``scale`` of the area with aspect ``ratio`` (w/h)."""
    area = height * width
    for _ in range(10):
        target = area * _uniform(*scale, generator)
        aspect = math.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), generator))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    return 0, 0, height, width


class StarGANAugment:
    """Random resized crop (probability ``p``), resize to ``size``, random horizontal flip."""

    def __init__(self, size: int, p: float = 0.5, flip: float = 0.5) -> None:
        self.size, self.p, self.flip = size, p, flip

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if float(torch.rand((), generator=generator)) < self.p:
            top, left, h, w = random_resized_crop_box(*image.shape[-2:], generator=generator)
            crop = image[:, top : top + h, left : left + w]
            image = F.interpolate(
                crop[None], size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )[0].clamp(0, 1)
        else:
            image = square_resize(image, self.size)
        if float(torch.rand((), generator=generator)) < self.flip:
            image = image.flip(-1)
        return image.contiguous()


def similarity_warp(
    image: torch.Tensor,
    landmarks: torch.Tensor,
    angle_deg: float,
    scale: float,
    shift_px: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (``angle_deg``, counter-clockwise on screen), scale and shift ``image`` ``[3, H, W]``
    about its centre; the landmarks follow: ``p' = scale * R (p - c) + c + shift``. Pixels that
    come from outside the image are filled by reflection (as aligned crops are)."""
    _, h, w = image.shape
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta) * scale, -math.sin(theta) * scale  # y points down: flip the sign
    forward = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float32)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    shift = torch.tensor(shift_px, dtype=torch.float32)
    moved = (landmarks.float() - centre) @ forward.T + centre + shift
    # affine_grid maps output to input in normalised coordinates (align_corners=False: the image
    # spans [-1, 1] edge to edge, pixel x at (2x + 1) / w - 1): n_in = F^-1 (n_out - t_n) with the
    # pixel aspect kept by scaling x and y separately.
    inverse = torch.linalg.inv(forward)
    norm = torch.tensor([2.0 / w, 2.0 / h])
    linear = inverse * (norm[:, None] / norm[None, :])  # N F^-1 N^-1
    offset = -(linear @ (shift * norm))
    theta_matrix = torch.cat([linear, offset[:, None]], dim=1)
    grid = F.affine_grid(theta_matrix[None], [1, 3, h, w], align_corners=False)
    warped = F.grid_sample(
        image[None].float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )[0]
    return warped.clamp(0.0, 1.0), moved.to(landmarks.dtype)


def random_similarity(
    size: int,
    rotate_deg: float,
    scale_jitter: float,
    shift_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[float, float, tuple[float, float]]:
    """Draw ``(angle_deg, scale, (dx, dy) px)``: angle uniform in +-``rotate_deg``, log-scale
    uniform in +-log(1 + ``scale_jitter``), shift uniform in +-``shift_fraction * size``."""
    angle = _uniform(-rotate_deg, rotate_deg, generator)
    log_scale = math.log1p(scale_jitter)
    scale = math.exp(_uniform(-log_scale, log_scale, generator))
    limit = shift_fraction * size
    return angle, scale, (_uniform(-limit, limit, generator), _uniform(-limit, limit, generator))


def colour_jitter(
    image: torch.Tensor, strength: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random brightness (+-0.2 s), contrast (x 1 +- 0.4 s), saturation (x 1 +- s), per-channel
    gain (x 1 +- 0.15 s) and gamma (exp(+-0.4 s)) for ``strength`` s in [0, 1]; output in [0, 1]."""
    if strength <= 0:
        return image
    s = strength
    grey = image.mean(dim=0, keepdim=True)
    image = grey + (image - grey) * _uniform(1 - s, 1 + s, generator)  # saturation
    gains = torch.tensor([_uniform(1 - 0.15 * s, 1 + 0.15 * s, generator) for _ in range(3)])
    image = image * gains[:, None, None].to(image)
    mean = image.mean()
    image = mean + (image - mean) * _uniform(1 - 0.4 * s, 1 + 0.4 * s, generator)  # contrast
    image = image + _uniform(-0.2 * s, 0.2 * s, generator)  # brightness
    gamma = math.exp(_uniform(-0.4 * s, 0.4 * s, generator))
    return image.clamp(0.0, 1.0).pow(gamma)
