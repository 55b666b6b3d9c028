"""Tracking across frames: stable ids, new ids for new faces, ended tracks, smoothed landmarks."""

from __future__ import annotations

import numpy as np

from privlens.anonymize.frames import FoundFace
from privlens.anonymize.track import Tracker, landmark_box


def face_at(x: float, y: float, rng: np.random.Generator | None = None, jitter: float = 0.0) -> FoundFace:
    """A fake detection: 68 points on a 60 px circle around (x, y), its box, optional jitter."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([x + 30 * np.cos(angles), y + 30 * np.sin(angles)], 1)
    if rng is not None:
        points = points + rng.normal(0, jitter, points.shape)
    return FoundFace(landmark_box(points), 0.99, points)


def test_ids_are_stable_new_faces_get_new_ids_and_lost_tracks_end():
    tracker = Tracker(max_missed=1, landmarks=lambda frame, box: None)
    first = tracker.update([face_at(100, 100), face_at(300, 100)])
    assert [f.track for f in first] == [0, 1]
    moved = tracker.update([face_at(306, 102), face_at(104, 101)])  # order swapped, small motion
    assert sorted((round(f.box[0]), f.track) for f in moved)[0][1] == 0
    assert {f.track for f in moved} == {0, 1}
    third = tracker.update([face_at(104, 101), face_at(500, 300)])  # face 1 missed once: kept
    assert sorted(f.track for f in third) == [0, 1, 2]
    fourth = tracker.update([face_at(104, 101), face_at(500, 300)])  # missed twice: ended
    assert sorted(f.track for f in fourth) == [0, 2]


def test_landmarks_are_smoothed_but_follow_fast_motion():
    rng = np.random.default_rng(0)
    tracker = Tracker(alpha=0.3, landmarks=lambda frame, box: None)
    tracker.update([face_at(100, 100)])
    raw, smooth = [], []
    for _ in range(30):
        noisy = face_at(100, 100, rng, jitter=1.5)
        raw.append(noisy.landmarks[0])
        smooth.append(tracker.update([noisy])[0].landmarks[0])
    assert np.std(smooth, axis=0).max() < 0.6 * np.std(raw, axis=0).max()
    jumped = tracker.update([face_at(130, 100)])[0]  # a 30 px jump is taken at once
    assert abs(jumped.landmarks[:, 0].mean() - 130) < 1.0 and jumped.track == 0


def test_between_detections_each_track_follows_its_landmarks():
    positions = iter([(110, 100), (120, 100)])

    def predictor(frame, box):
        return face_at(*next(positions)).landmarks

    tracker = Tracker(alpha=1.0, landmarks=predictor)
    tracker.update([face_at(100, 100)])
    for expected in (110, 120):
        (face,) = tracker.follow(np.zeros((10, 10, 3), np.uint8))
        assert face.track == 0 and abs(face.landmarks[:, 0].mean() - expected) < 1e-6
    assert tracker.tracks[0].frames == [0, 1, 2]
