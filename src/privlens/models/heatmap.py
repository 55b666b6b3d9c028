"""The heatmap-network file (``heatmap_net.safetensors``): U's weights for inference.

Layout (safetensors, never pickle, written atomically):

* tensors: the state dict of :class:`privlens.nets.HeatmapNet`;
* metadata ``format = "privlens-heatmap-net"``, ``version = "1"``, ``arch`` (JSON constructor
  arguments), ``provenance`` (JSON), and, in files written since the shipped models exist,
  ``image_size`` (the side in pixels U was trained at) and ``mean_shape`` (JSON ``[68, 2]``:
  the mean of the training faces' landmarks, (x, y) pixels at ``image_size``: the trivial
  baseline U has to beat). Older files have neither; they read as ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from privlens.files import atomic_save_safetensors
from privlens.models.errors import ModelFileError
from privlens.nets import HeatmapNet

NET_FORMAT = "privlens-heatmap-net"
VERSION = "1"


@dataclass
class HeatmapModel:
    """U ready for inference (eval mode) with what its file says about it.

    ``image_size``: the side (pixels) U was trained at, ``None`` for files that do not say;
    ``mean_shape``: ``[68, 2]`` training-set mean landmarks in pixels at ``image_size``, or ``None``.
    """

    net: HeatmapNet
    image_size: int | None = None
    mean_shape: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def save_heatmap_net(
    net: HeatmapNet,
    path: str | Path,
    provenance: dict[str, Any] | None = None,
    image_size: int | None = None,
    mean_shape: np.ndarray | torch.Tensor | None = None,
) -> Path:
    """Write U's weights and architecture (and, when given, its training size and mean shape)."""
    metadata = {
        "format": NET_FORMAT,
        "version": VERSION,
        "arch": json.dumps(net.arch),
        "provenance": json.dumps(provenance or {}),
    }
    if image_size is not None:
        metadata["image_size"] = str(int(image_size))
    if mean_shape is not None:
        shape = np.asarray(torch.as_tensor(mean_shape).detach().cpu(), dtype=np.float64)
        if shape.shape != (68, 2):
            raise ValueError(f"mean_shape must be [68, 2], got {shape.shape}")
        metadata["mean_shape"] = json.dumps(np.round(shape, 4).tolist())
    return atomic_save_safetensors(dict(net.state_dict()), path, metadata)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise ModelFileError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable safetensors file ({error})") from error
    return tensors, metadata


def read_heatmap_net(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, int], dict[str, Any]]:
    """State dict, architecture and provenance of a heatmap-network weight file."""
    state, arch, provenance, _ = _read_all(Path(path))
    return state, arch, provenance


def _read_all(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, int], dict[str, Any], dict[str, str]]:
    tensors, metadata = _read(path)
    if metadata.get("format") != NET_FORMAT:
        raise ModelFileError(
            f"{path} is not a privlens heatmap-network file (format={metadata.get('format')!r})"
        )
    try:
        arch = json.loads(metadata["arch"])
        provenance = json.loads(metadata.get("provenance", "{}"))
    except (KeyError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt metadata ({error})") from error
    return tensors, arch, provenance, metadata


def load_heatmap_net(path: str | Path, expect: dict[str, int] | None = None) -> HeatmapNet:
    """A :class:`HeatmapNet` built from a weight file; ``expect`` (an ``arch`` dict) must match."""
    return load_heatmap_model(path, expect).net.train()


def load_heatmap_model(path: str | Path, expect: dict[str, int] | None = None) -> HeatmapModel:
    """U from a weight file in eval mode, with its training size and mean shape when recorded."""
    path = Path(path)
    state, arch, provenance, metadata = _read_all(path)
    if expect is not None and arch != expect:
        diff = {k: (arch.get(k), v) for k, v in expect.items() if arch.get(k) != v}
        raise ModelFileError(f"{path}: network architecture differs from the config (file, config): {diff}")
    try:
        net = HeatmapNet(**arch)
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: weights do not fit the architecture ({error})") from error
    try:
        size = int(metadata["image_size"]) if "image_size" in metadata else None
        mean = np.array(json.loads(metadata["mean_shape"])) if "mean_shape" in metadata else None
    except (ValueError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: corrupt image_size or mean_shape ({error})") from error
    if mean is not None and mean.shape != (68, 2):
        raise ModelFileError(f"{path}: mean_shape must be [68, 2], got {mean.shape}")
    return HeatmapModel(net.eval(), size, mean, provenance)
