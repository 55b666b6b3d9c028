"""The full-frame pipeline: every face of a photo or video frame found, replaced and put back.

::

    frame ─► detect all faces (shrunk copy) ─► dlib's 68 points ─► align each (similarity,
    edge-filled) at the model's size ─► painter (camera → U → G, or warp) on all crops of all
    frames of a batch at once ─► check (a face must be found in the new crop) ─► inverse warp,
    colour match, feathered blend into the untouched frame

A face whose painting fails or whose result is rejected is pixelated instead (never left
identifiable) and its record says why. Frames are ``H x W x 3`` uint8 RGB arrays, changed in place;
pixels outside the returned face regions keep their exact bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from privlens.anonymize.blend import Region, face_mask, paste, pixelate, pixelate_box
from privlens.anonymize.references import Slot
from privlens.faces.align import AlignedFace, align_face
from privlens.faces.detect import Face, detect_faces
from privlens.faces.landmarks import landmarks68

REPLACED, PIXELATED = "replaced", "pixelated"
CHECK_MIN_PX = 128
"""The generated crop is checked at this side at least (MTCNN misses faces in tiny crops)."""


@dataclass
class FoundFace:
    """A face in a frame: the detector's ``box`` (frame pixels), its ``score``, dlib's 68
    ``landmarks`` (``[68, 2]`` frame pixels, ``None`` if they could not be found) and the
    ``track`` it belongs to in a video (``None`` for photos)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None
    track: int | None = None


@dataclass
class FaceRecord:
    """What was done to one face: ``action`` is ``replaced`` or ``pixelated`` (with ``reason``);
    ``region`` the frame box ``(x0, y0, x1, y1)`` (exclusive ends) whose pixels may have changed."""

    box: tuple[float, float, float, float]
    score: float
    action: str
    reason: str | None = None
    region: Region | None = None
    track: int | None = None
    style: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "action": self.action,
            "region": list(self.region) if self.region is not None else None,
        }
        if self.reason:
            record["reason"] = self.reason
        if self.track is not None:
            record["track"] = self.track
        if self.style:
            record["style"] = self.style
        return record


class Painter(Protocol):
    """Paints new faces on aligned crops at its own ``size``."""

    size: int

    def paint(self, crops: torch.Tensor, landmarks: np.ndarray, slots: Sequence[Slot]) -> torch.Tensor:
        """``[N, 3, S, S]`` new faces for ``crops`` ``[N, 3, S, S]`` in [0, 1]; ``landmarks``
        ``[N, 68, 2]`` are dlib's points in crop pixels (a model-free painter may use them; the
        privacy pipeline sees only the crops, through its camera)."""
        ...


class ModelPainter:
    """The learned pipeline as a :class:`Painter`: camera → U → backend (warp or GAN), one slot
    per crop. ``anonymizer`` is a :class:`privlens.anonymize.pipeline.Anonymizer`."""

    def __init__(self, anonymizer) -> None:
        self.anonymizer = anonymizer
        self.size = anonymizer.image_size

    def paint(self, crops: torch.Tensor, landmarks: np.ndarray, slots: Sequence[Slot]) -> torch.Tensor:
        return self.anonymizer.run(crops, [[slot] for slot in slots]).faces[:, 0].cpu()


class FaceFinder:
    """Detection plus dlib's 68 landmarks.

    Args:
        detector: ``mtcnn`` (default), ``dlib`` or ``dlib-cnn``.
        min_face: smallest face kept, box width in frame pixels.
        detect_side: faces are detected on a copy whose longer side is at most this (pixels).
    """

    def __init__(
        self, detector: str = "mtcnn", min_face: float = 24.0, detect_side: int | None = 960
    ) -> None:
        self.detector, self.min_face, self.detect_side = detector, float(min_face), detect_side

    def detect(self, frame: np.ndarray) -> list[Face]:
        return detect_faces(frame, self.detector, min_face=self.min_face, max_side=self.detect_side)

    def find(self, frame: np.ndarray) -> list[FoundFace]:
        return [FoundFace(face.box, face.score, points(frame, face.box)) for face in self.detect(frame)]


def points(frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """dlib's 68 landmarks inside ``box``, or ``None`` when they are not finite."""
    found = landmarks68(frame, box)
    return found if np.isfinite(found).all() else None


@dataclass
class _Job:
    frame: int
    face: FoundFace
    slot: Slot | None
    aligned: AlignedFace | None = None
    record: FaceRecord | None = None


def _as_array(crop: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(crop.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0))


class FramePipeline:
    """Finds, paints and blends faces on batches of frames.

    Args:
        painter: paints the aligned crops (:class:`ModelPainter` for the privacy pipeline).
        finder: face detection and landmarks.
        check: reject a new face in which the check detector finds no face (it is pixelated).
        batch_size: crops per painter call (faces of several frames share a batch).
        slot_record: turns a slot into its manifest record (reference file, domain, latent).
        band_rows: blend large face regions in bands of this many rows (bounded memory, see
            :mod:`privlens.anonymize.blend`); ``None``: whole regions at once.
    """

    def __init__(
        self,
        painter: Painter,
        finder: FaceFinder | None = None,
        check: bool = True,
        batch_size: int = 16,
        slot_record: Callable[[Slot], dict[str, Any]] | None = None,
        band_rows: int | None = None,
    ) -> None:
        self.painter, self.finder = painter, finder or FaceFinder()
        self.check, self.batch_size = check, batch_size
        self.slot_record = slot_record or (lambda slot: {})
        self.band_rows = band_rows

    # -- the steps -------------------------------------------------------------------------------
    def process(
        self,
        frames: Sequence[np.ndarray],
        faces: Sequence[Sequence[FoundFace]],
        slots: Sequence[Sequence[Slot | None]],
    ) -> list[list[FaceRecord]]:
        """Replace ``faces[i]`` in ``frames[i]`` (in place) with styles ``slots[i]``; one record
        per face, in order."""
        jobs = [
            _Job(i, face, slot)
            for i, (found, chosen) in enumerate(zip(faces, slots, strict=True))
            for face, slot in zip(found, chosen, strict=True)
        ]
        size = self.painter.size
        for job in jobs:
            if job.face.landmarks is None:
                job.record = self._record(job, PIXELATED, "no landmarks found in the face box")
                continue
            try:
                job.aligned = align_face(frames[job.frame], job.face.landmarks, size)
            except (ValueError, np.linalg.LinAlgError) as error:
                job.record = self._record(job, PIXELATED, f"alignment failed: {error}")
        todo = [job for job in jobs if job.record is None]
        for start in range(0, len(todo), self.batch_size):
            self._paint(frames, todo[start : start + self.batch_size])
        for job in jobs:
            if job.record is None or job.record.region is None:
                self._fail_safe(frames[job.frame], job)
        return [[job.record for job in jobs if job.frame == i] for i in range(len(frames))]

    def _paint(self, frames: Sequence[np.ndarray], batch: list[_Job]) -> None:
        crops = torch.stack([job.aligned.image for job in batch])
        landmarks = np.stack([job.aligned.landmarks for job in batch])
        try:
            new = self.painter.paint(crops, landmarks, [job.slot for job in batch])
        except Exception as error:  # noqa: BLE001 - a failing painter must not leave faces intact
            if len(batch) > 1:  # find the faces that fail on their own
                for job in batch:
                    self._paint(frames, [job])
                return
            batch[0].record = self._record(batch[0], PIXELATED, f"pipeline failed: {error}")
            return
        arrays = [_as_array(face) for face in new]
        finite = [bool(np.isfinite(array).all()) for array in arrays]
        found = has_faces([a for a, ok in zip(arrays, finite, strict=True) if ok]) if self.check else []
        verdicts = iter(found)
        for job, array, ok in zip(batch, arrays, finite, strict=True):
            if not ok:
                job.record = self._record(job, PIXELATED, "the new face has non-finite values")
                continue
            if self.check and not next(verdicts):
                job.record = self._record(job, PIXELATED, "no face found in the generated crop")
                continue
            aligned = job.aligned
            mask = face_mask(aligned.landmarks, self.painter.size, aligned.valid)
            original = _as_array(aligned.image)
            region = paste(frames[job.frame], array, original, mask, aligned.matrix, self.band_rows)
            job.record = self._record(job, REPLACED, None, region)

    def _fail_safe(self, frame: np.ndarray, job: _Job) -> None:
        record = job.record or self._record(job, PIXELATED, "the face lies outside the frame")
        aligned = job.aligned
        if aligned is not None:
            mask = face_mask(aligned.landmarks, self.painter.size)
            record.region = pixelate(frame, mask, aligned.matrix, band_rows=self.band_rows)
        else:
            record.region = pixelate_box(frame, job.face.box)
        record.action = PIXELATED
        job.record = record

    def _record(self, job: _Job, action: str, reason: str | None, region: Region | None = None) -> FaceRecord:
        style = self.slot_record(job.slot) if job.slot is not None else {}
        return FaceRecord(job.face.box, job.face.score, action, reason, region, job.face.track, style)

    # -- the whole thing for one photo -----------------------------------------------------------
    def find(self, frame: np.ndarray) -> list[FoundFace]:
        return self.finder.find(frame)


def has_faces(crops: Sequence[np.ndarray]) -> list[bool]:
    """For each aligned crop (``S x S x 3`` float in [0, 1]), whether MTCNN finds a face near its
    centre at least 0.3 of its side wide (one batched MTCNN call for all crops)."""
    import cv2

    from privlens.faces import models

    if not crops:
        return []
    side = max(CHECK_MIN_PX, crops[0].shape[0])
    arrays = np.stack(
        [
            cv2.resize(np.round(crop * 255.0).astype(np.uint8), (side, side), interpolation=cv2.INTER_LINEAR)
            for crop in crops
        ]
    )
    detector = models.mtcnn()
    smallest = detector.min_face_size
    detector.min_face_size = max(smallest, int(0.3 * side))  # fewer pyramid levels
    try:
        with torch.no_grad():
            boxes, _ = detector.detect(arrays)
    finally:
        detector.min_face_size = smallest
    verdicts = []
    for found in boxes:
        ok = False
        for box in [] if found is None else np.asarray(found, dtype=np.float64).reshape(-1, 4):
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) / side
            ok |= bool(np.abs(centre - 0.5).max() < 0.25 and box[2] - box[0] > 0.2 * side)
        verdicts.append(ok)
    return verdicts


def has_face(crop: np.ndarray) -> bool:
    """Whether MTCNN finds a face near the centre of one aligned crop (see :func:`has_faces`)."""
    return has_faces([crop])[0]
