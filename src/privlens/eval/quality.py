"""Full-reference image quality: PSNR (images in [0, 1])."""

from __future__ import annotations

import torch


def psnr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (peak 1), over all but the first dimension.

    ``[B, C, H, W]`` inputs give ``[B]``; a ``[C, H, W]`` pair gives a scalar.
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"shape mismatch: {tuple(estimate.shape)} vs {tuple(reference.shape)}")
    if estimate.dim() == 3:
        return psnr(estimate[None], reference[None], eps)[0]
    mse = (estimate.float() - reference.float()).square().flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(eps))
