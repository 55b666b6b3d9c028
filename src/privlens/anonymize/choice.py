"""Identity-aware reference choice for the warp backend (beyond the paper).

A face warped onto the source's geometry keeps part of the source's identity: dlib's embedding
depends on the face's shape as well as its texture. On the embedded held-out faces, a reference
warped onto the source's own landmarks ends more than 0.6 from the source for only 15 of 19
faces when the reference is drawn blindly (``benchmarks/generator_ceiling.py``).

``far`` chooses without looking at the source: every reference is warped onto the target
landmarks (the geometry U decoded from the capture, the only thing the backend knows), each
warped face is embedded with dlib, and the references whose embeddings lie farthest from the mean
of all of them are taken. That mean is the identity the *shape alone* implies; the farthest faces
are those whose texture pulls the identity away from it most. Measured in ``benchmarks/RESULTS.md``
(issue 10): on exact landmarks 18 of 19 faces end more than 0.6 from their source (15 blindly),
behind the shipped lens the mean distance rises from 0.69 to 0.81.

Cost: one warp and one dlib embedding per reference and face (a video track chooses once).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from privlens.anonymize.warp import warp_reference

ANALYSIS_PX = 160  # dlib's embedding is computed on faces resized to at least this side
REFERENCE_CHOICES = ("seeded", "far")


def embed_on_landmarks(faces: torch.Tensor, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 128-d embeddings of ``faces`` ``[K, 3, S, S]`` (all with the same geometry), using
    the box around ``landmarks`` ``[68, 2]`` (pixels of ``S``) instead of a detector: the faces
    were warped onto those landmarks, so the box is known. ``[K, 128]``."""
    from privlens.eval.identity import DlibEmbedder
    from privlens.faces.detect import Face

    size = int(faces.shape[-1])
    px = max(ANALYSIS_PX, size)
    scale = px / size
    points = (np.asarray(landmarks, np.float64) + 0.5) * scale - 0.5
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    box = (max(x0, 0.0), max(y0, 0.0), min(x1, px - 1.0), min(y1, px - 1.0))
    big = F.interpolate(faces.float(), size=(px, px), mode="bicubic", align_corners=False).clamp(0, 1)
    embedder = DlibEmbedder()
    face = Face(box=box, score=1.0, detector="landmarks")
    return np.stack([embedder.embed_face(image, face) for image in big])


def far_references(
    references: Sequence, target: np.ndarray | torch.Tensor, size: int, count: int, taken: Sequence[int] = ()
) -> list[int]:
    """Indices of the ``count`` references (:class:`privlens.anonymize.references.Reference`)
    whose faces, warped onto ``target`` (``[68, 2]`` (x, y) pixels of a ``size`` square), lie
    farthest in dlib's embedding from the mean of all of them; ``taken`` indices are skipped.
    Farthest first."""
    if count + len(taken) > len(references):
        raise ValueError(f"cannot choose {count} more of {len(references)} references ({len(taken)} taken)")
    target = np.asarray(target, np.float64)
    warped = torch.stack([warp_reference(r.image, r.landmarks, target, size) for r in references])
    embeddings = embed_on_landmarks(warped, target)
    distance = np.linalg.norm(embeddings - embeddings.mean(axis=0), axis=1)
    skipped = set(taken)
    order = [int(k) for k in np.argsort(-distance, kind="stable") if int(k) not in skipped]
    return order[:count]


def resolve_far_slots(
    references: Sequence, target: np.ndarray | torch.Tensor, slots: Sequence, size: int
) -> None:
    """Give every unresolved ``far`` slot of one face (:class:`privlens.anonymize.references.Slot`)
    its reference, in place: the farthest ones not already used by the face's other slots."""
    open_slots = [slot for slot in slots if slot.far and slot.reference is None]
    if not open_slots:
        return
    taken = [slot.reference for slot in slots if slot.reference is not None]
    target = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else target
    chosen = far_references(references, target, size, len(open_slots), taken)
    for slot, index in zip(open_slots, chosen, strict=True):
        slot.reference = index
