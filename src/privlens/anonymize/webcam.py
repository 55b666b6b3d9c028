"""A webcam through the full-frame pipeline: a thin loop over :meth:`FrameStream.step`.

Frames are read with OpenCV, anonymised one by one with the same per-frame function that videos
use (detection every ``k`` frames, tracking, one identity per track), then shown in a window
(``q`` or Esc quits) and/or written to a video file. Headless OpenCV builds have no window
support: give an output file there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from privlens.anonymize.pipeline import AnonymizeError
from privlens.anonymize.stream import FrameStream
from privlens.anonymize.video import FrameSink

WINDOW = "privlens anonymize"


def run_webcam(
    stream: FrameStream,
    device: int = 0,
    out: str | Path | None = None,
    show: bool = True,
    max_frames: int | None = None,
    fps: float = 25.0,
    open_capture: Callable[[int], Any] | None = None,
) -> int:
    """Anonymise webcam ``device`` until it stops, ``max_frames`` are done or the window is closed.

    ``open_capture(device)`` returns an object with OpenCV's ``read()``/``release()`` (default
    ``cv2.VideoCapture``). Returns the number of frames processed.
    """
    import cv2

    if not show and out is None:
        raise AnonymizeError("--webcam needs a window (--show) or an output video (--out file.mp4)")
    capture = (open_capture or cv2.VideoCapture)(device)
    if hasattr(capture, "isOpened") and not capture.isOpened():
        raise AnonymizeError(f"cannot open webcam {device}")
    sink: FrameSink | None = None
    frames = 0
    try:
        while max_frames is None or frames < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            stream.step(rgb)
            frames += 1
            if out is not None:
                if sink is None:
                    sink = FrameSink(out, fps, rgb.shape[1], rgb.shape[0])
                sink.write(rgb)
            if show:
                try:
                    cv2.imshow(WINDOW, np.ascontiguousarray(rgb[..., ::-1]))
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error as error:
                    raise AnonymizeError(
                        f"this OpenCV build cannot open a window ({str(error).strip().splitlines()[-1]}); "
                        "write to a file with --out clip.mp4 --no-show"
                    ) from error
                if key in (ord("q"), 27):
                    break
    except BaseException:
        if sink is not None:
            sink.abort()
            sink = None
        raise
    finally:
        capture.release()
        if show:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(WINDOW)
    if sink is not None:
        sink.finish()
    return frames
