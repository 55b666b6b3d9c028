"""Run folders: one training at a time (advisory lock), stale locks and temporaries cleaned,
TensorBoard shows each step once after a resume, Ctrl-C says how to resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from privlens.train.runs import (
    LOCK_NAME,
    RunFolderLockedError,
    acquire_run_lock,
    locked_run_folder,
)


def test_a_live_owner_blocks_a_second_training(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / LOCK_NAME
        import socket

        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "started": 0}))
        with pytest.raises(RunFolderLockedError, match=f"pid {sleeper.pid}"), locked_run_folder(tmp_path):
            pass
        assert lock.is_file()  # the owner's lock is left alone
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_same_process_cannot_lock_twice_and_releases(tmp_path):
    with locked_run_folder(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(RunFolderLockedError), locked_run_folder(tmp_path):
            pass
    assert not (tmp_path / LOCK_NAME).exists()
    with locked_run_folder(tmp_path):  # free again
        pass


def test_stale_lock_and_stray_temporaries_are_removed(tmp_path, capsys):
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    import socket

    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": 0})
    )
    stray = tmp_path / ".checkpoint.safetensors.abc123.tmp"
    stray.write_bytes(b"half a checkpoint")
    keep = tmp_path / "checkpoint.safetensors"
    keep.write_bytes(b"good")
    with locked_run_folder(tmp_path):
        assert not stray.exists() and keep.exists()
    assert "stale lock" in capsys.readouterr().err


def test_lock_of_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": 0}))
    with pytest.raises(RunFolderLockedError, match="elsewhere"):
        acquire_run_lock(tmp_path)


def test_ctrl_c_says_how_to_resume(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt), locked_run_folder(tmp_path):
        raise KeyboardInterrupt
    assert "run the same command again to resume" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()


def test_tensorboard_shows_each_step_once_after_a_resume(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from privlens.train.tblog import open_writer

    first = open_writer(tmp_path, True, purge_step=0)
    for step in range(10):  # killed after step 9; the checkpoint was at step 5
        first.add_scalar("loss/total", float(step), step)
    first.close()
    resumed = open_writer(tmp_path, True, purge_step=6)
    for step in range(6, 12):
        resumed.add_scalar("loss/total", 100.0 + step, step)
    resumed.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/total")]
    assert steps == list(range(12))
    values = {e.step: e.value for e in events.Scalars("loss/total")}
    assert values[5] == 5.0 and values[6] == 106.0
