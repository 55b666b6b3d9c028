import numpy as np
import pytest
import torch

from privlens.faces import FINE_CHANNELS, align_face, face_part_masks, heatmaps_to_landmarks, render_heatmaps


def test_channel_k_peaks_at_landmark_k():
    points = torch.tensor([[10.0, 20.0], [40.0, 5.0], [63.0, 63.0]])
    maps = render_heatmaps(points, image_size=64, heatmap_size=64, sigma=1.0)
    assert maps.shape == (3, 64, 64)
    for k, (x, y) in enumerate(points.long().tolist()):
        assert maps[k, y, x] == pytest.approx(1.0)
        assert maps[k].argmax().item() == y * 64 + x


@pytest.mark.parametrize(("image_size", "heatmap_size"), [(512, 64), (256, 256), (150, 32)])
def test_argmax_returns_the_dlib_landmarks_within_one_heatmap_pixel(
    astro_landmarks, image_size, heatmap_size
):
    points = torch.tensor(astro_landmarks) * image_size / 512
    maps = render_heatmaps(points, image_size, heatmap_size, sigma=1.5)
    back = heatmaps_to_landmarks(maps, image_size, "argmax")
    pixel = image_size / heatmap_size
    assert (back - points).abs().max() <= 0.5 * pixel + 1e-6  # nearest pixel centre: half a pixel
    soft = heatmaps_to_landmarks(maps, image_size, "soft")
    assert (soft - points).abs().max() < 0.5 * pixel


def test_batched_and_differentiable(astro_landmarks):
    points = torch.tensor(np.stack([astro_landmarks, astro_landmarks + 3]), requires_grad=True)
    maps = render_heatmaps(points, 512, 32)
    assert maps.shape == (2, 68, 32, 32)
    heatmaps_to_landmarks(maps, 512, "soft").sum().backward()
    assert points.grad is not None and torch.isfinite(points.grad).all() and points.grad.abs().sum() > 0


def test_masks_coarse_covers_the_face_and_fine_only_eyes_and_nose(astro, astro_landmarks):
    points = align_face(astro, astro_landmarks, 256).landmarks  # an aligned 256 px face
    masks = face_part_masks(points, 256, 64)
    assert masks.shape == (2, 64, 64) and masks.min() >= 0 and masks.max() <= 1
    coarse, fine = masks
    assert torch.all(coarse >= fine - 1e-12)  # the fine parts are among the coarse ones
    cell = lambda p: (int((p[1] + 0.5) / 4), int((p[0] + 0.5) / 4))  # noqa: E731
    for k in (0, 4, 8, 12, 16, 57):  # jaw and lower lip: coarse only
        assert coarse[cell(points[k])] > 0.95 and fine[cell(points[k])] < 0.1
    for k in (30, 37, 44):  # nose tip and both eyes: both masks
        assert coarse[cell(points[k])] > 0.95 and fine[cell(points[k])] > 0.95
    assert len(FINE_CHANNELS) == 21
    assert coarse[:4].max() < 1e-3  # background above the head


def test_bad_arguments():
    with pytest.raises(ValueError):
        render_heatmaps(torch.zeros(5, 3), 64)
    with pytest.raises(ValueError):
        render_heatmaps(torch.zeros(5, 2), 64, sigma=0)
    with pytest.raises(ValueError):
        face_part_masks(torch.zeros(5, 2), 64)
    with pytest.raises(ValueError):
        heatmaps_to_landmarks(torch.zeros(1, 8, 8), 64, "median")
