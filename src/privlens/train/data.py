"""Faces with their 68 landmarks for Stage I, augmented together, in a resumable order.

The faces come from a folder written by ``privlens data prepare`` (``train/``, ``val/`` and
``landmarks.csv``, read with :func:`privlens.data.prepare.read_landmarks_csv`). Landmarks are
(x, y) pixels of the image they belong to, origin at the centre of the top-left pixel.

Augmentation (training split), in this order: a shape mix (probability ``shape_mix_p``, beyond
the paper): the face's pixels warped piecewise-affinely onto landmarks moved part of the way
towards another training face's, so the new landmarks are exact and shape no longer comes with
its own texture; the StarGAN v2 random resized crop (probability
``crop_p``, box from :func:`privlens.data.transforms.random_resized_crop_box`); a random
similarity warp (rotation within +-``rotate_deg``, scale within 1 +- ``scale_jitter``, shift
within +-``shift_fraction`` of the side; :func:`privlens.data.transforms.similarity_warp`); a
horizontal flip (probability ``flip_p``); a colour jitter of strength ``colour``. The landmarks
follow every geometric step; a flip also mirrors the landmark indices (the subject's right eye
becomes the left one), see :data:`FLIP_PERMUTATION`. U*(x) is rendered from these landmarks on
the training device. Decoded images are kept in memory (the sets are small aligned crops).

Reproducibility: sample order and augmentation draws are functions of ``(seed, step)`` only
(:class:`StepBatchSampler`), so a run resumed at step ``s`` sees exactly the batches an
uninterrupted run sees from step ``s`` on, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from privlens.anonymize.warp import warp_reference
from privlens.data.images import load_image
from privlens.data.prepare import read_landmarks_csv
from privlens.data.transforms import (
    colour_jitter,
    random_resized_crop_box,
    random_similarity,
    similarity_warp,
)


def _flip_permutation() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip
    order = list(range(68))
    for a, b in pairs:
        order[a], order[b] = b, a
    return tuple(order)


FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
"""``flipped[k] = mirrored(original[FLIP_PERMUTATION[k]])`` for dlib's 68-point layout."""


def crop_resize(
    image: torch.Tensor, landmarks: torch.Tensor, box: tuple[int, int, int, int], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``image`` ``[3, H, W]`` to ``box = (top, left, h, w)``, resize to ``size`` (bilinear,
    antialiased) and map ``landmarks`` ``[K, 2]`` (x, y pixels) the same way."""
    top, left, h, w = box
    crop = image[:, top : top + h, left : left + w]
    if (h, w) != (size, size):
        crop = F.interpolate(
            crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )[0]
    scale = landmarks.new_tensor([size / w, size / h])
    offset = landmarks.new_tensor([left, top])
    return crop.clamp(0.0, 1.0), (landmarks + 0.5 - offset) * scale - 0.5


def hflip(image: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror an image ``[3, H, W]`` and its 68 landmarks (positions and indices)."""
    width = image.shape[-1]
    mirrored = landmarks[list(FLIP_PERMUTATION)].clone()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    return image.flip(-1), mirrored


def centre_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred square ``(top, left, side, side)``."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


class LandmarkFaces(Dataset):
    """One split of a prepared face folder: items ``{"image": [3, size, size], "landmarks":
    [68, 2]}`` (landmarks in pixels of the returned image).

    Index with an ``int`` (no augmentation) or with ``(index, draw_seed)`` (augmented when
    ``augment`` is true, the draws made from ``draw_seed``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        size: int,
        augment: bool = False,
        crop_p: float = 0.5,
        flip_p: float = 0.5,
        limit: int | None = None,
        rotate_deg: float = 0.0,
        scale_jitter: float = 0.0,
        shift_fraction: float = 0.0,
        colour: float = 0.0,
        shape_mix_p: float = 0.0,
    ) -> None:
        self.root = Path(root)
        table = self.root / "landmarks.csv"
        if not self.root.is_dir():
            raise FileNotFoundError(f"data folder not found: {self.root}")
        if not table.is_file():
            raise FileNotFoundError(
                f"{self.root} has no landmarks.csv: prepare it first with "
                f"`privlens data prepare SRC {self.root}`"
            )
        entries = read_landmarks_csv(table)
        # read_landmarks_csv gives {file: (split, ..., [68, 2] array)}: first and last fields used.
        self.items = [
            (name, torch.from_numpy(np.asarray(entry[-1], dtype=np.float32)))
            for name, entry in sorted(entries.items())
            if entry[0] == split
        ]
        if limit is not None:
            self.items = self.items[:limit]
        if not self.items:
            raise ValueError(f"{table}: no faces in the {split!r} split")
        self.size, self.augment, self.crop_p, self.flip_p = size, augment, crop_p, flip_p
        self.rotate_deg, self.scale_jitter, self.shift_fraction = rotate_deg, scale_jitter, shift_fraction
        self.colour, self.shape_mix_p = colour, shape_mix_p
        self._images: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        landmarks = self.items[index][1]
        image = self._image(index)
        if not self.augment or draw_seed is None:
            image, landmarks = crop_resize(image, landmarks, centre_box(*image.shape[-2:]), self.size)
            return {"image": image.contiguous(), "landmarks": landmarks}
        generator = torch.Generator().manual_seed(int(draw_seed))
        if self.shape_mix_p and float(torch.rand((), generator=generator)) < self.shape_mix_p:
            image, landmarks = self._shape_mix(image, landmarks, generator)
        box = centre_box(*image.shape[-2:])
        if float(torch.rand((), generator=generator)) < self.crop_p:
            box = random_resized_crop_box(*image.shape[-2:], generator=generator)
        image, landmarks = crop_resize(image, landmarks, box, self.size)
        if self.rotate_deg or self.scale_jitter or self.shift_fraction:
            angle, scale, shift = random_similarity(
                self.size, self.rotate_deg, self.scale_jitter, self.shift_fraction, generator
            )
            image, landmarks = similarity_warp(image, landmarks, angle, scale, shift)
        if float(torch.rand((), generator=generator)) < self.flip_p:
            image, landmarks = hflip(image, landmarks)
        image = colour_jitter(image, self.colour, generator)
        return {"image": image.contiguous(), "landmarks": landmarks}

    def _shape_mix(
        self, image: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This face's pixels warped (piecewise affine) onto a new geometry: the landmarks moved a
        uniform fraction ``t`` of the way towards another face of the split (same pixel frame).
        The new landmarks are exact by construction, so U sees texture and shape decoupled."""
        other = int(torch.randint(len(self.items), (), generator=generator))
        t = float(torch.rand((), generator=generator))
        if self._image(other).shape != image.shape:  # landmarks of another frame: no common geometry
            return image, landmarks
        target = (1.0 - t) * landmarks + t * self.items[other][1]
        return warp_reference(image, landmarks, target), target

    def _image(self, index: int) -> torch.Tensor:
        if index not in self._images:
            self._images[index] = load_image(self.root / self.items[index][0])
        return self._images[index]

    def mean_shape(self) -> torch.Tensor:
        """``[68, 2]`` mean of the split's landmarks in pixels of the returned (unaugmented) images."""
        return torch.stack([self[i]["landmarks"] for i in range(len(self))]).mean(dim=0)


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state ^= (int(value) + 0x9E3779B97F4A7C15 + (state << 6) + (state >> 2)) & 0xFFFFFFFFFFFFFFFF
        state = (state * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return state >> 1


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches ``[(index, draw_seed), ...]`` for steps ``start_step .. steps - 1`` of one process.

    Every epoch is a permutation drawn from ``(seed, epoch)``; the global batch of a step is
    ``batch_size * world_size`` consecutive indices of that stream and process ``rank`` takes its
    slice. The draw seed of each sample depends on ``(seed, step, rank, position)``.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        steps: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.n, self.batch, self.steps, self.seed = dataset_size, batch_size, steps, seed
        self.start, self.rank, self.world = start_step, rank, world_size

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def _permutation(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.n, generator=generator).tolist()

    def __iter__(self):
        per_step = self.batch * self.world
        cache: dict[int, list[int]] = {}
        for step in range(self.start, self.steps):
            first = step * per_step + self.rank * self.batch
            batch = []
            for position in range(self.batch):
                flat = first + position
                epoch, offset = divmod(flat, self.n)
                if epoch not in cache:
                    cache.clear()
                    cache[epoch] = self._permutation(epoch)
                index = cache[epoch][offset]
                batch.append((index, mix_seed(self.seed, step, self.rank, position)))
            yield batch
