"""Write result tables (a list of rows with the same keys) as Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from privlens.files import atomic_write_text

Row = dict[str, Any]


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def to_markdown(rows: Sequence[Row], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; NaN shows as ``n/a``."""
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_tables(rows: Sequence[Row], stem: str | Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.json`` (NaN becomes ``null`` in JSON)."""
    stem = Path(stem)
    payload = {"rows": list(rows), **(extra or {})}
    return [
        atomic_write_text(stem.with_suffix(".md"), to_markdown(rows)),
        atomic_write_text(stem.with_suffix(".csv"), to_csv(rows)),
        atomic_write_text(stem.with_suffix(".json"), json.dumps(_json_safe(payload), indent=2)),
    ]
