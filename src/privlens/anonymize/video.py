"""Video files in and out (OpenCV), streamed frame by frame.

:func:`iter_frames` reads and :class:`FrameSink` writes full-resolution ``H x W x 3`` uint8 RGB
frames (the full-frame pipeline); memory holds one frame, whatever the clip's length.

Output videos are written with the ``mp4v`` codec for ``.mp4`` (``MJPG`` for ``.avi``) at the
input's frame rate. OpenCV writes no audio: :func:`mux_audio` copies the source's audio track
with ffmpeg when it is installed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from privlens.data.images import ImageFileError

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


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Every frame of a video as an ``H x W x 3`` uint8 RGB array, in order."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if frame.ndim == 2:
                frame = np.repeat(frame[..., None], 3, axis=2)
            yield np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
    finally:
        capture.release()


class FrameSink:
    """A video being written at full size: ``write(H x W x 3 uint8 RGB)``, then ``finish()``.

    Frames go to a hidden partial file beside ``path``; ``finish()`` renames it onto ``path`` and
    ``abort()`` deletes it, so an interrupted job never leaves a truncated video behind.
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        import cv2

        self.path = Path(path)
        codec = CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise ValueError(f"output videos must be {' or '.join(CODECS)}, got {self.path.name}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.size = (width, height)
        self.frames = 0
        fourcc = cv2.VideoWriter_fourcc(*codec)
        self.writer = cv2.VideoWriter(str(self.partial), fourcc, fps, (width, height))
        if not self.writer.isOpened():
            self.partial.unlink(missing_ok=True)
            raise OSError(f"OpenCV cannot write {self.path} with the {codec} codec")

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != self.size:
            raise ValueError(
                f"frame of {frame.shape[1]}x{frame.shape[0]} in a {self.size[0]}x{self.size[1]} video"
            )
        self.writer.write(np.ascontiguousarray(frame[..., ::-1]))  # RGB -> BGR
        self.frames += 1

    def finish(self) -> Path:
        self.writer.release()
        self.partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        self.writer.release()
        self.partial.unlink(missing_ok=True)


def mux_audio(video: Path, source: Path) -> bool:
    """Copy ``source``'s audio track (if any) into ``video`` with ffmpeg; ``False`` (nothing
    changed) when ffmpeg is not installed or fails."""
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    muxed = video.with_name(f".{video.stem}.audio{video.suffix}")
    command = [ffmpeg, "-v", "error", "-y", "-i", str(video), "-i", str(source)]
    command += ["-map", "0:v:0", "-map", "1:a?", "-c:v", "copy", "-c:a", "aac", "-shortest", str(muxed)]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=3600)
    except (OSError, subprocess.SubprocessError):
        muxed.unlink(missing_ok=True)
        return False
    if done.returncode != 0 or not muxed.is_file():
        muxed.unlink(missing_ok=True)
        return False
    muxed.replace(video)
    return True
