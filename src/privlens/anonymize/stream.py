"""The per-frame function of videos and the webcam: detect every ``k`` frames, track, paint.

:class:`FrameStream` takes frames in order (one at a time, or a chunk whose faces share the
painter's batches), keeps the tracker's state between calls, gives each track one style slot for
its whole life (one new identity per person) and returns, per frame, the records of its faces.
Frames are ``H x W x 3`` uint8 RGB arrays, changed in place. Memory holds one chunk of frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from privlens.anonymize.frames import PIXELATED, FaceRecord, FramePipeline
from privlens.anonymize.references import Slot
from privlens.anonymize.track import Tracker


@dataclass
class TrackSummary:
    """A track over a clip: first and last frame, frames replaced and pixelated (with the
    reasons and the frame ranges where it was pixelated), and its style."""

    id: int
    first: int
    last: int
    replaced: int = 0
    pixelated: int = 0
    pixelated_frames: list[list[int]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    style: dict[str, Any] = field(default_factory=dict)

    def add(self, frame: int, record: FaceRecord) -> None:
        self.last = frame
        if record.action == PIXELATED:
            self.pixelated += 1
            if self.pixelated_frames and self.pixelated_frames[-1][1] == frame - 1:
                self.pixelated_frames[-1][1] = frame
            else:
                self.pixelated_frames.append([frame, frame])
            reason = record.reason or "unknown"
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        else:
            self.replaced += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "track": self.id,
            "frames": [self.first, self.last],
            "replaced": self.replaced,
            "pixelated": self.pixelated,
            "pixelated_frames": self.pixelated_frames,
            "reasons": self.reasons,
            "style": self.style,
        }


class FrameStream:
    """Consecutive frames of one clip through :class:`FramePipeline` with tracking.

    Args:
        pipeline: painting and blending (its finder detects).
        next_slot: the style of a new track (called once per track).
        detect_every: run the detector on every k-th frame (1: every frame), track in between.
        alpha: landmark smoothing of a still face (1: none), see :class:`Tracker`.
    """

    def __init__(
        self,
        pipeline: FramePipeline,
        next_slot: Callable[[], Slot | None],
        detect_every: int = 5,
        alpha: float = 0.5,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        self.pipeline, self.next_slot, self.detect_every = pipeline, next_slot, detect_every
        self.tracker = Tracker(alpha=alpha)
        self.slots: dict[int, Slot | None] = {}
        self.summaries: dict[int, TrackSummary] = {}
        self.frames = 0
        self.untracked = 0

    def push(self, frames: Sequence[np.ndarray]) -> list[list[FaceRecord]]:
        """Anonymise ``frames`` (the next ones of the clip) in place; their face records."""
        faces, slots = [], []
        for frame in frames:
            if self.frames % self.detect_every == 0:
                found = self.tracker.update(self.pipeline.find(frame))
            else:
                found = self.tracker.follow(frame)
            self.frames += 1
            for face in found:
                if face.track is not None and face.track not in self.slots:
                    self.slots[face.track] = self.next_slot()
            faces.append(found)
            slots.append([self.slots.get(face.track) if face.track is not None else None for face in found])
        records = self.pipeline.process(frames, faces, slots)
        first = self.frames - len(frames)
        for offset, frame_records in enumerate(records):
            for record in frame_records:
                if record.track is None:
                    self.untracked += 1
                    continue
                summary = self.summaries.get(record.track)
                if summary is None:
                    summary = TrackSummary(record.track, first + offset, first + offset, style=record.style)
                    self.summaries[record.track] = summary
                summary.add(first + offset, record)
        return records

    def step(self, frame: np.ndarray) -> list[FaceRecord]:
        """One frame (the webcam's loop)."""
        return self.push([frame])[0]
