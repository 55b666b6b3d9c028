"""Shared fixtures: a tiny heatmap network U, a defocus lens file, reference faces and inputs.

Everything is small (64 px images, an 8-channel U of hourglass depth 1) so the whole folder runs
in well under a minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from anonymize_scenes import OraclePainter, make_scene

SIZE = 64


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    """A Stage I-like run folder: ``lens.safetensors`` (defocus, 64 px) + ``heatmap_net.safetensors``
    (a random U of width 8, depth 1, saved with the Stage I save function)."""
    from privlens.nets import HeatmapNet
    from privlens.optics import make_camera
    from privlens.optics.lensfile import save_lens
    from privlens.train.checkpoint import save_heatmap_net

    folder = tmp_path_factory.mktemp("stage1_run")
    torch.manual_seed(0)
    save_heatmap_net(HeatmapNet(width=8, depth=1), folder / "heatmap_net.safetensors", {"test": True})
    save_lens(make_camera("defocus", SIZE), folder / "lens.safetensors", {"test": True})
    return folder


@pytest.fixture(scope="session")
def references(tmp_path_factory) -> Path:
    """Five embedded LFW faces (150 px) in which dlib finds a face, plus one face-less image."""
    from privlens.data.images import save_image
    from privlens.data.samples import lfw_faces, lfw_non_faces
    from privlens.faces import face_landmarks

    folder = tmp_path_factory.mktemp("refs")
    kept = 0
    for i, face in enumerate(lfw_faces()[10:30]):
        if kept == 5:
            break
        if face_landmarks(face) is not None:
            save_image(face, folder / f"ref{i:02d}.png")
            kept += 1
    assert kept == 5
    save_image(lfw_non_faces()[0], folder / "zz_no_face.png")
    return folder


@pytest.fixture(scope="session")
def video_writer():
    """``video_writer(path, frames, fps)``: see :func:`write_video`."""
    return write_video


def write_video(path: Path, frames: int, fps: float, width: int = 96, height: int = 80) -> Path:
    """A short clip of an embedded face that brightens frame by frame (OpenCV, mp4v or MJPG)."""
    import cv2

    from privlens.data.samples import lfw_faces

    face = (lfw_faces()[0].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    face = cv2.resize(face, (width, height))
    codec = "MJPG" if path.suffix == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    for i in range(frames):
        writer.write(np.clip(face.astype(np.int16) + 8 * i, 0, 255).astype(np.uint8)[..., ::-1].copy())
    writer.release()
    return path


@pytest.fixture(scope="session")
def oracle() -> OraclePainter:
    return OraclePainter()


@pytest.fixture(scope="session")
def scene() -> tuple[np.ndarray, list[tuple]]:
    return make_scene()


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (see tests/conftest.py)."""
    yield
