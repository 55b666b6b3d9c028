"""Provenance of a model file: a JSON file beside it saying where it came from, with its hash.

``<name>.safetensors`` has ``<name>.json`` beside it holding at least:

* ``file`` (the model file's name), ``sha256`` (hex digest of its bytes), ``bytes``;
* ``kind`` (``heatmap``, ``lens``, ``generator``...), ``image_size`` (pixels it was trained at);
* ``data`` (what it was trained on), ``steps``, ``seconds`` (training wall time), ``machine``
  (CPU/GPU, threads, torch version), ``git_commit`` (of the code that trained it, ``+dirty`` when
  the tree had uncommitted changes), ``recipe`` (the command that reproduces it), ``created_utc``;

and anything else a trainer wants to record (``metrics``, ``config``). :func:`verify_file` checks
the hash; the registry calls it on every load of a shipped model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from privlens.files import atomic_write_text
from privlens.models.errors import ModelFileError, ModelHashError

REQUIRED = ("file", "sha256", "kind", "image_size", "data", "steps", "seconds", "machine", "git_commit")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def provenance_path(model_path: str | Path) -> Path:
    """``weights/heatmap_64.safetensors`` -> ``weights/heatmap_64.json``."""
    return Path(model_path).with_suffix(".json")


def machine_description() -> str:
    """One line naming the machine a model was trained on (CPU or GPU, threads, torch)."""
    import torch

    where = f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        where = f"{torch.cuda.get_device_name(0)} GPU; " + where
    return f"{where}; torch {torch.__version__}; {platform.system()}"


def git_commit(directory: str | Path = ".") -> str | None:
    """``HEAD`` of the git tree holding ``directory`` (``+dirty`` if tracked files changed), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def write_provenance(model_path: str | Path, **fields: Any) -> Path:
    """Write ``<model>.json`` with the file's hash and size plus ``fields``; every key of
    :data:`REQUIRED` must be given (``file`` and ``sha256`` are filled in here)."""
    model_path = Path(model_path)
    record = {"file": model_path.name, "sha256": sha256_of(model_path), "bytes": model_path.stat().st_size}
    record.update({k: v for k, v in fields.items() if k not in record})
    record.setdefault("created_utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"provenance of {model_path.name} lacks {', '.join(missing)}")
    return atomic_write_text(provenance_path(model_path), json.dumps(record, indent=2) + "\n")


def read_provenance(model_path: str | Path) -> dict[str, Any]:
    """The provenance record beside a model file (:class:`ModelFileError` if absent or corrupt)."""
    path = provenance_path(model_path)
    if not path.is_file():
        raise ModelFileError(f"{Path(model_path).name} has no provenance file {path.name}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: unreadable provenance ({error})") from error
    if not isinstance(record, dict) or "sha256" not in record:
        raise ModelFileError(f"{path}: provenance without a sha256")
    return record


def verify_file(model_path: str | Path, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check that a model file's SHA-256 is the one its provenance records; return the record."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelFileError(f"model file not found: {model_path}")
    record = read_provenance(model_path) if record is None else record
    actual = sha256_of(model_path)
    if actual != record["sha256"]:
        raise ModelHashError(
            f"{model_path}: SHA-256 {actual[:16]}... differs from its provenance's "
            f"{record['sha256'][:16]}... "
            "(the file was changed or corrupted; reinstall privlens or retrain it)"
        )
    return record
