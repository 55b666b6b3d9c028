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
