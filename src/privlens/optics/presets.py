"""Named lenses: ``open``, ``defocus``, ``lowres``, ``prototype``, or a lens file.

All presets share the paper camera (:class:`CameraConfig` defaults) and differ in the phase mask
or the sensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from privlens.optics.camera import Camera
from privlens.optics.config import CameraConfig

LENS_PRESETS = ("open", "defocus", "lowres", "prototype")

PROTOTYPE_AMPLITUDES: dict[int, float] = {
    4: -0.83,
    6: -0.31,
    7: 0.08,
    8: -0.69,
    12: -0.67,
    14: 0.18,
}
"""Noll coefficients the authors loaded on their 15-term deformable mirror (Lopez et al. 2024).

Their unit is not published; they look like normalised device amplitudes. privlens multiplies
them by ``prototype_scale_um`` to obtain micrometres of RMS wavefront. beta_1 and beta_2 were not
published and are taken as 0.
"""

DEFAULT_PROTOTYPE_SCALE_UM = 0.5
"""um of RMS wavefront per published unit. At 0.5 um the astronaut's face (about 70 px wide in a
256 px image) is no longer recognisable while the head and shoulders remain visible; 1.0 blurs
the whole figure into a smear."""

DEFAULT_DEFOCUS_UM = 0.5
"""Noll-4 coefficient of the ``defocus`` preset: 0.5 um RMS (1.73 um peak-to-valley), a blur
disc of about 48 px diameter on the paper camera."""

LOWRES_SIZE = 16
"""The paper's low-resolution camera: 16 x 16 large pixels."""


def prototype_coefficients(num_terms: int = 15, scale_um: float = DEFAULT_PROTOTYPE_SCALE_UM):
    """The prototype mask as Noll coefficients in um (``num_terms >= 14``)."""
    if num_terms < max(PROTOTYPE_AMPLITUDES):
        raise ValueError(f"the prototype lens needs at least 14 Zernike terms, got {num_terms}")
    coeffs = torch.zeros(num_terms)
    for j, amplitude in PROTOTYPE_AMPLITUDES.items():
        coeffs[j - 1] = amplitude * scale_um
    return coeffs


def defocus_coefficients(num_terms: int = 15, defocus_um: float = DEFAULT_DEFOCUS_UM):
    """Only Noll 4 (defocus) set, in um."""
    if num_terms < 4:
        raise ValueError(f"a defocus lens needs at least 4 Zernike terms, got {num_terms}")
    coeffs = torch.zeros(num_terms)
    coeffs[3] = defocus_um
    return coeffs


def make_camera(
    lens: str | Path = "open",
    image_size: int = 256,
    *,
    defocus_um: float = DEFAULT_DEFOCUS_UM,
    prototype_scale_um: float = DEFAULT_PROTOTYPE_SCALE_UM,
    **settings: Any,
) -> Camera:
    """A camera for a preset name, a lens file or a run folder holding ``lens.safetensors``.

    ``settings`` override :class:`CameraConfig` fields (e.g. ``convolution="circular"``,
    ``noise_sigma=0.01``). A lens file keeps its own physical settings; only ``image_size`` and
    the sensor/runtime settings given here change.
    """
    if isinstance(lens, str) and lens in LENS_PRESETS:
        config = CameraConfig(image_size=image_size, **settings)
        if lens == "open":
            coeffs = torch.zeros(config.num_terms)
        elif lens == "defocus":
            coeffs = defocus_coefficients(config.num_terms, defocus_um)
        elif lens == "prototype":
            coeffs = prototype_coefficients(config.num_terms, prototype_scale_um)
        else:  # lowres: open optics, large-pixel sensor
            config = config.replace(lowres_size=settings.get("lowres_size") or LOWRES_SIZE)
            coeffs = torch.zeros(config.num_terms)
        return Camera(config, coeffs)
    path = Path(lens)
    if path.is_dir() and (path / "lens.safetensors").is_file():  # a Stage I/II run folder
        path = path / "lens.safetensors"
    if not path.suffix and not path.exists():
        raise ValueError(
            f"unknown lens {str(lens)!r}: use one of {', '.join(LENS_PRESETS)} or a lens file path"
        )
    from privlens.optics.lensfile import load_lens

    return load_lens(path, image_size=image_size, **settings)
