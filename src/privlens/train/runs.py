"""What Stage I and Stage II runs share: the result record and the data-folder check."""

from __future__ import annotations

import json
import math
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
