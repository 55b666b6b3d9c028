"""Full-frame anonymisation timing, called by ``bench_anonymize.py --full-frame`` (see its notes).

Every stage is timed by wrapping the function that does it (detection, dlib's landmarks,
alignment, camera, U, backend, check, blending/pixelation, file reading and writing); the rest of
the wall time is listed as "other" (Python glue, tracking, mask building, colour matching).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch
from timing import cpu_name

import privlens.anonymize.frames as frames_module
import privlens.anonymize.jobs as jobs_module
from privlens.anonymize.frames import FaceFinder, FramePipeline, ModelPainter
from privlens.anonymize.pipeline import Anonymizer, GanBackend, WarpBackend
from privlens.anonymize.references import Reference
from privlens.data.samples import astronaut, lfw_faces
from privlens.faces import face_landmarks

SIZE = 64
TIMES: dict[str, float] = defaultdict(float)
CPU: dict[str, float] = defaultdict(float)


def timed(owner, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its wall time to ``TIMES[label]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start
            CPU[label] += time.process_time() - cpu

    setattr(owner, name, wrapper)


def models(gan: bool):
    """Lens camera, U and a backend: shipped defaults when present, else stand-ins."""
    from privlens.models import ModelFileError, load_shipped
    from privlens.nets import HeatmapNet
    from privlens.optics import make_camera

    try:
        camera, heatmap = load_shipped("lens"), load_shipped("heatmap").net
        source = "shipped lens_64 + heatmap_64"
    except (ModelFileError, ValueError):
        camera, heatmap = make_camera("prototype", SIZE), HeatmapNet(width=32, depth=4)
        source = "stand-ins (prototype lens, untrained U width 32 depth 4), 64 px"
    faces = lfw_faces()
    references = []
    for i in (40, 41):
        found = face_landmarks(faces[i])
        image = torch.nn.functional.interpolate(faces[i][None], size=(SIZE, SIZE), mode="area")[0]
        points = (found[1] + 0.5) * SIZE / faces[i].shape[-1] - 0.5
        references.append(Reference(Path(f"lfw{i}"), image, points, ""))
    if gan:
        from privlens.nets import Generator, MappingNetwork, StyleEncoder

        class Bundle:
            generator = Generator(SIZE, base_width=32, max_width=64)
            style_encoder = StyleEncoder(SIZE, num_domains=2, base_width=32, max_width=64)
            mapping = MappingNetwork(16, 64, num_domains=2)

        backend = GanBackend(Bundle(), references)
        source += " + untrained 64 px generator (widths 32-64, as configs/shipped/stage2_64.yaml)"
    else:
        backend = WarpBackend(references)
        source += " + warp backend"
    return Anonymizer(camera, heatmap, backend), references, source


def instrument(anonymizer: Anonymizer) -> None:
    timed(FaceFinder, "detect", "detection")
    import privlens.anonymize.track as track_module

    timed(frames_module, "points", "landmarks (dlib 68)")
    timed(track_module, "points", "landmarks (dlib 68)")
    timed(frames_module, "align_face", "alignment")
    timed(anonymizer.camera, "image", "camera")
    timed(anonymizer.heatmap_net, "forward", "U")
    timed(anonymizer.backend, "generate", "backend (warp or G)")
    timed(frames_module, "has_faces", "check (MTCNN on the new crops)")
    timed(frames_module, "paste", "blending")
    timed(frames_module, "pixelate", "pixelation (rejected faces)")
    timed(jobs_module, "read_photo", "read file")
    timed(jobs_module, "write_photo", "write file")
    # the video path's reading/writing/tracking are timed by the caller


def photo_scene(width: int = 1920, height: int = 1080) -> np.ndarray:
    """Five faces (astronaut and LFW, 130-300 px) on a textured 1920x1080 canvas."""
    rng = np.random.default_rng(0)
    canvas = cv2.resize(
        rng.integers(60, 200, (height // 40, width // 40, 3), dtype=np.uint8), (width, height)
    )
    astro = (astronaut(None).numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    lfw = (lfw_faces().numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    places = [(100, 150, 300, astro[10:290, 90:370]), (600, 300, 220, lfw[1]), (1000, 100, 180, lfw[2])]
    places += [(1350, 500, 260, lfw[5]), (300, 650, 150, lfw[6])]
    for x, y, side, face in places:
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side))
    return canvas


def clip_frame(i: int, width: int = 1280, height: int = 720) -> np.ndarray:
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = (90, 120, 150)
    lfw = (lfw_faces().numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    for x, y, side, face in ((200 + 4 * i, 150 + i, 220, lfw[1]), (800 - 2 * i, 300, 180, lfw[2])):
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side))
    return canvas


def report(title: str, wall: float, cpu: float, count: int, unit: str) -> None:
    """Per-stage wall and CPU seconds per ``unit``. With one torch thread, CPU seconds are what the
    wall time would be on a quiet core; on a shared machine the wall time is longer."""
    print(f"\n| {title} | wall s | CPU s | share of CPU |\n|---|---|---|---|")
    wall_done, cpu_done = 0.0, 0.0
    for label, seconds in sorted(CPU.items(), key=lambda item: -item[1]):
        wall_done, cpu_done = wall_done + TIMES[label], cpu_done + seconds
        print(
            f"| {label} | {TIMES[label] / count:.3f} | {seconds / count:.3f} | {100 * seconds / cpu:.0f} % |"
        )
    print(
        f"| other (decoding, glue, masks, colour matching, tracking) | {(wall - wall_done) / count:.3f} | "
        f"{(cpu - cpu_done) / count:.3f} | {100 * (cpu - cpu_done) / cpu:.0f} % |"
    )
    print(f"| **total per {unit}** | **{wall / count:.3f}** | **{cpu / count:.3f}** | |")


def full_frame(args: argparse.Namespace) -> None:
    torch.set_grad_enabled(False)
    import os

    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    anonymizer, references, source = models(args.gan)
    print(f"models: {source}")
    check = not args.no_check
    pipeline = FramePipeline(ModelPainter(anonymizer), FaceFinder(), check=check)
    instrument(anonymizer)
    job = jobs_module.AnonymizeJob(
        None, painter=pipeline.painter, check=check, detect_every=args.detect_every
    )
    job.references.references = references  # styles: the two references, one per face or track
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cv2.imwrite(str(folder / "photo.jpg"), photo_scene()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        job.run(folder / "photo.jpg", folder / "warm", progress=False)  # loads MTCNN and dlib models
        TIMES.clear()
        CPU.clear()
        repeats = 3
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(repeats):
            result = job.run(folder / "photo.jpg", folder / f"out{k}", progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"\nphoto 1920x1080 JPEG, {result.replaced + result.pixelated} faces "
            f"({result.replaced} replaced, {result.pixelated} pixelated), check {'on' if check else 'off'}: "
            f"{wall / repeats:.2f} s wall, {cpu / repeats:.2f} s CPU end to end (mean of {repeats})"
        )
        report("photo 1920x1080, 5 faces: stage", wall, cpu, repeats, "photo")

        # video: write the clip, then stream it through the video path
        writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (1280, 720))
        for i in range(args.frames):
            writer.write(np.ascontiguousarray(clip_frame(i)[..., ::-1]))
        writer.release()
        timed(jobs_module.FrameSink, "write", "write file")  # decoding is lazy: it falls in "other"
        TIMES.clear()
        CPU.clear()
        start, cpu = time.perf_counter(), time.process_time()
        result = job.run(folder / "clip.avi", folder / "video", progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"\nvideo 1280x720, {args.frames} frames, 2 faces, detection every {args.detect_every} frames: "
            f"{args.frames / wall:.2f} frames/s wall, {args.frames / cpu:.2f} frames per CPU second "
            f"({result.replaced} faces replaced, {result.pixelated} pixelated)"
        )
        report("video 1280x720, 2 faces: stage", wall, cpu, args.frames, "frame")
