"""What Stage I and Stage II runs share: the result record and the data-folder check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
