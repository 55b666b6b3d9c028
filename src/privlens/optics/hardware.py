"""Hardware bridge: Noll coefficients <-> deformable-mirror files and wavefront-sensor readings.

Deformable mirror (Thorlabs DMH40-class). Its control software numbers Zernike terms Z4..Z15 in
ANSI order plus one (its Z4 is oblique astigmatism, its Z5 defocus) and takes amplitudes in
[-1, 1]. What amplitude 1 does depends on the device, so export needs a *calibration file*: for
each term, the RMS wavefront (um, RMS-normalised Zernike as in privlens) produced at amplitude +1.
Then ``amplitude = beta_noll / max_um``. Piston, tip and tilt (Noll 1-3) are dropped: the mirror
does not show them and they only move the image (a note says so). Terms above what the mirror
shows must be zero, or are dropped when the caller allows it.

File formats (CSV, ``#`` comment lines allowed, header required):

* calibration: ``term,max_um`` with one row per mirror term ``Z4``..``Z15``;
* mirror file (export output, import input): ``term,amplitude`` for ``Z4``..``Z15``;
* wavefront-sensor reading (import input): ``index,coefficient_um`` in Noll, ANSI (from 0) or
  Thorlabs (ANSI + 1) numbering, RMS-normalised, in um.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from privlens.files import atomic_write_text
from privlens.optics.zernike import ansi_to_noll, noll_to_ansi

MIRROR_TERMS = tuple(range(4, 16))
"""Thorlabs term numbers shown by a DMH40-class mirror (Z4..Z15)."""

Convention = Literal["noll", "ansi", "thorlabs"]


def thorlabs_to_noll(term: int) -> int:
    """Noll index of a Thorlabs term number (ANSI index + 1); ``thorlabs_to_noll(5) == 4``."""
    if term < 1:
        raise ValueError(f"Thorlabs Zernike terms start at 1, got {term}")
    return ansi_to_noll(term - 1)


def noll_to_thorlabs(j: int) -> int:
    """Thorlabs term number of Noll index ``j``; ``noll_to_thorlabs(4) == 5``."""
    return noll_to_ansi(j) + 1


class HardwareFileError(ValueError):
    """A calibration, mirror or wavefront file is missing, malformed or inconsistent."""


def _read_csv(path: str | Path, columns: tuple[str, str]) -> list[tuple[str, float]]:
    path = Path(path)
    if not path.is_file():
        raise HardwareFileError(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HardwareFileError(f"{path} is not a readable text file ({error})") from error
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.reader(lines))
    if not rows or [c.strip().lower() for c in rows[0]] != list(columns):
        raise HardwareFileError(f"{path}: expected a CSV header '{','.join(columns)}'")
    parsed = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise HardwareFileError(f"{path}: data row {number - 1} needs 2 fields, got {row}")
        try:
            value = float(row[1])
        except ValueError as error:
            raise HardwareFileError(f"{path}: data row {number - 1}: {row[1]!r} is not a number") from error
        if value != value or value in (float("inf"), float("-inf")):
            raise HardwareFileError(f"{path}: data row {number - 1}: value is not finite")
        if abs(value) >= 1e6:  # um or mirror amplitudes: anything this large is a mistake
            raise HardwareFileError(f"{path}: data row {number - 1}: {row[1].strip()} is out of range")
        parsed.append((row[0].strip(), value))
    return parsed


def _parse_term(label: str, path: str | Path) -> int:
    text = label.upper().removeprefix("Z")
    if not text.isdigit():
        raise HardwareFileError(f"{path}: {label!r} is not a mirror term like Z5")
    return int(text)


def read_calibration(path: str | Path) -> dict[int, float]:
    """Per-term maximum wavefront (um RMS at amplitude +1), keyed by Thorlabs term number."""
    calibration: dict[int, float] = {}
    for label, value in _read_csv(path, ("term", "max_um")):
        term = _parse_term(label, path)
        if term not in MIRROR_TERMS:
            raise HardwareFileError(f"{path}: term Z{term} is not a mirror term (Z4..Z15)")
        if value <= 0:
            raise HardwareFileError(f"{path}: Z{term} max_um must be positive, got {value}")
        calibration[term] = value
    missing = [t for t in MIRROR_TERMS if t not in calibration]
    if missing:
        raise HardwareFileError(f"{path}: calibration lacks terms {', '.join(f'Z{t}' for t in missing)}")
    return calibration


@dataclass
class MirrorExport:
    """Result of converting coefficients for the mirror."""

    amplitudes: dict[int, float]
    notes: list[str] = field(default_factory=list)


def coefficients_to_mirror(
    coeffs_um: torch.Tensor,
    calibration: dict[int, float],
    out_of_range: Literal["error", "clip"] = "error",
    drop_unsupported: bool = False,
) -> MirrorExport:
    """Noll coefficients (um) -> mirror amplitudes in [-1, 1] keyed by Thorlabs term.

    ``out_of_range="error"`` refuses amplitudes beyond [-1, 1]; ``"clip"`` clips them with a
    warning. Non-zero terms the mirror cannot show (Noll > 15) raise unless ``drop_unsupported``.
    """
    coeffs = [float(v) for v in torch.as_tensor(coeffs_um).flatten()]
    notes = []
    dropped_low = [j for j in (1, 2, 3) if j <= len(coeffs) and coeffs[j - 1] != 0]
    if dropped_low:
        notes.append(
            "dropped piston/tip/tilt (Noll "
            + ", ".join(str(j) for j in dropped_low)
            + "): the mirror does not show them; they only shift the image"
        )
    unsupported = [j for j in range(16, len(coeffs) + 1) if coeffs[j - 1] != 0]
    if unsupported:
        message = f"Noll terms {unsupported[0]}..{unsupported[-1]} are not shown by the mirror (Z4..Z15)"
        if not drop_unsupported:
            raise ValueError(message + "; pass drop_unsupported=True to drop them")
        notes.append("dropped " + message)
        warnings.warn(notes[-1], stacklevel=2)
    amplitudes = {}
    beyond = []
    for term in MIRROR_TERMS:
        j = thorlabs_to_noll(term)
        beta = coeffs[j - 1] if j <= len(coeffs) else 0.0
        amplitude = beta / calibration[term]
        if abs(amplitude) > 1:
            beyond.append(f"Z{term} (Noll {j}): {amplitude:+.3f}")
            amplitude = max(-1.0, min(1.0, amplitude))
        amplitudes[term] = amplitude
    if beyond:
        message = "amplitudes beyond [-1, 1]: " + ", ".join(beyond)
        if out_of_range == "error":
            raise ValueError(message + "; retrain with the mirror range or clip explicitly")
        notes.append("clipped " + message)
        warnings.warn(notes[-1], stacklevel=2)
    return MirrorExport(amplitudes, notes)


def write_mirror_file(export: MirrorExport, path: str | Path, source: str = "") -> Path:
    """Write a mirror file (``term,amplitude``; notes as ``#`` comments)."""
    buffer = io.StringIO()
    buffer.write(
        "# privlens deformable-mirror export: Thorlabs numbering (ANSI + 1), amplitudes in [-1, 1]\n"
    )
    if source:
        buffer.write(f"# source: {source}\n")
    for note in export.notes:
        buffer.write(f"# note: {note}\n")
    buffer.write("term,amplitude\n")
    for term in MIRROR_TERMS:
        buffer.write(f"Z{term},{export.amplitudes[term]:.6f}\n")
    return atomic_write_text(path, buffer.getvalue())


def read_mirror_file(path: str | Path, calibration: dict[int, float], num_terms: int = 15) -> torch.Tensor:
    """Mirror amplitudes -> Noll coefficients (um), ``[num_terms]`` (Noll 1-3 are 0)."""
    if num_terms < 15:
        raise ValueError(f"a mirror file needs at least 15 Noll terms, got {num_terms}")
    coeffs = torch.zeros(num_terms)
    seen = set()
    for label, amplitude in _read_csv(path, ("term", "amplitude")):
        term = _parse_term(label, path)
        if term not in MIRROR_TERMS:
            raise HardwareFileError(f"{path}: term Z{term} is not a mirror term (Z4..Z15)")
        if abs(amplitude) > 1 + 1e-9:
            raise HardwareFileError(f"{path}: Z{term} amplitude {amplitude} is outside [-1, 1]")
        if term in seen:
            raise HardwareFileError(f"{path}: term Z{term} appears twice")
        seen.add(term)
        coeffs[thorlabs_to_noll(term) - 1] = amplitude * calibration[term]
    return coeffs


def read_wavefront_file(
    path: str | Path, convention: Convention = "noll", num_terms: int | None = None
) -> torch.Tensor:
    """Wavefront-sensor coefficients (um, RMS-normalised) in any numbering -> Noll ``[num_terms]``.

    ``num_terms`` defaults to the highest Noll index present; readings beyond it raise.
    """
    to_noll = {"noll": lambda i: i, "ansi": ansi_to_noll, "thorlabs": thorlabs_to_noll}
    if convention not in to_noll:
        raise ValueError(f"convention must be one of noll, ansi, thorlabs; got {convention!r}")
    readings: dict[int, float] = {}
    for label, value in _read_csv(path, ("index", "coefficient_um")):
        text = label.upper().removeprefix("Z")
        if not text.isdigit():
            raise HardwareFileError(f"{path}: index {label!r} is not an integer")
        try:
            j = to_noll[convention](int(text))
        except ValueError as error:
            raise HardwareFileError(f"{path}: index {label!r}: {error}") from error
        if j in readings:
            raise HardwareFileError(f"{path}: Noll term {j} appears twice")
        readings[j] = value
    if not readings:
        raise HardwareFileError(f"{path}: no coefficients")
    size = num_terms or max(readings)
    if max(readings) > size:
        raise HardwareFileError(f"{path}: Noll term {max(readings)} exceeds the lens's {size} terms")
    coeffs = torch.zeros(size)
    for j, value in readings.items():
        coeffs[j - 1] = value
    return coeffs
