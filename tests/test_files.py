"""Atomic writes: all or nothing, usual permissions."""

import os
import stat
from pathlib import Path

import pytest

from privlens.files import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_keeps_usual_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        Path(temporary).write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
