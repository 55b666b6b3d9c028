"""LPIPS with the ``lpips`` package (v0.1 linear heads, which ship inside the package).

The AlexNet/VGG backbone is torchvision's ImageNet model: a local file (``--lpips-weights`` or
``$PRIVLENS_LPIPS_BACKBONE``: torchvision's ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``
state dict, or the same as ``.safetensors``), else torchvision's cache/download; otherwise
:class:`MetricUnavailableError`. Never computed with a randomly initialised backbone.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from privlens.eval.weights import (
    DOWNLOAD_ERRORS,
    MetricUnavailableError,
    WeightsFileError,
    download_failed,
    load_state_dict,
    local_weights,
)

BACKBONE_URLS = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def load_lpips(net: str = "alex", backbone_weights: str | Path | None = None) -> torch.nn.Module:
    """An ``lpips.LPIPS`` model with ImageNet backbone weights, eval mode, CPU."""
    if net not in BACKBONE_URLS:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONE_URLS)}, got {net!r}")
    try:
        import lpips
    except ImportError as error:
        raise MetricUnavailableError("LPIPS", f"the lpips package is not installed ({error})") from error
    path = local_weights("LPIPS", backbone_weights)
    if path is None:
        try:
            with warnings.catch_warnings():  # lpips uses torchvision's deprecated `pretrained=`
                warnings.simplefilter("ignore", UserWarning)
                return lpips.LPIPS(net=net, verbose=False).eval()
        except DOWNLOAD_ERRORS as error:
            raise download_failed("LPIPS", BACKBONE_URLS[net], error) from error
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    reference = (torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16)(weights=None)
    try:
        reference.load_state_dict(load_state_dict(path))
    except RuntimeError as error:
        raise WeightsFileError(f"{path}: not torchvision {net} weights ({error})") from error
    # lpips splits the backbone's `features` into slices whose children keep their indices
    for name, child in model.net.named_modules():
        if name.count(".") == 1 and name.startswith("slice"):
            child.load_state_dict(reference.features[int(name.split(".")[1])].state_dict())
    return model.eval()


def lpips_distance(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS per image pair for ``[B, 3, H, W]`` (or ``[3, H, W]``) images in [0, 1]; ``b`` is
    resized to ``a``'s size when they differ."""
    single = a.dim() == 3
    a, b = (a[None], b[None]) if single else (a, b)
    if b.shape[-2:] != a.shape[-2:]:
        b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", antialias=True)
    with torch.no_grad():
        value = model(a.float(), b.float(), normalize=True).flatten()
    return value[0] if single else value
