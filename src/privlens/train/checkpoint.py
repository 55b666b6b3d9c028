"""Checkpoints and network weight files: safetensors only (never pickle), written atomically.

Training checkpoint (``checkpoint.safetensors``), one file so that it is replaced in one rename:

* tensors ``model/<module>/<state-dict key>`` for every module (parameters and buffers);
* tensors ``optim/<optimizer>/<param index>/<state key>`` for the optimiser state (Adam moments
  and step counts);
* metadata ``format = "privlens-checkpoint"``, ``version``, ``optim`` (JSON: the optimisers'
  param groups and any non-tensor state) and ``meta`` (JSON: step, config, anything else).

The heatmap-network weight file (``heatmap_net.safetensors``) is defined in
:mod:`privlens.models.heatmap`; its functions are re-exported here for older imports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from privlens.files import atomic_save_safetensors
from privlens.models.errors import ModelFileError

# U's weight file moved to privlens.models.heatmap (inference loading lives there); these names
# stay importable from here.
from privlens.models.heatmap import (  # noqa: F401
    NET_FORMAT,
    load_heatmap_net,
    read_heatmap_net,
    save_heatmap_net,
)

CHECKPOINT_FORMAT = "privlens-checkpoint"
VERSION = "1"


# A checkpoint or weight file is missing, corrupt, or does not fit the model. One class with the
# model files' error, so code catching either catches both.
CheckpointError = ModelFileError


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from error
    return tensors, metadata


def save_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any],
) -> Path:
    """Write modules, optimisers and ``meta`` (JSON-serialisable) to one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"model/{name}/{key}"] = value.detach().clone()
    optim_json: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entry in state["state"].items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{name}/{index}/{key}"] = value.detach().clone()
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optim_json[name] = {"param_groups": state["param_groups"], "scalars": scalars}
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "version": VERSION,
        "optim": json.dumps(optim_json),
        "meta": json.dumps(meta),
    }
    return atomic_save_safetensors(tensors, path, metadata)


def load_checkpoint(
    path: str | Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> dict[str, Any]:
    """Restore modules and optimisers in place from :func:`save_checkpoint`; return ``meta``."""
    path = Path(path)
    tensors, metadata = _read(path)
    if metadata.get("format") != CHECKPOINT_FORMAT or metadata.get("version") != VERSION:
        raise CheckpointError(f"{path} is not a privlens training checkpoint (version {VERSION})")
    try:
        optim_json = json.loads(metadata["optim"])
        meta = json.loads(metadata["meta"])
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({error})") from error
    for name, module in modules.items():
        prefix = f"model/{name}/"
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"{path}: {name} does not fit this model ({error})") from error
    for name, optimizer in optimizers.items():
        if name not in optim_json:
            raise CheckpointError(f"{path}: no state for optimiser {name}")
        entry = optim_json[name]
        prefix = f"optim/{name}/"
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix) :].split("/", 1)
                state.setdefault(int(index), {})[field] = value
        for index, fields in entry["scalars"].items():
            state.setdefault(int(index), {}).update(fields)
        groups = entry["param_groups"]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"{path}: optimiser {name} does not fit ({error})") from error
    return meta
