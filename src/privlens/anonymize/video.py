"""Video files in and out (OpenCV), frame by frame, as float RGB ``[3, S, S]`` tensors in [0, 1].

Frames are centre-cropped to a square and resized like images. Output videos are written with
the ``mp4v`` codec for ``.mp4`` (``MJPG`` for ``.avi``) at the input's frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from privlens.data.images import ImageFileError, array_to_tensor, square_resize

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
FALLBACK_FPS = 25.0
CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass(frozen=True)
class VideoInfo:
    """Frame rate, the container's frame count (an estimate for some formats) and frame size."""

    fps: float
    frame_count: int
    width: int
    height: int
    fps_known: bool = True


def video_info(path: str | Path) -> VideoInfo:
    """Read a video's properties; :class:`ImageFileError` when it cannot be opened or decoded."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"video not found: {path}")
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        if not ok:
            raise ImageFileError(f"{path} is not a readable video (no frame decoded)")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        known = math.isfinite(fps) and fps > 0
        return VideoInfo(
            fps if known else FALLBACK_FPS,
            max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            known,
        )
    finally:
        capture.release()


def iter_frame_batches(path: str | Path, size: int, batch_size: int) -> Iterator[torch.Tensor]:
    """``[b, 3, size, size]`` batches of consecutive frames (the last one may be shorter)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    batch: list[torch.Tensor] = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if frame.ndim == 2:
                frame = frame[..., None]
            rgb = np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
            batch.append(square_resize(array_to_tensor(rgb), size))
            if len(batch) == batch_size:
                yield torch.stack(batch)
                batch = []
    finally:
        capture.release()
    if batch:
        yield torch.stack(batch)


class VideoSink:
    """A video file being written: ``write([B, 3, S, S] or [3, S, S])`` then ``finish()``.

    Frames go to a hidden partial file beside ``path``; ``finish()`` renames it onto ``path``, and
    ``abort()`` (or leaving a ``with`` block by an exception) deletes it, so an interrupted job
    never replaces an earlier output with a truncated one.
    """

    def __init__(self, path: str | Path, fps: float, size: int) -> None:
        import cv2

        self.path = Path(path)
        codec = CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise ValueError(f"output videos must be {' or '.join(CODECS)}, got {self.path.name}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.size = size
        self.frames = 0
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*codec), fps, (size, size))
        if not self.writer.isOpened():
            self.partial.unlink(missing_ok=True)
            raise OSError(f"OpenCV cannot write {self.path} with the {codec} codec")

    def write(self, frames: torch.Tensor) -> None:
        if frames.dim() == 3:
            frames = frames[None]
        arrays = (frames.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for array in arrays:
            self.writer.write(np.ascontiguousarray(array.transpose(1, 2, 0)[..., ::-1]))  # RGB -> BGR
            self.frames += 1

    def finish(self) -> Path:
        self.writer.release()
        self.partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        self.writer.release()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()
