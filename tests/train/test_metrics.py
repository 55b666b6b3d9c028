"""NME: zero for the ground truth decoded from U*, scale-free, and growing with the error."""

from __future__ import annotations

import pytest
import torch

from privlens.faces.heatmaps import heatmap_to_image_coords
from privlens.nets import soft_argmax
from privlens.train.losses import heatmap_targets
from privlens.train.metrics import landmark_nme


def test_ground_truth_heatmaps_decode_to_near_zero_nme():
    torch.manual_seed(0)
    landmarks = torch.rand(3, 68, 2) * 40 + 12
    landmarks[:, 36] = torch.tensor([20.0, 28.0])
    landmarks[:, 45] = torch.tensor([44.0, 28.0])  # inter-ocular distance 24 px
    target = heatmap_targets(landmarks, 64, 16, sigma=1.5)
    decoded = heatmap_to_image_coords(soft_argmax(target[:, :68]), 64, 16)
    assert landmark_nme(decoded, landmarks).max() < 0.02


def test_nme_is_error_over_interocular_distance():
    truth = torch.zeros(1, 68, 2)
    truth[0, 45, 0] = 10.0
    shifted = truth + torch.tensor([3.0, 4.0])  # every point 5 px off
    assert landmark_nme(shifted, truth).item() == pytest.approx(0.5)
    assert landmark_nme(2 * shifted, 2 * truth).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        landmark_nme(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2))
