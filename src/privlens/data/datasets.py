"""Face datasets: any folder tree, the CelebA-HQ (StarGAN v2) layout, FFHQ, and video frames.

Every dataset yields dicts ``{"image": [3, size, size] float RGB in [0, 1], "label": int,
"path": str}``; ``label`` indexes ``dataset.domains``. Images are centre-cropped to a square and
resized (grey and RGBA files are converted, see :mod:`privlens.data.images`); with ``train=True``
the StarGAN v2 augmentation is applied instead (:mod:`privlens.data.transforms`). A file that
cannot be read raises :class:`~privlens.data.images.ImageFileError` naming it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from privlens.data.images import IMAGE_SUFFIXES, ImageFileError, array_to_tensor, load_image, square_resize
from privlens.data.transforms import StarGANAugment


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the layout the dataset class expects."""


def _images_below(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


class FaceFolder(Dataset):
    """Every image below ``root``. With ``domains=True`` the first-level subfolder of each image
    is its domain (images directly in ``root`` are refused); otherwise there is one domain,
    ``root``'s name."""

    def __init__(self, root: str | Path, size: int = 256, train: bool = False, domains: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"not a folder: {self.root}")
        self.size, self.train = size, train
        self.augment = StarGANAugment(size) if train else None
        files = _images_below(self.root)
        if not files:
            raise DatasetLayoutError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {self.root}")
        if domains:
            loose = [p for p in files if p.parent == self.root]
            if loose:
                raise DatasetLayoutError(
                    f"{self.root}: with domains, each image must sit in a domain subfolder "
                    f"({loose[0].name} does not)"
                )
            names = [p.relative_to(self.root).parts[0] for p in files]
        else:
            names = [self.root.name] * len(files)
        self._set_items(files, names)

    def _set_items(self, files: list[Path], names: list[str]) -> None:
        self.domains: list[str] = sorted(set(names))
        index = {name: i for i, name in enumerate(self.domains)}
        self.items: list[tuple[Path, int]] = [(p, index[n]) for p, n in zip(files, names, strict=True)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, label = self.items[i]
        image = load_image(path)
        image = self.augment(image) if self.augment else square_resize(image, self.size)
        return {"image": image, "label": label, "path": str(path)}


class CelebAHQ(FaceFolder):
    """CelebA-HQ in the StarGAN v2 layout ``root/{train,val}/{female,male}/*.jpg``: the folder
    names below the split are the domains."""

    def __init__(
        self, root: str | Path, split: str = "train", size: int = 256, train: bool | None = None
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        folder = Path(root) / split
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"{root}: expected the StarGAN v2 layout root/{{train,val}}/<domain>/*.jpg; "
                f"{folder} is missing"
            )
        super().__init__(folder, size, split == "train" if train is None else train, domains=True)


class FFHQ(FaceFolder):
    """FFHQ: a folder of PNGs (any depth). One domain, ``ffhq``, unless ``attributes`` names a CSV
    with a ``file`` column (file name, with or without suffix) and the column ``attribute``, whose
    values become the domains; images without a row are left out."""

    def __init__(
        self,
        root: str | Path,
        size: int = 256,
        train: bool = False,
        attributes: str | Path | None = None,
        attribute: str = "gender",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"not a folder: {self.root}")
        self.size, self.train = size, train
        self.augment = StarGANAugment(size) if train else None
        files = _images_below(self.root, (".png",))
        if not files:
            raise DatasetLayoutError(f"no PNG files found in {self.root}")
        if attributes is None:
            self._set_items(files, ["ffhq"] * len(files))
            return
        table = _read_attributes(Path(attributes), attribute)
        kept = [(p, table.get(p.name, table.get(p.stem))) for p in files]
        kept = [(p, v) for p, v in kept if v is not None]
        if not kept:
            raise DatasetLayoutError(f"{attributes}: no row matches an image in {self.root}")
        self._set_items([p for p, _ in kept], [v for _, v in kept])


def _read_attributes(path: Path, attribute: str) -> dict[str, str]:
    if not path.is_file():
        raise DatasetLayoutError(f"attribute file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "file" not in fields or attribute not in fields:
            raise DatasetLayoutError(f"{path}: needs the columns 'file' and {attribute!r}, has {fields}")
        return {row["file"]: row[attribute] for row in reader if row[attribute]}


class VideoFrames(Dataset):
    """Frames of a video file (read with OpenCV), every ``step``-th one, as square ``size`` images.

    The frame count is read once at construction by decoding the file; ``label`` is 0.
    """

    def __init__(self, path: str | Path, size: int = 256, step: int = 1) -> None:
        import cv2

        self.path, self.size, self.step = Path(path), size, step
        if step < 1:
            raise ValueError(f"step must be positive, got {step}")
        if not self.path.is_file():
            raise ImageFileError(f"video not found: {self.path}")
        capture = cv2.VideoCapture(str(self.path))
        count = 0
        try:
            while capture.isOpened() and capture.grab():
                count += 1
        finally:
            capture.release()
        if count == 0:
            raise ImageFileError(f"{self.path} is not a readable video (no frame decoded)")
        self.indices = list(range(0, count, step))
        self.domains = [self.path.stem]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        import cv2

        index = self.indices[i]
        capture = cv2.VideoCapture(str(self.path))
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok:
            raise ImageFileError(f"{self.path}: frame {index} could not be decoded")
        image = array_to_tensor(np.ascontiguousarray(frame[..., ::-1]))  # BGR -> RGB
        return {"image": square_resize(image, self.size), "label": 0, "path": f"{self.path}#{index}"}

    def frames(self) -> torch.Tensor:
        """All selected frames as one ``[N, 3, size, size]`` tensor (decodes the file once)."""
        import cv2

        wanted, out = set(self.indices), []
        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index in wanted:
                    image = array_to_tensor(np.ascontiguousarray(frame[..., ::-1]))
                    out.append(square_resize(image, self.size))
                index += 1
        finally:
            capture.release()
        return torch.stack(out)
