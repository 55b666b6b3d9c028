"""Landmarks follow the augmentation; the batch order is a function of (seed, step, rank)."""

from __future__ import annotations

import torch

from privlens.train.data import FLIP_PERMUTATION, LandmarkFaces, StepBatchSampler, crop_resize, hflip


def test_flip_permutation_is_an_involution_that_swaps_sides():
    perm = torch.tensor(FLIP_PERMUTATION)
    assert torch.equal(perm[perm], torch.arange(68))
    assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[0] == 16 and FLIP_PERMUTATION[48] == 54
    assert FLIP_PERMUTATION[30] == 30 and FLIP_PERMUTATION[8] == 8  # nose tip, chin stay


def test_landmarks_follow_crop_resize_and_flip():
    image = torch.zeros(3, 40, 60)
    points = torch.zeros(68, 2)
    points[:] = torch.tensor([30.0, 20.0])
    points[36] = torch.tensor([12.0, 9.0])
    image[:, 9, 12] = 1.0  # a bright pixel at landmark 36
    out, moved = crop_resize(image, points, (4, 8, 32, 48), 16)  # scale 1/3 horizontally, 1/2 vertically
    assert torch.allclose(moved[36], torch.tensor([(12 + 0.5 - 8) / 3 - 0.5, (9 + 0.5 - 4) / 2 - 0.5]))
    flipped, mirrored = hflip(out, moved)
    assert torch.allclose(mirrored[45], torch.tensor([15 - moved[36, 0], moved[36, 1]]))
    brightest = torch.nonzero(flipped[0] == flipped[0].max())[0]
    assert abs(float(brightest[1]) - float(mirrored[45, 0])) <= 0.5
    assert abs(float(brightest[0]) - float(mirrored[45, 1])) <= 0.5


def test_augmented_faces_keep_eyes_on_the_right_side(faces64):
    faces = LandmarkFaces(faces64, "train", 64, augment=True, crop_p=1.0, flip_p=1.0)
    item = faces[(0, 123)]
    assert item["image"].shape == (3, 64, 64)
    landmarks = item["landmarks"]
    # After a flip the subject's right eye (36-41) must still be on the image's left.
    assert landmarks[36:42, 0].mean() < landmarks[42:48, 0].mean()
    assert torch.equal(faces[(0, 123)]["image"], item["image"])  # draws come from the seed
    assert not torch.equal(faces[(0, 124)]["image"], item["image"])


def test_sampler_resumes_exactly_and_ranks_are_disjoint():
    full = list(StepBatchSampler(10, 3, steps=9, seed=5))
    tail = list(StepBatchSampler(10, 3, steps=9, seed=5, start_step=4))
    assert tail == full[4:]
    first_epoch = [i for batch in full[:3] for i, _ in batch] + [full[3][0][0]]
    assert sorted(first_epoch) == list(range(10))  # a permutation per epoch
    r0 = list(StepBatchSampler(10, 2, steps=4, seed=1, rank=0, world_size=2))
    r1 = list(StepBatchSampler(10, 2, steps=4, seed=1, rank=1, world_size=2))
    for a, b in zip(r0[:2], r1[:2], strict=True):
        assert not {i for i, _ in a} & {i for i, _ in b}
    assert full != list(StepBatchSampler(10, 3, steps=9, seed=6))


def _write_faces(root, images: list[torch.Tensor], landmarks: list[torch.Tensor]) -> None:
    """A prepared folder by hand: train split only, ``face{i}.png`` with the given landmarks."""
    from privlens.data.images import save_image

    (root / "train").mkdir(parents=True)
    header = ["file", "split", "source"] + [f"{axis}{k}" for k in range(68) for axis in "xy"]
    rows = [",".join(header)]
    for i, (image, points) in enumerate(zip(images, landmarks, strict=True)):
        save_image(image, root / "train" / f"face{i}.png")
        rows.append(
            ",".join([f"train/face{i}.png", "train", f"face{i}"] + [f"{v:.3f}" for v in points.reshape(-1)])
        )
    (root / "landmarks.csv").write_text("\n".join(rows) + "\n")


def _sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values ``[68, C]`` of ``[C, 64, 64]`` at pixel positions ``[68, 2]`` (x, y)."""
    grid = (points / 63.0 * 2.0 - 1.0).view(1, 1, -1, 2)
    return torch.nn.functional.grid_sample(image[None], grid, align_corners=True)[0, :, 0].T


def test_shape_mix_moves_pixels_onto_exact_mixed_landmarks(faces64, tmp_path):
    """With ``shape_mix_p`` 1 the landmarks lie on the segment towards another face's, and the
    pixels follow: on an image that encodes its own coordinates (a ramp), the pixel found at a new
    landmark came from that landmark's old position."""
    real = LandmarkFaces(faces64, "train", 64)
    shapes = [real[i]["landmarks"] for i in range(2)]
    ramp = torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="xy")) / 63.0
    image = torch.cat([ramp, torch.zeros(1, 64, 64)])  # red = x / 63, green = y / 63
    _write_faces(tmp_path, [image, image], shapes)
    image = LandmarkFaces(tmp_path, "train", 64)[0]["image"]  # as stored (8 bits)
    plain = dict(augment=True, crop_p=0.0, flip_p=0.0, rotate_deg=0.0, scale_jitter=0.0, shift_fraction=0.0)
    faces = LandmarkFaces(tmp_path, "train", 64, shape_mix_p=1.0, **plain)
    moved, largest = 0, 0.0
    for seed in range(8):
        item = faces[(0, seed)]
        new = item["landmarks"]
        if torch.allclose(new, shapes[0], atol=1e-4):  # mixed with itself, or t = 0
            continue
        delta = shapes[1] - shapes[0]
        t = float(((new - shapes[0]) * delta).sum() / (delta * delta).sum())
        assert 0.0 <= t <= 1.0 and torch.allclose(new, shapes[0] + t * delta, atol=1e-3)
        inside = ((new > 0.5) & (new < 62.5)).all(dim=1) & ((shapes[0] > 0.5) & (shapes[0] < 62.5)).all(dim=1)
        came_from = _sample(item["image"], new[inside])[:, :2] * 63.0  # the ramp is clamped at the border
        error = (came_from - shapes[0][inside]).norm(dim=1).mean()
        displacement = (new - shapes[0]).norm(dim=1).mean()
        assert error < 0.3, (seed, float(error))
        moved, largest = moved + 1, max(largest, float(displacement))
    assert moved >= 2 and largest > 1.0  # pixels left in place would miss by the displacement
    # off (the default), no draw is spent on it: the image is the stored one, untouched
    assert torch.equal(LandmarkFaces(tmp_path, "train", 64, **plain)[(0, 3)]["image"], image)
