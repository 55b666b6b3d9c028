"""Which lens, heatmap network and generator a job uses, and loading them with clear errors.

Run folders:

* Stage I (``privlens train optics``): ``lens.safetensors`` + ``heatmap_net.safetensors``. No
  generator: the ``warp`` backend must be asked for.
* Stage II (``privlens train gan``): the same two files (copies of the Stage I ones it was
  trained with) plus ``generator.safetensors`` (a generator bundle: G, S, F, domains).

Explicit ``lens`` / ``heatmap`` / ``generator`` arguments override the files of a run folder.
Without a run folder or files, the default models shipped with privlens
(:mod:`privlens.models`: lens and U) are used, with the warp backend; ``generator="shipped"``
uses the shipped Stage II generator behind them (the lens and U it was trained with).

Sizes: the lens file, U and the generator each record the image side they were trained at;
models of different sizes are refused with every size named (:func:`model_sizes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from privlens.anonymize.pipeline import AnonymizeError
from privlens.nets import HeatmapNet
from privlens.optics.camera import Camera

LENS_FILE = "lens.safetensors"
HEATMAP_FILE = "heatmap_net.safetensors"
GENERATOR_FILE = "generator.safetensors"
WARP = "warp"
SHIPPED = "shipped"
DEFAULT_SIZE = 256


@dataclass(frozen=True)
class ModelPaths:
    """``lens``: a lens file or a preset name; ``generator``: a bundle file, or ``None`` for warp."""

    lens: str
    heatmap: Path
    generator: Path | None

    @property
    def backend(self) -> str:
        return WARP if self.generator is None else "gan"


def resolve_models(
    run: str | Path | None, lens: str | None, heatmap: str | Path | None, generator: str | None
) -> ModelPaths:
    """Combine ``--run`` with explicit files; raise :class:`AnonymizeError` naming what is missing."""
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise AnonymizeError(f"--run must be a run folder, got {run}")
        if lens is None:
            if not (run / LENS_FILE).is_file():
                raise AnonymizeError(
                    f"{run} has no {LENS_FILE} (a heatmap pretraining run has none); give --lens"
                )
            lens = str(run / LENS_FILE)
        if heatmap is None:
            if not (run / HEATMAP_FILE).is_file():
                raise AnonymizeError(f"{run} has no {HEATMAP_FILE}; is it a privlens run folder?")
            heatmap = run / HEATMAP_FILE
        if generator is None:
            if not (run / GENERATOR_FILE).is_file():
                raise AnonymizeError(
                    f"{run} is a Stage I run (no {GENERATOR_FILE}): add --generator warp for the "
                    "training-free backend, or use a Stage II run folder"
                )
            generator = str(run / GENERATOR_FILE)
    if run is None and lens is None and heatmap is None and generator in (None, WARP, SHIPPED):
        return shipped_models(with_generator=generator == SHIPPED)
    if generator == SHIPPED:
        raise AnonymizeError(
            "--generator shipped works only behind the shipped lens and U it was trained with: "
            "leave out --run, --lens and --heatmap"
        )
    missing = [
        name
        for name, value in (("--lens", lens), ("--heatmap", heatmap), ("--generator", generator))
        if value is None
    ]
    if missing:
        raise AnonymizeError(f"give --run DIR, or {', '.join(missing)} (--generator FILE or warp)")
    if generator != WARP and not Path(generator).is_file():
        raise AnonymizeError(f"generator file not found: {generator} (or use --generator warp)")
    return ModelPaths(str(lens), Path(heatmap), None if generator == WARP else Path(generator))


def shipped_models(with_generator: bool = False) -> ModelPaths:
    """The shipped default lens and U (:mod:`privlens.models`) with the warp backend, or the
    shipped generator (``with_generator``) behind the shipped lens and U its provenance names by
    hash (a generator only works behind the camera and U it was trained with)."""
    from privlens.models import ModelFileError, shipped_path, shipped_provenance

    try:
        if not with_generator:
            return ModelPaths(str(shipped_path("lens")), shipped_path("heatmap"), None)
        generator = shipped_path("generator")
        record = shipped_provenance("generator")
        behind = {
            kind: _shipped_with_hash(kind, (record.get(kind) or {}).get("sha256"))
            for kind in ("lens", "heatmap")
        }
    except (ModelFileError, ValueError) as error:
        raise AnonymizeError(f"no models given (--run, or --lens and --heatmap) and {error}") from error
    return ModelPaths(str(behind["lens"]), behind["heatmap"], generator)


def _shipped_with_hash(kind: str, digest: str | None) -> Path:
    """The shipped model of ``kind`` whose file has SHA-256 ``digest`` (hash checked)."""
    from privlens.models import SHIPPED, shipped_path, shipped_provenance

    for model in SHIPPED.values():
        if (
            model.kind == kind
            and model.available()
            and shipped_provenance(model.name).get("sha256") == digest
        ):
            return shipped_path(model.name)
    raise AnonymizeError(
        f"the shipped generator was trained behind a {kind} ({digest}) that is not among the shipped "
        "models; retrain it (python -m privlens.train.stage2_shipped)"
    )


def heatmap_size(path: Path) -> int | None:
    """The image side U's file says it was trained at (``None`` for older files)."""
    from privlens.models.heatmap import load_heatmap_model

    try:
        return load_heatmap_model(path).image_size
    except ValueError as error:
        raise AnonymizeError(str(error)) from error


def model_sizes(models: ModelPaths, generator_size: int | None = None) -> int | None:
    """The one image size of ``models`` (``None`` if none of them says); :class:`AnonymizeError`
    naming each model and its size when they differ (e.g. a 64 px U with a 256 px generator)."""
    from privlens.models import ModelSizeError, check_same_size

    try:
        return check_same_size(
            lens=lens_size(models.lens), heatmap=heatmap_size(models.heatmap), generator=generator_size
        )
    except ModelSizeError as error:
        raise AnonymizeError(str(error)) from error


def load_generator(path: Path, device: torch.device | str = "cpu") -> Any:
    """The Stage II generator bundle at ``path`` (see :func:`privlens.train.load_generator_bundle`)."""
    try:
        from privlens.train import load_generator_bundle
    except ImportError as error:
        raise AnonymizeError(
            "the GAN backend is not available in this version of privlens (no Stage II generator "
            "loader, privlens.train.load_generator_bundle); use --generator warp"
        ) from error
    try:
        return load_generator_bundle(path, device=str(device))
    except ValueError as error:  # the loader's errors for foreign or corrupt files
        raise AnonymizeError(str(error)) from error


def load_heatmap(path: Path) -> HeatmapNet:
    """U from a heatmap-network weight file (another file kind gives a clear error)."""
    from privlens.models.heatmap import load_heatmap_net

    try:
        return load_heatmap_net(path)
    except ValueError as error:
        raise AnonymizeError(str(error)) from error


def lens_size(lens: str) -> int | None:
    """The image size a lens file was saved for (``None`` for a preset name)."""
    from privlens.optics.lensfile import read_lens
    from privlens.optics.presets import LENS_PRESETS

    if lens in LENS_PRESETS:
        return None
    try:
        _, config, _ = read_lens(lens)
    except ValueError as error:
        raise AnonymizeError(str(error)) from error
    return config.image_size


def load_camera(lens: str, size: int) -> Camera:
    """A camera for a lens file or preset name at ``size`` x ``size``."""
    from privlens.optics.presets import make_camera

    try:
        return make_camera(lens, size)
    except ValueError as error:
        raise AnonymizeError(str(error)) from error
