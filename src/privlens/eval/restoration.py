"""SSIM of restored images, through scikit-image's reference implementation."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity


def ssim(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004, 7x7 window, data range 1): ``[B]``.

    Inputs ``[B, C, H, W]`` in [0, 1]; colour images are compared per channel and averaged.
    """
    if estimate.shape != reference.shape or estimate.dim() != 4:
        raise ValueError(
            f"expected two [B, C, H, W] tensors of one shape, got {tuple(estimate.shape)} "
            f"and {tuple(reference.shape)}"
        )
    a = estimate.detach().float().cpu().numpy()
    b = reference.detach().float().cpu().numpy()
    values = [
        structural_similarity(x, y, data_range=1.0, channel_axis=0, win_size=min(7, _odd(x.shape[-1])))
        for x, y in zip(a, b, strict=True)
    ]
    return torch.tensor(np.asarray(values, dtype=np.float64))


def _odd(size: int) -> int:
    return size if size % 2 else size - 1
