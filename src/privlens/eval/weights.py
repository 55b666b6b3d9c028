"""Weights for metrics that need networks not shipped with any package (FaceNet, Inception, LPIPS
backbones): a local file (an option or an environment variable) or the library's own download.

Local files are read without unpickling: a ``.safetensors`` file, or a plain PyTorch state dict
read with ``torch.load(..., weights_only=True)``. When neither a local file nor the download works,
the metric raises :class:`MetricUnavailableError` with a message saying how to provide the weights; it
is reported as unavailable, never replaced by a number from other weights.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

# metric name -> environment variable naming a local weights file
WEIGHT_ENV_VARS = {
    "facenet-vggface2": "PRIVLENS_FACENET_VGGFACE2",
    "facenet-casia": "PRIVLENS_FACENET_CASIA",
    "FID": "PRIVLENS_FID_INCEPTION",
    "LPIPS": "PRIVLENS_LPIPS_BACKBONE",
}
# metric name -> command-line option of `privlens eval pairs`
WEIGHT_OPTIONS = {
    "facenet-vggface2": "--facenet-vggface2-weights",
    "facenet-casia": "--facenet-casia-weights",
    "FID": "--inception-weights",
    "LPIPS": "--lpips-weights",
}


# What a failed download or a broken cache file raises (URLError is an OSError; a truncated cache
# file fails to unpickle under weights_only=True).
DOWNLOAD_ERRORS = (OSError, RuntimeError, EOFError, pickle.UnpicklingError)


class MetricUnavailableError(RuntimeError):
    """A metric cannot be computed here (typically: weights absent and the download failed)."""

    def __init__(self, metric: str, reason: str) -> None:
        super().__init__(f"{metric} unavailable: {reason}")
        self.metric, self.reason = metric, reason


class WeightsFileError(ValueError):
    """A weights file given by the user is missing or unreadable (a user mistake, not offline)."""


def local_weights(metric: str, path: str | Path | None = None) -> Path | None:
    """The local weights file for ``metric``: ``path`` if given, else its environment variable."""
    env_var = WEIGHT_ENV_VARS[metric]
    source = f"{WEIGHT_OPTIONS[metric]}"
    if path is None and os.environ.get(env_var):
        path, source = os.environ[env_var], f"${env_var}"
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsFileError(f"{metric} weights file not found: {path} (from {source})")
    return path


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a plain ``torch.save`` file (never unpickled)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to parse is the file's fault
        raise WeightsFileError(
            f"{path}: not a readable state dict ({type(error).__name__}: {error}); "
            "give a .safetensors file or a plain PyTorch state dict"
        ) from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"{path}: expected a mapping of parameter names to tensors")
    return state


def download_failed(metric: str, url: str, error: BaseException) -> MetricUnavailableError:
    """The documented offline message: what failed and how to give a local file instead."""
    return MetricUnavailableError(
        metric,
        f"no local weights, and the library's cache or download of {url} failed "
        f"({type(error).__name__}: {error}); "
        f"give a local file with {WEIGHT_OPTIONS[metric]} or ${WEIGHT_ENV_VARS[metric]}",
    )
