"""The full-frame pipeline on built scenes: every face replaced or pixelated, nothing else touched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from anonymize_scenes import BACKGROUND, identity_distance_at, lfw_uint8, make_scene, paste

from privlens.anonymize.blend import face_mask
from privlens.anonymize.frames import PIXELATED, REPLACED, FaceFinder, FramePipeline, has_face


def changed_outside(before: np.ndarray, after: np.ndarray, regions) -> int:
    """Pixels that differ outside the union of ``regions`` (x0, y0, x1, y1)."""
    inside = np.zeros(before.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in regions:
        inside[y0:y1, x0:x1] = True
    return int(((before != after).any(2) & ~inside).sum())


def grown(square, margin: int, shape) -> tuple:
    x0, y0, x1, y1 = square
    return (max(0, x0 - margin), max(0, y0 - margin), min(shape[1], x1 + margin), min(shape[0], y1 + margin))


def run(painter, frame, **options):
    pipeline = FramePipeline(painter, FaceFinder(), **options)
    faces = pipeline.find(frame)
    records = pipeline.process([frame], [faces], [[None] * len(faces)])[0]
    return faces, records


def test_every_face_is_replaced_and_nothing_else_changes(oracle, scene):
    original, squares = scene
    frame = original.copy()
    faces, records = run(oracle, frame)
    assert len(records) == 4 and all(r.action == REPLACED for r in records), [r.to_json() for r in records]
    assert oracle.calls[-1] == 4  # the four faces shared one painter batch
    # bit for bit outside the reported regions, and the regions stay near the pasted faces
    assert changed_outside(original, frame, [r.region for r in records]) == 0
    assert changed_outside(original, frame, [grown(s, 40, frame.shape) for s in squares]) == 0
    for square in squares[:3]:  # the face cut by the border is too cut for dlib's HOG detector
        assert identity_distance_at(original, frame, square) > 0.6
    # the new face is a face: MTCNN still finds one in each square
    found = FaceFinder().detect(frame)
    for x0, y0, x1, y1 in squares:
        assert any(
            x0 <= (f.box[0] + f.box[2]) / 2 <= x1 and y0 <= (f.box[1] + f.box[3]) / 2 <= y1 for f in found
        )


def test_faces_of_several_frames_share_a_batch(oracle):
    frames = [make_scene()[0], np.ascontiguousarray(make_scene()[0][:240, :400])]
    pipeline = FramePipeline(oracle, FaceFinder(), batch_size=16)
    faces = [pipeline.find(frame) for frame in frames]
    records = pipeline.process(frames, faces, [[None] * len(f) for f in faces])
    assert oracle.calls[-1] == sum(len(f) for f in faces) and len(records) == 2


class Failing:
    size = 64

    def paint(self, crops, landmarks, slots):
        raise RuntimeError("out of memory")


class Blank:
    size = 64

    def paint(self, crops, landmarks, slots):
        return torch.full_like(crops, 0.5)


@pytest.mark.parametrize(
    ("painter", "reason"),
    [(Failing(), "pipeline failed: out of memory"), (Blank(), "no face found in the generated crop")],
)
def test_a_face_that_cannot_be_replaced_is_pixelated_and_listed(scene, painter, reason):
    original, squares = scene
    frame = original.copy()
    _, records = run(painter, frame)
    assert len(records) == 4
    assert all(r.action == PIXELATED and r.reason == reason for r in records)
    assert changed_outside(original, frame, [r.region for r in records]) == 0
    for square in squares[:3]:
        assert identity_distance_at(original, frame, square) > 0.6
    assert FaceFinder("dlib").detect(frame) == []  # no face left for dlib


def test_without_the_check_a_blank_result_is_pasted(scene):
    frame = scene[0].copy()
    _, records = run(Blank(), frame, check=False)
    assert all(r.action == REPLACED for r in records)


def test_min_face_drops_small_faces():
    canvas = np.empty((300, 400, 3), np.uint8)
    canvas[...] = BACKGROUND
    paste(canvas, lfw_uint8(1), 10, 10, 200)
    paste(canvas, lfw_uint8(2), 250, 150, 90)
    assert len(FaceFinder(min_face=20).detect(canvas)) == 2
    assert len(FaceFinder(min_face=80).detect(canvas)) == 1


def test_an_image_without_a_face(oracle):
    blank = np.full((200, 300, 3), 128, np.uint8)
    faces, records = run(oracle, blank)
    assert faces == [] and records == []


def test_mask_is_zero_beyond_the_image_and_has_a_full_core():
    points = np.array([[32 + 20 * np.cos(t), 36 + 22 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 68)])
    valid = np.ones((64, 64), bool)
    valid[:, 50:] = False
    mask = face_mask(points, 64, valid)
    assert mask[:, 50:].max() == 0 and mask[36, 32] == 1.0 and mask[0, 0] == 0


def test_has_face_on_crops(oracle, astro):
    from privlens.faces import align_face, face_landmarks

    _, points = face_landmarks(astro)
    crop = align_face(astro, points, 64).image.numpy().transpose(1, 2, 0)
    assert has_face(crop)
    assert not has_face(np.full((64, 64, 3), 0.5, np.float32))
