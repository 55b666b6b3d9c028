"""FID with pytorch-fid's Inception network (the TensorFlow FID weights ported to PyTorch).

Weights: a local file (``--inception-weights`` or ``$PRIVLENS_FID_INCEPTION``: pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth``, or the same state dict as ``.safetensors``), else
pytorch-fid's own cache/download; otherwise :class:`MetricUnavailableError`. Images are resized to
299 x 299 (bilinear) and fed in [0, 1]; features are the 2048-d pool features.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from privlens.eval.frechet import fd_between
from privlens.eval.weights import (
    DOWNLOAD_ERRORS,
    MetricUnavailableError,
    WeightsFileError,
    download_failed,
    load_state_dict,
    local_weights,
)

INCEPTION_PX = 299


@contextlib.contextmanager
def _local_state_dict(module, state: dict[str, torch.Tensor]):
    """Make pytorch-fid's loader return ``state`` instead of downloading (restored afterwards)."""
    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        yield
    finally:
        module.load_state_dict_from_url = original


def load_inception(weights: str | Path | None = None) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` (pool features), eval mode, CPU."""
    try:
        from pytorch_fid import inception
    except ImportError as error:
        raise MetricUnavailableError("FID", f"pytorch-fid is not installed ({error})") from error
    path = local_weights("FID", weights)
    if path is not None:
        with _local_state_dict(inception, load_state_dict(path)):
            try:
                model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            except RuntimeError as error:
                raise WeightsFileError(f"{path}: not the FID Inception weights ({error})") from error
    else:
        try:
            model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        except DOWNLOAD_ERRORS as error:
            raise download_failed("FID", inception.FID_WEIGHTS_URL, error) from error
    return model.eval()


def inception_features(
    images: list[torch.Tensor], model: torch.nn.Module, batch_size: int = 16
) -> np.ndarray:
    """``[N, 2048]`` pool features of ``[3, H, W]`` images in [0, 1] (any sizes)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.stack(
                [
                    F.interpolate(im[None].float(), size=(INCEPTION_PX,) * 2, mode="bilinear")[0]
                    for im in images[start : start + batch_size]
                ]
            )
            out.append(model(batch)[0].flatten(1).numpy())
    return np.concatenate(out).astype(np.float64)


def fid(
    originals: list[torch.Tensor], generated: list[torch.Tensor], weights: str | Path | None = None
) -> float:
    """FID between two image sets (at least 2 images each)."""
    model = load_inception(weights)
    return fd_between(inception_features(originals, model), inception_features(generated, model))
