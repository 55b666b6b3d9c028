"""privlens: hardware-level face de-identification with learned privacy-preserving optics.

The shortest way in::

    import privlens

    y = privlens.capture("photo.jpg", lens="prototype", size=256)  # [3, 256, 256] in [0, 1]
    privlens.save_image(y, "capture.png")

Everything else lives in the sub-packages (``privlens.optics``, ``privlens.faces``,
``privlens.anonymize``, ``privlens.attacks``, ``privlens.eval``, ...); the names below are loaded
lazily so that ``import privlens`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["__version__", "capture", "psf", "load_image", "save_image", "make_camera"]


def capture(
    image: str | Path | torch.Tensor,
    lens: str | Path = "prototype",
    size: int = 256,
    **settings: Any,
) -> torch.Tensor:
    """Capture an image through a simulated privacy camera.

    Args:
        image: an image file, or a float RGB tensor in [0, 1], ``[3, H, W]`` or ``[B, 3, H, W]``
            (square, ``H = W = size``).
        lens: ``open``, ``defocus``, ``lowres``, ``prototype``, a lens file or a run folder.
        size: side in pixels; a file is centre-cropped and resized to it.
        settings: :class:`privlens.optics.CameraConfig` overrides (``noise_sigma=0.01``, ...) and
            ``defocus_um`` / ``prototype_scale_um`` for the presets.

    Returns:
        The capture, float RGB in [0, 1], with the input's shape (``[3, size, size]`` for a file).
    """
    import torch

    from privlens.data.images import load_image
    from privlens.optics.presets import make_camera

    scene = load_image(image, size) if isinstance(image, (str, Path)) else image
    single = scene.dim() == 3
    camera = make_camera(lens, size, **settings).eval()
    with torch.no_grad():
        result = camera(scene[None] if single else scene).image
    return result[0] if single else result


def psf(lens: str | Path = "prototype", size: int = 256, **settings: Any) -> torch.Tensor:
    """The lens's point-spread functions ``[3, size, size]`` (R, G, B; each sums to 1)."""
    import torch

    from privlens.optics.presets import make_camera

    with torch.no_grad():
        return make_camera(lens, size, **settings).psf()


def __getattr__(name: str) -> Any:
    if name in ("load_image", "save_image"):
        from privlens.data import images

        return getattr(images, name)
    if name == "make_camera":
        from privlens.optics.presets import make_camera

        return make_camera
    raise AttributeError(f"module 'privlens' has no attribute {name!r}")
