"""Identity distance between originals and recoveries, as the strongest attacker measures it.

The attacker is granted the face location: the face box is detected once on each original (dlib
HOG) and the same box is used to embed the recovery (dlib 128-d ResNet). A recovery is thus never
"safe" merely because a detector misses a blurred face. Images smaller than ``embed_px`` are
upsampled (bicubic) first, since dlib's HOG detector needs faces of about 80 px.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from privlens.eval.identity import DlibEmbedder, identity_distance
from privlens.faces.detect import best_face
from privlens.faces.landmarks import landmarks68


def _upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] >= size:
        return images
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


class OriginalBoxIdentity:
    """Callable ``(originals, recovered) -> [B]`` dlib distances (NaN: no face in the original).

    Faces and embeddings of the originals are computed once and reused for every attack.
    """

    def __init__(self, embed_px: int = 160) -> None:
        self.embed_px = embed_px
        self.embedder = DlibEmbedder()
        self._cache: dict[tuple, tuple[list, list]] = {}

    def _prepare(self, originals: torch.Tensor) -> None:
        key = (originals.data_ptr(), tuple(originals.shape), float(originals.sum()))
        if key not in self._cache:
            images = list(_upsample(originals, self.embed_px))
            faces = [best_face(image, "dlib") for image in images]
            self._cache[key] = (faces, self.embedder.embed(images, faces))
        self._faces, self._embeddings = self._cache[key]

    def pair_embeddings(
        self, originals: torch.Tensor, recovered: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(gallery [n, 128], probes [n, 128], kept [B] bool)``: embeddings of the originals
        where dlib finds a face, and of their recoveries in the same box; ``n = kept.sum()``."""
        self._prepare(originals)
        kept = np.array([e is not None for e in self._embeddings])
        images = list(_upsample(recovered, self.embed_px))
        probes = [
            self.embedder.embed_face(image, face)
            for image, face, ok in zip(images, self._faces, kept, strict=True)
            if ok
        ]
        gallery = [e for e in self._embeddings if e is not None]
        empty = np.zeros((0, 128))
        return (np.stack(gallery) if gallery else empty, np.stack(probes) if probes else empty, kept)

    def embeddings(self, photos: torch.Tensor) -> list[np.ndarray | None]:
        """dlib's 128-d embedding of each photo's own face (``None`` where dlib finds none)."""
        self._prepare(photos)
        return list(self._embeddings)

    def landmarks(self, originals: torch.Tensor) -> list[np.ndarray | None]:
        """dlib's 68 points ``[68, 2]`` of each original, found in its dlib box at ``embed_px`` and
        scaled to the pixels of ``originals``; ``None`` where dlib finds no face."""
        self._prepare(originals)
        images = list(_upsample(originals, self.embed_px))
        scale = originals.shape[-1] / images[0].shape[-1] if images else 1.0
        return [
            None if face is None else landmarks68(image, face) * scale
            for image, face in zip(images, self._faces, strict=True)
        ]

    def __call__(self, originals: torch.Tensor, recovered: torch.Tensor) -> torch.Tensor:
        self._prepare(originals)
        embeddings = self.embedder.embed(list(_upsample(recovered, self.embed_px)), self._faces)
        distances = [
            float("nan") if a is None or b is None else identity_distance(a, b)
            for a, b in zip(self._embeddings, embeddings, strict=True)
        ]
        return torch.tensor(np.asarray(distances, dtype=np.float64))
