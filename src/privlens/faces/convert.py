"""Conversion of privlens images to the ``H x W x 3`` uint8 RGB arrays that dlib and MTCNN take."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8_rgb(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[3, H, W]`` / ``[1, H, W]`` float tensor in [0, 1], or an ``H x W (x 3)`` uint8 array ->
    contiguous ``H x W x 3`` uint8 RGB array."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected a [C, H, W] image with C = 1 or 3, got {tuple(image.shape)}")
        array = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        array = (array * 255.0).round().astype(np.uint8)
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {array.dtype}")
        if array.ndim == 2:
            array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected H x W x 3 (or grey), got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)
