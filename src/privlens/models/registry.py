"""The default models shipped inside the package, and loading any model file for inference.

Shipped models live in ``privlens/models/weights/`` as ``<file>.safetensors`` with a provenance
``<file>.json`` beside it (see :mod:`privlens.models.provenance`). Each entry of :data:`SHIPPED`
names one; :func:`load_shipped` verifies the file's SHA-256 against its provenance, then loads it.

Kinds and what loading returns (every loaded model exposes its training size through
:func:`image_size_of`):

* ``heatmap``: :class:`privlens.models.heatmap.HeatmapModel` (U, its size and mean shape);
* ``lens``: :class:`privlens.optics.camera.Camera` built from the lens file;
* ``generator``: the Stage II bundle (:class:`privlens.train.stage2_bundle.GeneratorBundle`).

Other kinds can be added with :func:`register_loader`, other shipped models with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from privlens.models.errors import ModelFileError, ModelSizeError
from privlens.models.heatmap import load_heatmap_model
from privlens.models.provenance import provenance_path, read_provenance, verify_file

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ShippedModel:
    """One default model: ``name`` (how users ask for it), ``kind`` (which loader), ``file``
    (under ``weights/``), a one-line ``description``."""

    name: str
    kind: str
    file: str
    description: str = ""

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file

    @property
    def provenance_path(self) -> Path:
        return provenance_path(self.path)

    def available(self) -> bool:
        """Whether this installation holds the file and its provenance."""
        return self.path.is_file() and self.provenance_path.is_file()


SHIPPED: dict[str, ShippedModel] = {}


def register(model: ShippedModel) -> ShippedModel:
    """Add (or replace) a shipped model entry."""
    SHIPPED[model.name] = model
    return model


register(ShippedModel("heatmap", "heatmap", "heatmap_64.safetensors", "U trained with the lens, 64 px"))
register(ShippedModel("heatmap-clean", "heatmap", "heatmap_clean_64.safetensors", "U on clean faces, 64 px"))
register(ShippedModel("lens", "lens", "lens_64.safetensors", "Stage I learned lens (Eqs. 4-6), 64 px"))
register(ShippedModel("lens-robust", "lens", "lens_robust_64.safetensors", "Stage I robust lens, 64 px"))
register(ShippedModel("heatmap-robust", "heatmap", "heatmap_robust_64.safetensors", "U through lens-robust"))
register(
    ShippedModel("lens-stop", "lens", "lens_stop_64.safetensors", "open phase, 0.07 mm stop (f/357), 64 px")
)
register(ShippedModel("heatmap-stop", "heatmap", "heatmap_stop_64.safetensors", "U through lens-stop"))
register(
    ShippedModel(
        "lens-stop-video",
        "lens",
        "lens_stop_video_64.safetensors",
        "lens-stop at the paper camera's exposure time (4.9 e- at full scale), 64 px",
    )
)
register(
    ShippedModel(
        "heatmap-stop-video", "heatmap", "heatmap_stop_video_64.safetensors", "U through lens-stop-video"
    )
)
register(
    ShippedModel(
        "generator", "generator", "generator_64.safetensors", "Stage II generator (G, S, F; EMA + raw), 64 px"
    )
)


def _load_lens(path: Path, device: torch.device | str) -> Any:
    from privlens.optics.lensfile import load_lens

    return load_lens(path).to(device)


def _load_heatmap(path: Path, device: torch.device | str) -> Any:
    model = load_heatmap_model(path)
    model.net.to(device)
    return model


def _load_generator(path: Path, device: torch.device | str) -> Any:
    from privlens.train.stage2_bundle import load_generator_bundle

    return load_generator_bundle(path, device=str(device))


LOADERS: dict[str, Callable[[Path, torch.device | str], Any]] = {
    "heatmap": _load_heatmap,
    "lens": _load_lens,
    "generator": _load_generator,
}


def register_loader(kind: str, loader: Callable[[Path, torch.device | str], Any]) -> None:
    """Teach :func:`load_model` a new kind: ``loader(path, device) -> model``."""
    LOADERS[kind] = loader


def shipped(name: str) -> ShippedModel:
    """The shipped model called ``name``; :class:`ModelFileError` naming the known ones otherwise."""
    if name not in SHIPPED:
        raise ModelFileError(f"no shipped model {name!r}; known: {', '.join(sorted(SHIPPED))}")
    return SHIPPED[name]


def shipped_path(name: str, verify: bool = True) -> Path:
    """Path of a shipped model's file, its hash checked against its provenance (``verify``)."""
    model = shipped(name)
    if not model.available():
        raise ModelFileError(
            f"the shipped model {name!r} ({model.file}) is not in this installation "
            f"({WEIGHTS_DIR}); train it with `make models` or give a file"
        )
    if verify:
        verify_file(model.path)
    return model.path


def shipped_provenance(name: str) -> dict[str, Any]:
    """The provenance record of a shipped model."""
    return read_provenance(shipped(name).path)


def load_model(path: str | Path, kind: str, device: torch.device | str = "cpu") -> Any:
    """Load a model file of ``kind`` for inference (no hash check: any user file)."""
    if kind not in LOADERS:
        raise ModelFileError(f"unknown model kind {kind!r}; known: {', '.join(sorted(LOADERS))}")
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{kind} model file not found: {path}")
    return LOADERS[kind](path, device)


def load_shipped(name: str, device: torch.device | str = "cpu") -> Any:
    """Verify and load a shipped model (see the module docstring for what each kind returns)."""
    return load_model(shipped_path(name), shipped(name).kind, device)


def image_size_of(model: Any) -> int | None:
    """The image side (pixels) a loaded model was trained at, or ``None`` if it does not say."""
    size = getattr(model, "image_size", None)
    if size is None and hasattr(model, "config"):
        size = getattr(model.config, "image_size", None)
    return None if size is None else int(size)


def check_same_size(**sizes: int | None) -> int | None:
    """The one image size shared by models given as ``name=size`` (``None`` = unknown, ignored);
    :class:`ModelSizeError` naming every model and its size when they differ."""
    known = {name: int(size) for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        listing = ", ".join(f"{name} at {size} px" for name, size in known.items())
        raise ModelSizeError(
            f"these models were trained at different image sizes: {listing}; use models of one size"
        )
    return next(iter(known.values()), None)
