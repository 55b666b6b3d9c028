"""Where commands may write: the checks that keep a user's inputs from being overwritten or shadowed.

Every command that writes files calls these *before* it writes anything:

- :func:`check_output_dir` refuses an output folder that is a file, cannot be written, equals an
  input folder or lies inside one (its files would be read back as inputs on the next run);
- :func:`plan_outputs` maps every input to its output path, refuses two inputs that would share one
  output (``a.png`` and ``a.jpg`` both -> ``a.png``), an output that *is* an input, and existing
  outputs unless ``overwrite``;
- :func:`check_output_file` does the same for a single output file (``--out figure.png``);
- :func:`check_size` bounds an image side given on the command line;
- :func:`identifiable_warning` / :func:`require_allow_identifiable` flag lenses whose captures
  still show a recognisable face (the ``open`` lens).

Each failure is an :class:`OutputError` (a ``ValueError``) with a one-line message naming the path;
the command line turns it into ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: Largest image side (pixels) the commands accept for ``--size``: the simulated camera convolves
#: zero-padded images with FFTs, so memory grows with 4·size² per channel.
MAX_IMAGE_SIDE = 2048

#: Lenses whose captures keep the face recognisable (exact preset names).
IDENTIFIABLE_PRESETS = ("open",)

#: A lens file whose every non-frozen coefficient is below this (um RMS) images like the open lens.
IDENTIFIABLE_MAX_COEFF_UM = 0.05

#: ... unless an aperture stop cuts its detail: a flat lens whose diffraction cut-off, 1 / (lambda N)
#: at the shortest wavelength, lies below this many cycles across the sensor's field is a stopped-down
#: lens, not an open one. Measured (benchmarks/RESULTS.md, issue 14, the stop screen: Tikhonov with
#: the exact PSF, 4000 e-, N = 19 held-out faces): 12.9 cycles (0.15 mm) re-identified 18 of 19,
#: 8.6 cycles (0.10 mm) 4 of 19, 6.0 cycles (0.07 mm, `lens-stop`) 1 of 19. A guard against an
#: accidental open lens, not a privacy figure: measure a lens with `privlens attack`.
IDENTIFIABLE_MIN_CUTOFF_CYCLES = 10.0


class OutputError(ValueError):
    """An output location would lose or shadow the user's data, or cannot be written."""


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _probe_writable(folder: Path) -> None:
    """Create ``folder`` (and parents) and write then delete one temporary file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".privlens-probe-")
        os.close(handle)
        os.unlink(name)
    except FileExistsError:
        raise OutputError(f"cannot create the folder {folder}: a file of that name is in the way") from None
    except NotADirectoryError:
        raise OutputError(f"cannot create the folder {folder}: part of its path is a file") from None
    except OSError as error:
        raise OutputError(f"cannot write to {folder}: {error.strerror or error}") from None


def check_output_dir(
    out: str | Path, sources: Iterable[str | Path] = (), option: str = "--out", allow_inside: bool = False
) -> Path:
    """Check (and create) an output folder; refuse one that equals or lies inside an input folder.

    ``sources`` are the command's inputs (files or folders). ``allow_inside``: for a command that
    leaves its output folder out of the inputs itself (and says so); the input folder itself is
    refused all the same. Returns ``out`` as given.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is an existing file, not a folder")
    target = _resolved(out)
    for source in sources:
        source_path = _resolved(source)
        if not Path(source).is_dir():
            continue
        if target == source_path:
            raise OutputError(
                f"{option} {out} is the input folder itself: its files would be overwritten; "
                "choose another output folder"
            )
        if _is_within(target, source_path) and not allow_inside:
            raise OutputError(
                f"{option} {out} lies inside the input folder {source}: its files would be read back "
                "as inputs on the next run; choose a folder outside it"
            )
    _probe_writable(out)
    return out


def output_name(path: str | Path, root: str | Path, suffix: str = ".png") -> Path:
    """Relative output path of ``path`` (below folder ``root``, or a lone file): suffix replaced."""
    path, root = Path(path), Path(root)
    relative = path.relative_to(root) if root.is_dir() else Path(path.name)
    return relative.with_suffix(suffix)


def plan_outputs(
    inputs: Iterable[str | Path],
    root: str | Path,
    out: str | Path,
    suffix: str = ".png",
    overwrite: bool = False,
) -> dict[Path, Path]:
    """Map each input file to ``out / output_name(...)``; refuse collisions and existing outputs.

    Two inputs that differ only by extension (``a.png``, ``a.jpg``) would share one output: that is
    refused, naming both. An output that is one of the inputs is always refused; other existing
    outputs are refused unless ``overwrite``.
    """
    out = Path(out)
    plan: dict[Path, Path] = {}
    owner: dict[Path, Path] = {}
    inputs = [Path(p) for p in inputs]
    input_set = {_resolved(p) for p in inputs}
    for path in inputs:
        target = out / output_name(path, root, suffix)
        key = _resolved(target)
        if key in owner:
            raise OutputError(
                f"{owner[key]} and {path} would both be written to {target}; rename one of them "
                "or process them separately"
            )
        if key in input_set:
            raise OutputError(f"the output {target} would overwrite the input {path}")
        owner[key] = path
        plan[path] = target
    if not overwrite:
        existing = [t for t in plan.values() if t.exists()]
        if existing:
            raise OutputError(
                f"{len(existing)} output file(s) already exist (first: {existing[0]}); "
                "pass --overwrite to replace them"
            )
    return plan


def check_output_file(
    path: str | Path,
    suffixes: Iterable[str] | None = None,
    overwrite: bool = False,
    option: str = "--out",
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Check one output file: not a folder, a known suffix, writable, not an input, not existing.

    ``suffixes`` (lower case, with the dot) are the accepted ones; ``None`` accepts any.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if suffixes is not None:
        allowed = tuple(suffixes)
        if path.suffix.lower() not in allowed:
            raise OutputError(f"{option} {path} must end in {' or '.join(allowed)}")
    if _resolved(path) in {_resolved(p) for p in inputs}:
        raise OutputError(f"{option} {path} is also an input; choose another file")
    if path.exists() and not overwrite:
        raise OutputError(f"{option} {path} already exists; pass --overwrite to replace it")
    _probe_writable(path.parent if str(path.parent) else Path("."))
    return path


def check_size(size: int | None, option: str = "--size", maximum: int = MAX_IMAGE_SIDE) -> int | None:
    """Refuse an image side below 1 or above ``maximum`` pixels (``None`` passes: a default applies)."""
    if size is None:
        return None
    if size < 1 or size > maximum:
        raise OutputError(f"{option} must lie in 1..{maximum} pixels, got {size}")
    return size


def _lens_coefficients(camera) -> list[float] | None:
    coeffs = getattr(camera, "coeffs_um", None)
    if coeffs is None:
        return None
    frozen = set(getattr(camera.config, "frozen_terms", ()) or ())
    values = coeffs.detach().flatten().tolist()
    return [v for j, v in enumerate(values, start=1) if j not in frozen]


def is_identifiable(lens: str | Path, camera=None) -> bool:
    """True for the ``open`` preset, or a camera whose phase mask is (nearly) flat at full resolution."""
    if str(lens) in IDENTIFIABLE_PRESETS:
        return True
    if camera is None:
        return False
    if getattr(camera.config, "lowres_size", None):
        return False
    coeffs = _lens_coefficients(camera)
    flat = coeffs is not None and max((abs(v) for v in coeffs), default=0.0) < IDENTIFIABLE_MAX_COEFF_UM
    return flat and diffraction_cutoff_cycles(camera.config) >= IDENTIFIABLE_MIN_CUTOFF_CYCLES


def diffraction_cutoff_cycles(config) -> float:
    """The incoherent diffraction cut-off ``1 / (lambda_min N)`` of an aberration-free lens, in
    cycles across the sensor's field (``grid_size * pitch_m``): 173 for the paper's f/12.5 camera,
    6.0 for the 0.07 mm stop (f/357). No detail finer than this reaches the sensor."""
    field_m = config.grid_size * config.pitch_m
    return field_m / (min(config.wavelengths_m) * config.f_number)


def identifiable_warning(lens: str | Path, camera=None) -> str | None:
    """The privacy warning for a lens whose captures keep faces recognisable, else ``None``."""
    if not is_identifiable(lens, camera):
        return None
    return (
        f"privacy: the lens {lens} has no aberration and no stop that cuts its detail, so its "
        "captures show recognisable faces; use it only as a reference"
    )


def require_allow_identifiable(lens: str | Path, allowed: bool, camera=None) -> None:
    """Refuse a lens whose outputs would be identifiable unless the user said so explicitly."""
    if is_identifiable(lens, camera) and not allowed:
        raise OutputError(
            f"the lens {lens} keeps faces recognisable, so its 'anonymised' outputs would not be; "
            "pass --allow-identifiable to run it anyway (e.g. as a reference)"
        )
