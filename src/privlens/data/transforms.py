"""Training augmentation as in StarGAN v2: a random resized crop with probability ``p`` (scale
0.8-1, aspect ratio 0.9-1.1), then a horizontal flip with probability 0.5.

Operates on one ``[3, H, W]`` float image and returns ``[3, size, size]``; pass a
:class:`torch.Generator` for reproducible draws.
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
