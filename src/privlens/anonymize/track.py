"""Faces followed across video frames: one track per person, smoothed landmarks.

Detection runs every ``k`` frames (:class:`privlens.anonymize.frames.FaceFinder`); in between, each
track is followed by running dlib's 68-point shape predictor in the box derived from its previous
landmarks. On a detection frame, detections are matched to tracks by box overlap (IoU, greedy,
best first); an unmatched detection starts a new track (new id, new identity), and a track that
no detection matches for ``max_missed`` detection rounds ends.

Smoothing: each track's landmarks are an exponential moving average of the raw ones,
``s ← s + a (raw − s)``, with ``a`` growing from ``alpha`` to 1 as the face's shift (the mean
displacement of its points, relative to its width) grows: fast motion is followed at once, the
jitter of single points is averaged away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from privlens.anonymize.frames import FoundFace, points
from privlens.faces.detect import match_boxes

Box = tuple[float, float, float, float]


def landmark_box(landmarks: np.ndarray) -> Box:
    """The bounding box of ``[68, 2]`` landmarks."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return float(x0), float(y0), float(x1), float(y1)


@dataclass
class Track:
    """One followed face: its ``id``, smoothed ``landmarks``, the detector box relative to the
    landmark box (``offset``, fractions of the landmark box's size), and rounds ``missed``."""

    id: int
    landmarks: np.ndarray
    offset: np.ndarray
    score: float
    missed: int = 0
    frames: list[int] = field(default_factory=list)

    @property
    def box(self) -> Box:
        x0, y0, x1, y1 = landmark_box(self.landmarks)
        size = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
        return tuple(float(v) for v in np.array([x0, y0, x1, y1]) + self.offset * size)  # type: ignore[return-value]


def _offset(box: Box, landmarks: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = landmark_box(landmarks)
    size = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    return (np.array(box) - np.array([x0, y0, x1, y1])) / np.maximum(size, 1e-6)


class Tracker:
    """Tracks faces across consecutive frames (see the module notes).

    Args:
        threshold: smallest IoU for a detection to continue a track.
        max_missed: detection rounds a track survives without a matching detection.
        alpha: smoothing weight of a still face (1: no smoothing).
        landmarks: ``(frame, box) -> [68, 2] or None`` (dlib's shape predictor by default).
    """

    def __init__(
        self,
        threshold: float = 0.3,
        max_missed: int = 1,
        alpha: float = 0.5,
        landmarks: Callable[[np.ndarray, Box], np.ndarray | None] | None = None,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
        self.threshold, self.max_missed, self.alpha = threshold, max_missed, alpha
        self.landmarks = landmarks or points
        self.tracks: list[Track] = []
        self.next_id = 0
        self.frame = -1

    def _smooth(self, track: Track, raw: np.ndarray) -> None:
        size = max(np.ptp(track.landmarks[:, 0]), 1.0)
        motion = float(np.hypot(*(raw - track.landmarks).mean(0))) / size  # the face's shift, not noise
        weight = min(1.0, self.alpha + 10.0 * motion)
        track.landmarks = track.landmarks + weight * (raw - track.landmarks)

    def _faces(self) -> list[FoundFace]:
        for track in self.tracks:
            track.frames.append(self.frame)
        return [FoundFace(t.box, t.score, t.landmarks.copy(), t.id) for t in self.tracks]

    def update(self, detections: list[FoundFace]) -> list[FoundFace]:
        """A detection frame: match, start and end tracks; the faces of this frame, with ids."""
        self.frame += 1
        usable = [d for d in detections if d.landmarks is not None]
        pairs = match_boxes([t.box for t in self.tracks], [d.box for d in usable], self.threshold)
        matched_tracks = {i for i, _ in pairs}
        matched_detections = {j for _, j in pairs}
        for i, j in pairs:
            track, found = self.tracks[i], usable[j]
            self._smooth(track, found.landmarks)
            track.offset, track.score, track.missed = _offset(found.box, found.landmarks), found.score, 0
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for j, found in enumerate(usable):
            if j not in matched_detections:
                offset = _offset(found.box, found.landmarks)
                self.tracks.append(Track(self.next_id, found.landmarks.copy(), offset, found.score))
                self.next_id += 1
        faces = self._faces()
        # a detection without landmarks is still a face: it is reported (and pixelated), untracked
        faces += [d for d in detections if d.landmarks is None]
        return faces

    def follow(self, frame: np.ndarray) -> list[FoundFace]:
        """A frame between detections: each track's landmarks found again near its last place."""
        self.frame += 1
        for track in self.tracks:
            raw = self.landmarks(frame, track.box)
            if raw is not None:
                self._smooth(track, raw)
        return self._faces()
