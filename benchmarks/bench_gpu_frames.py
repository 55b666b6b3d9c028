"""Full-frame anonymisation speed for ``bench_gpu.py``: 1920x1080 frames with 5 faces, end to end.

``frames.1080p5`` times the project's own :class:`privlens.anonymize.frames.FramePipeline` (issue
11): its ``FaceFinder`` (MTCNN on a copy shrunk to 960 px, CPU), alignment with edge fill, one
painter batch of all crops (camera -> U -> S -> G on the GPU, ``bench_anonymize.pipeline``, fresh
weights, bf16 + channels_last), the generated-face check (MTCNN on each new crop) and the
feathered, colour-matched blend. Two stand-ins, both named in the record: dlib's 68-point model
(``face_recognition_models``, 100 MB) cannot travel to the GPU machine, so each box gets the
astronaut's 68 dlib points scaled into it (``ASTRONAUT68``, measured once with dlib); and with
fresh weights G paints no face, so the check rejects every crop and the pipeline pixelates it
(the fail-safe path). ``frames.1080p5.nocheck`` is the same without the check (every face pasted).

``frames.1080p5.gpu_mtcnn`` is this module's own lean loop (MTCNN on the GPU with 5 points, OpenCV
alignment and blend on the face boxes only): what the frame path can reach, not the project's code.

The frame is synthetic: five copies of the embedded astronaut photo (public domain) on a smooth
background, so no data set is needed and MTCNN has real faces to find. Times are medians over
``frames`` frames after one warm-up, with the split per stage.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

ASTRONAUT68 = np.array(
    [
        [-0.024, 0.372],
        [-0.012, 0.49],
        [-0.001, 0.599],
        [0.011, 0.708],
        [0.046, 0.818],
        [0.126, 0.909],
        [0.23, 0.981],
        [0.334, 1.036],
        [0.461, 1.063],
        [0.599, 1.045],
        [0.715, 0.99],
        [0.83, 0.927],
        [0.911, 0.845],
        [0.957, 0.745],
        [0.991, 0.626],
        [1.014, 0.526],
        [1.026, 0.417],
        [0.057, 0.29],
        [0.138, 0.235],
        [0.23, 0.226],
        [0.322, 0.244],
        [0.415, 0.281],
        [0.634, 0.29],
        [0.726, 0.262],
        [0.807, 0.262],
        [0.899, 0.272],
        [0.957, 0.335],
        [0.518, 0.372],
        [0.518, 0.444],
        [0.507, 0.517],
        [0.507, 0.59],
        [0.392, 0.626],
        [0.438, 0.645],
        [0.495, 0.663],
        [0.565, 0.645],
        [0.611, 0.636],
        [0.161, 0.353],
        [0.23, 0.326],
        [0.299, 0.335],
        [0.357, 0.381],
        [0.288, 0.381],
        [0.219, 0.372],
        [0.657, 0.39],
        [0.715, 0.353],
        [0.784, 0.353],
        [0.853, 0.381],
        [0.795, 0.399],
        [0.726, 0.399],
        [0.219, 0.699],
        [0.322, 0.699],
        [0.415, 0.699],
        [0.484, 0.717],
        [0.553, 0.699],
        [0.645, 0.708],
        [0.749, 0.717],
        [0.645, 0.818],
        [0.553, 0.854],
        [0.472, 0.854],
        [0.403, 0.845],
        [0.299, 0.799],
        [0.242, 0.708],
        [0.415, 0.736],
        [0.484, 0.745],
        [0.553, 0.736],
        [0.715, 0.727],
        [0.553, 0.799],
        [0.484, 0.799],
        [0.403, 0.79],
    ],
    np.float32,
)
"""dlib's 68 points of the astronaut's face, as fractions of its MTCNN box (x0, y0, w, h)."""

TEMPLATE = np.array([[0.35, 0.40], [0.65, 0.40], [0.50, 0.55], [0.38, 0.70], [0.62, 0.70]], np.float32)


def synthetic_frame(width: int, height: int, faces: int, face_px: int) -> np.ndarray:
    """``height x width x 3`` uint8 RGB: a smooth background with ``faces`` astronaut photos."""
    from privlens.data.samples import astronaut

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([xs / width, ys / height, 0.5 + 0 * xs], axis=-1) * 180 + 40
    frame = background.astype(np.uint8)
    photo = (astronaut(None).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    photo = cv2.resize(photo, (face_px, face_px), interpolation=cv2.INTER_AREA)
    step = width // faces
    for i in range(faces):
        x = i * step + (step - face_px) // 2
        y = (height - face_px) // 2 + (i % 2) * (height - face_px) // 4 - (height - face_px) // 8
        frame[y : y + face_px, x : x + face_px] = photo
    return frame


def feather_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, int(size * 0.55)), (int(size * 0.36), int(size * 0.45)), 0, 0, 360, 1, -1)
    return cv2.GaussianBlur(mask, (0, 0), size * 0.04)


def _mtcnn(device: torch.device):
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device=device).eval()


def _median_split(runs: list[dict[str, float]], keys: tuple[str, ...]) -> dict[str, float]:
    return {f"{k}_ms": statistics.median(r[k] for r in runs) * 1e3 for k in keys}


def measure_project_pipeline(device, smoke: bool, record: Callable[..., None], check: bool) -> None:
    """The project's FramePipeline on the synthetic frame (see the module docstring)."""
    from bench_anonymize import pipeline

    from privlens.anonymize.frames import FaceFinder, FoundFace, FramePipeline

    width, height, count, face_px, size, frames = (
        (960, 540, 5, 150, 64, 1) if smoke else (1920, 1080, 5, 300, 256, 5)
    )
    source = synthetic_frame(width, height, count, face_px)
    variant = "channels_last+bf16" if device.type == "cuda" else "fp32"
    run = pipeline(size, device, variant)
    g = torch.Generator().manual_seed(0)
    references = torch.rand(16, 3, size, size, generator=g).to(device)
    domains = torch.zeros(16, dtype=torch.long, device=device)

    class Painter:
        def __init__(self) -> None:
            self.size = size

        def paint(self, crops, landmarks, slots):
            n = crops.shape[0]
            return run(crops.to(device), references[:n], domains[:n]).float().cpu()

    class Finder(FaceFinder):
        def find(self, frame):
            faces = []
            for face in self.detect(frame):
                x0, y0, x1, y1 = face.box
                points = ASTRONAUT68 * np.array([x1 - x0, y1 - y0], np.float32) + np.array(
                    [x0, y0], np.float32
                )
                faces.append(FoundFace(face.box, face.score, points.astype(np.float64)))
            return faces

    finder = Finder()
    frame_pipeline = FramePipeline(Painter(), finder, check=check)

    def one_frame() -> dict[str, float]:
        frame = source.copy()
        t = time.perf_counter()
        found = finder.find(frame)
        t1 = time.perf_counter()
        records = frame_pipeline.process([frame], [found], [[None] * len(found)])[0]
        t2 = time.perf_counter()
        actions = [r.action for r in records]
        return {
            "detect": t1 - t,
            "process": t2 - t1,
            "faces": float(len(found)),
            "replaced": float(actions.count("replaced")),
        }

    one_frame()
    runs = [one_frame() for _ in range(frames)]
    total = [r["detect"] + r["process"] for r in runs]
    record(
        "frames.1080p5" if check else "frames.1080p5.nocheck",
        1 / statistics.median(total),
        "frames/s",
        frame=f"{width}x{height}",
        faces_pasted=count,
        faces_found=statistics.median(r["faces"] for r in runs),
        faces_replaced=statistics.median(r["replaced"] for r in runs),
        check=check,
        variant=variant,
        frames=frames,
        note="privlens FramePipeline; stand-ins: astronaut 68 points scaled into each box (no dlib model),"
        " fresh G weights (check rejects -> pixelated)",
        **_median_split(runs, ("detect", "process")),
    )


def measure_frames(device: torch.device, smoke: bool, record: Callable[..., None]) -> None:
    for check in (True, False):
        try:
            measure_project_pipeline(device, smoke, record, check)
        except Exception as error:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            metric = "frames.1080p5" if check else "frames.1080p5.nocheck"
            record(metric, None, "error", error=f"{type(error).__name__}: {error}"[:300])
    measure_gpu_loop(device, smoke, record)


def measure_gpu_loop(device: torch.device, smoke: bool, record: Callable[..., None]) -> None:
    from bench_anonymize import pipeline

    width, height, count, face_px, size, frames = (
        (960, 540, 5, 150, 64, 2) if smoke else (1920, 1080, 5, 300, 256, 10)
    )
    frame = synthetic_frame(width, height, count, face_px)
    variant = "channels_last+bf16" if device.type == "cuda" else "fp32"
    run = pipeline(size, device, variant)
    template = TEMPLATE * size
    mask = feather_mask(size)
    g = torch.Generator().manual_seed(0)
    references = torch.rand(count, 3, size, size, generator=g).to(device)
    domains = torch.zeros(count, dtype=torch.long, device=device)
    try:
        detector = _mtcnn(device)
        detector_name = f"facenet-pytorch MTCNN on {device.type}"
    except ImportError as error:
        detector, detector_name = None, f"none ({error}); known boxes"

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def one_frame() -> dict[str, float]:
        times: dict[str, float] = {}
        t = time.perf_counter()
        if detector is not None:
            _, _, points = detector.detect(frame, landmarks=True)
            points = [] if points is None else [np.asarray(p, np.float32) for p in points]
        else:
            points = [template / size * face_px for _ in range(count)]  # pragma: no cover
        times["detect"] = time.perf_counter() - t
        t = time.perf_counter()
        matrices, crops = [], []
        for p in points:
            matrix, _ = cv2.estimateAffinePartial2D(p, template)
            matrices.append(matrix)
            crops.append(
                cv2.warpAffine(
                    frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )
            )
        times["align"] = time.perf_counter() - t
        t = time.perf_counter()
        out = frame.copy()
        if crops:
            batch = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float().div_(255)
            n = batch.shape[0]
            faces = run(batch, references[:n], domains[:n]).float().clamp(0, 1)
            faces = (faces.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).cpu().numpy()
        sync()
        times["gpu"] = time.perf_counter() - t
        t = time.perf_counter()
        for matrix, face in zip(matrices, faces if crops else [], strict=False):
            inverse = cv2.invertAffineTransform(matrix)
            corners = cv2.transform(
                np.array([[[0, 0], [size, 0], [0, size], [size, size]]], np.float32), inverse
            )[0]
            x0, y0 = np.floor(corners.min(0)).astype(int).clip(0)
            x1, y1 = np.ceil(corners.max(0)).astype(int)
            x1, y1 = min(x1, width), min(y1, height)
            shift = inverse.copy()
            shift[:, 2] -= (x0, y0)
            roi = (x1 - x0, y1 - y0)
            pasted = cv2.warpAffine(face, shift, roi, flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(mask, shift, roi, flags=cv2.INTER_LINEAR)[..., None]
            region = out[y0:y1, x0:x1].astype(np.float32)
            out[y0:y1, x0:x1] = (region + alpha * (pasted.astype(np.float32) - region)).astype(np.uint8)
        times["blend"] = time.perf_counter() - t
        times["faces"] = float(len(points))
        return times

    one_frame()  # warm-up (cudnn autotuning, MTCNN's first call)
    runs = [one_frame() for _ in range(frames)]
    total = [sum(v for k, v in r.items() if k != "faces") for r in runs]
    split = _median_split(runs, ("detect", "align", "gpu", "blend"))
    faces_found = statistics.median(r["faces"] for r in runs)
    record(
        "frames.1080p5.gpu_mtcnn",
        1 / statistics.median(total),
        "frames/s",
        frame=f"{width}x{height}",
        faces_pasted=count,
        faces_found=faces_found,
        detector=detector_name,
        variant=variant,
        frames=frames,
        note="bench_gpu_frames' own lean loop (GPU MTCNN, 5-point alignment), not privlens' FramePipeline",
        **split,
    )
