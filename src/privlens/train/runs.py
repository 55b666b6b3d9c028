"""What Stage I and Stage II runs share: the result record, the data-folder check, metric lines
and the run-folder lock (:func:`locked_run_folder`)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from privlens.files import atomic_write_text
from privlens.train.config import ConfigError


@dataclass
class RunResult:
    """What a run produced: the run folder, its summary (also in ``summary.json``) and files."""

    run_dir: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


class _DataSection(Protocol):
    root: str | None


class _HasData(Protocol):
    data: _DataSection


def check_data_root(config: _HasData) -> Path:
    """The prepared data folder of a Stage I/II config, or a :class:`ConfigError` naming ``data.root``."""
    if config.data.root is None:
        raise ConfigError("data.root: no data folder given (use --data DIR or data.root=DIR)")
    root = Path(config.data.root)
    if not root.is_dir():
        raise ConfigError(f"data.root: data folder not found: {root}")
    if not (root / "landmarks.csv").is_file():
        raise ConfigError(
            f"data.root: {root} has no landmarks.csv; prepare the faces first with "
            f"`privlens data prepare SRC {root}`"
        )
    return root


def append_metrics(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl`` (non-finite floats become ``null``)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(clean) + "\n")


def trim_metrics(path: Path, start_step: int) -> None:
    """Drop metric lines logged after the checkpoint a resumed run restarts from."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= start_step:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


LOCK_NAME = ".privlens-run.lock"


class RunFolderLockedError(ConfigError):
    """Another live process trains into the same run folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_stale(owner: dict[str, Any]) -> bool:
    """A lock is stale when its owner ran on this host and that process is gone (or unreadable)."""
    if not owner or not isinstance(owner.get("pid"), int):
        return True
    if owner.get("host") != socket.gethostname():
        return False  # another machine on a shared disk: cannot tell, so respect it
    return not _pid_alive(owner["pid"])


def acquire_run_lock(run_dir: Path) -> Path:
    """Create ``run_dir/.privlens-run.lock`` holding this process's pid, host and start time.

    A lock left by a process that no longer exists (killed run) is replaced, with a note on
    stderr. A live owner raises :class:`RunFolderLockedError` naming its pid.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(path)
            if not _is_stale(owner):
                raise RunFolderLockedError(
                    f"{run_dir} is in use by another training (pid {owner.get('pid')} on "
                    f"{owner.get('host')}); wait for it to finish or use another --out"
                ) from None
            print(f"note: removing the stale lock of pid {owner.get('pid')} in {run_dir}", file=sys.stderr)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(record)
        return path
    raise RunFolderLockedError(f"{run_dir}: could not take the run-folder lock")  # pragma: no cover


def release_run_lock(path: Path) -> None:
    """Remove the lock file if this process still owns it."""
    if _read_lock(path).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stray_temporaries(run_dir: Path) -> list[Path]:
    """Delete temporary files an interrupted atomic write left in ``run_dir`` (``.NAME.*.tmp``)."""
    removed = []
    for stray in run_dir.glob(".*.tmp"):
        if stray.is_file():
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()
                removed.append(stray)
    return removed


@contextlib.contextmanager
def locked_run_folder(run_dir: str | Path, enabled: bool = True) -> Iterator[Path]:
    """Hold ``run_dir`` for one training: lock it, clean it, and say how to resume on Ctrl-C.

    On entry: takes the advisory lock (:func:`acquire_run_lock`) and removes stray temporary files
    of interrupted checkpoint writes. On Ctrl-C: prints how to resume, then re-raises. On exit:
    releases the lock. ``enabled=False`` (non-main ranks under DDP) does nothing.
    """
    run_dir = Path(run_dir)
    if not enabled:
        yield run_dir
        return
    lock = acquire_run_lock(run_dir)
    try:
        remove_stray_temporaries(run_dir)
        yield run_dir
    except KeyboardInterrupt:
        print(
            f"interrupted: {run_dir} keeps its last checkpoint; run the same command again to resume "
            "from it (resuming is the default; --no-resume starts over)",
            file=sys.stderr,
        )
        raise
    finally:
        release_run_lock(lock)
