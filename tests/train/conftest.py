"""Shared fixtures: a tiny prepared face folder (embedded LFW faces at 64 px) and a pretrained U."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from privlens.train.config import load_config
from privlens.train.stage1_config import Stage1Config

TINY = Path(__file__).resolve().parents[2] / "configs" / "stage1_tiny.yaml"


@contextlib.contextmanager
def single_thread():
    """Run tiny networks on one thread: as fast as two for them, and immune to the OpenMP stalls
    two threads suffer when another process holds one of two cores (observed: 12 vs 0.4 steps/s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def faces64(tmp_path_factory) -> Path:
    """48 embedded LFW faces, prepared with `privlens data prepare` code (dlib landmarks), 64 px."""
    from privlens.data.images import save_image
    from privlens.data.prepare import prepare_faces
    from privlens.data.samples import lfw_faces

    src = tmp_path_factory.mktemp("lfw_src")
    for i, face in enumerate(lfw_faces()[:48]):
        save_image(face, src / f"face{i:03d}.png")
    dst = tmp_path_factory.mktemp("lfw64")
    report = prepare_faces(src, dst, size=64, val_fraction=0.25, progress=False)
    assert report.train >= 20 and report.val >= 5
    return dst


def _tiny_config(data: Path, *overrides: str) -> Stage1Config:
    return load_config(Stage1Config, TINY, [f"data.root={data}", "train.progress=false", *overrides])


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(data_folder, "key=value", ...)``: the tiny YAML config with overrides."""
    return _tiny_config


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    return TINY


@pytest.fixture(scope="session")
def pretrained_run(faces64, tmp_path_factory):
    """`train heatmap` for the tiny config's 40 steps (U from scratch on clean faces)."""
    from privlens.train.stage1 import run_stage1

    out = tmp_path_factory.mktemp("heatmap_run")
    with single_thread():
        return run_stage1("heatmap", _tiny_config(faces64), out, resume=False)
