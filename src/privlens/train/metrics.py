"""Landmark accuracy for the heatmap network."""

from __future__ import annotations

import torch

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45


def landmark_nme(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Normalised mean error per image ``[B]``: the mean point-to-point distance of ``[B, 68, 2]``
    landmarks divided by the inter-ocular distance (outer eye corners, dlib points 36 and 45), as
    in the 300-W benchmark. Multiply by 100 for a percentage."""
    if predicted.shape != truth.shape or predicted.shape[-2:] != (68, 2):
        raise ValueError(
            f"expected two [B, 68, 2] tensors, got {tuple(predicted.shape)}, {tuple(truth.shape)}"
        )
    errors = torch.linalg.vector_norm(predicted.float() - truth.float(), dim=-1).mean(dim=-1)
    ocular = torch.linalg.vector_norm(
        truth[:, RIGHT_EYE_OUTER].float() - truth[:, LEFT_EYE_OUTER].float(), dim=-1
    )
    return errors / ocular.clamp_min(1e-6)
