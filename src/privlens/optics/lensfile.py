"""Lens files: a safetensors file holding the Zernike coefficients, with the camera settings as JSON.

Layout (``*.safetensors``, never pickled):

* tensor ``coeffs_um``: ``[num_terms]`` float32, Noll coefficients in um of RMS wavefront;
* metadata ``format = "privlens-lens"``, ``version = "1"``, ``camera`` = JSON of
  :class:`CameraConfig`, ``provenance`` = free JSON (what produced the lens).

Files are written atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from privlens.files import atomic_save_safetensors
from privlens.optics.camera import Camera
from privlens.optics.config import CameraConfig

LENS_FORMAT = "privlens-lens"
LENS_VERSION = "1"

# Settings that define the optics; a lens only fits a camera that agrees on all of them.
PHYSICAL_SETTINGS = (
    "grid_size",
    "wavelengths_m",
    "aperture_radius_m",
    "lens_window_m",
    "sensor_distance_m",
    "focus_distance_m",
    "pitch_m",
    "num_terms",
)


class LensFileError(ValueError):
    """A lens file is missing, corrupt, of another format, or does not fit the camera."""


def save_lens(camera: Camera, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``camera``'s coefficients and settings to a lens file."""
    metadata = {
        "format": LENS_FORMAT,
        "version": LENS_VERSION,
        "camera": json.dumps(camera.config.to_dict()),
        "provenance": json.dumps(provenance or {}),
    }
    tensors = {"coeffs_um": camera.coeffs_um.detach().float()}
    return atomic_save_safetensors(tensors, path, metadata)


def read_lens(path: str | Path) -> tuple[torch.Tensor, CameraConfig, dict[str, Any]]:
    """Coefficients (um), camera settings and provenance of a lens file; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise LensFileError(f"lens file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise LensFileError(f"{path} is not a readable safetensors lens file ({error})") from error
    if metadata.get("format") != LENS_FORMAT:
        raise LensFileError(
            f"{path} is a safetensors file but not a privlens lens (format="
            f"{metadata.get('format')!r}); is it a network checkpoint?"
        )
    if metadata.get("version") != LENS_VERSION:
        raise LensFileError(f"{path}: unsupported lens file version {metadata.get('version')!r}")
    try:
        config = CameraConfig.from_dict(json.loads(metadata["camera"]))
        provenance = json.loads(metadata.get("provenance", "{}"))
    except (KeyError, json.JSONDecodeError, ValueError, TypeError) as error:
        raise LensFileError(f"{path}: corrupt camera settings ({error})") from error
    coeffs = tensors.get("coeffs_um")
    if coeffs is None or coeffs.shape != (config.num_terms,):
        raise LensFileError(
            f"{path}: expected a coeffs_um tensor of {config.num_terms} terms, got "
            f"{None if coeffs is None else tuple(coeffs.shape)}"
        )
    if not torch.isfinite(coeffs).all():
        raise LensFileError(f"{path}: coefficients contain NaN or infinite values")
    return coeffs, config, provenance


def check_compatible(lens: CameraConfig, camera: CameraConfig, source: str = "lens file") -> None:
    """Raise :class:`LensFileError` listing every physical setting on which the two disagree."""
    differences = [
        f"{name}: {source} has {getattr(lens, name)!r}, camera has {getattr(camera, name)!r}"
        for name in PHYSICAL_SETTINGS
        if getattr(lens, name) != getattr(camera, name)
    ]
    if differences:
        raise LensFileError(f"the {source} was made for a different camera; " + "; ".join(differences))


def load_lens(path: str | Path, image_size: int | None = None, **settings: Any) -> Camera:
    """A camera built from a lens file, optionally for another image size or sensor settings.

    Only non-physical settings (``image_size``, ``convolution``, noise, gain, clip, lowres_size,
    frozen_terms, object distance) may be overridden; the optics stay as saved.
    """
    coeffs, config, _ = read_lens(path)
    forbidden = sorted(set(settings) & set(PHYSICAL_SETTINGS))
    if forbidden:
        raise LensFileError(
            f"cannot change the physical setting(s) {', '.join(forbidden)} of lens file {path}"
        )
    if image_size is not None:
        settings["image_size"] = image_size
    return Camera(config.replace(**settings), coeffs)


def load_lens_into(camera: Camera, path: str | Path) -> None:
    """Copy a lens file's coefficients into an existing camera after checking they fit it."""
    coeffs, config, _ = read_lens(path)
    check_compatible(config, camera.config)
    with torch.no_grad():
        camera.coeffs_um.copy_(coeffs.to(camera.coeffs_um))
