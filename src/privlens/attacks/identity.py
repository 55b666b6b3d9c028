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
        self._key: tuple | None = None
        self._faces: list = []
        self._embeddings: list = []

    def _prepare(self, originals: torch.Tensor) -> None:
        key = (originals.data_ptr(), tuple(originals.shape), float(originals.sum()))
        if key == self._key:
            return
        images = list(_upsample(originals, self.embed_px))
        self._faces = [best_face(image, "dlib") for image in images]
        self._embeddings = self.embedder.embed(images, self._faces)
        self._key = key

    def __call__(self, originals: torch.Tensor, recovered: torch.Tensor) -> torch.Tensor:
        self._prepare(originals)
        embeddings = self.embedder.embed(list(_upsample(recovered, self.embed_px)), self._faces)
        distances = [
            float("nan") if a is None or b is None else identity_distance(a, b)
            for a, b in zip(self._embeddings, embeddings, strict=True)
        ]
        return torch.tensor(np.asarray(distances, dtype=np.float64))
