"""What the attacker gets: captures through the camera with sensor noise, saved as 8-bit files.

Noise model (until the physical sensor model of :mod:`privlens.optics` lands): additive white
Gaussian read noise of ``read_noise`` (image units, [0, 1] = full scale) on the sensor response,
clipped to [0, 1], then rounded to 8 bits. The default, 0.01 (about 2.5 grey levels), is a
modest indoor-scene level; noise is what makes deconvolution fail, so privacy figures must state
it. Noise is drawn from a seeded generator: tables are reproducible.
"""

from __future__ import annotations

import torch

from privlens.optics.camera import Camera

DEFAULT_READ_NOISE = 0.01
"""Read noise of every privacy evaluation unless told otherwise (image units)."""


def quantise_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit file."""
    return torch.round(images.clamp(0, 1) * 255) / 255


def noisy_readout(
    response: torch.Tensor,
    read_noise: float,
    quantise: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sensor response ``[B, C, H, W]`` -> what is stored: ``+ N(0, read_noise^2)``, clip, 8 bits."""
    if read_noise < 0:
        raise ValueError(f"read noise must be >= 0, got {read_noise}")
    out = response
    if read_noise > 0:
        noise = torch.randn(response.shape, generator=generator, dtype=response.dtype)
        out = (response + read_noise * noise.to(response.device)).clamp(0, 1)
    return quantise_8bit(out) if quantise else out


@torch.no_grad()
def sensor_captures(
    camera: Camera,
    images: torch.Tensor,
    read_noise: float = DEFAULT_READ_NOISE,
    quantise: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    psf: torch.Tensor | None = None,
) -> torch.Tensor:
    """Captures of ``images`` through ``camera`` (eval mode, its own noise off) with this module's
    noise model; ``seed`` fixes the noise draw."""
    camera = camera.eval()
    psf = camera.psf() if psf is None else psf
    generator = torch.Generator().manual_seed(seed)
    chunks = [camera.image(chunk, psf) for chunk in images.split(batch_size)]
    return noisy_readout(torch.cat(chunks), read_noise, quantise, generator)
