"""Soft-argmax: differentiable landmark positions from heatmaps."""

from __future__ import annotations

import torch


def soft_argmax(heatmaps: torch.Tensor, temperature: float = 0.02) -> torch.Tensor:
    """``[..., K, h, w]`` heatmaps -> ``[..., K, 2]`` positions ``(u, v)`` in heatmap pixels.

    Each channel becomes a probability map ``softmax(heatmap / temperature)`` over its pixels and
    the result is the expected pixel position (column ``u``, row ``v``; ``(0, 0)`` is the centre of
    the top-left heatmap pixel). Computed in float32 whatever the input precision. For a peak-1
    Gaussian heatmap a small temperature (0.02) makes the estimate sub-pixel accurate away from the
    border; a larger one smooths it towards the centre of the map.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if heatmaps.dim() < 2:
        raise ValueError(f"heatmaps must be [..., h, w], got shape {tuple(heatmaps.shape)}")
    h, w = heatmaps.shape[-2:]
    flat = heatmaps.float().flatten(-2) / temperature
    weights = torch.softmax(flat, dim=-1).unflatten(-1, (h, w))
    us = torch.arange(w, dtype=weights.dtype, device=weights.device)
    vs = torch.arange(h, dtype=weights.dtype, device=weights.device)
    u = (weights.sum(dim=-2) * us).sum(dim=-1)
    v = (weights.sum(dim=-1) * vs).sum(dim=-1)
    return torch.stack([u, v], dim=-1)
