"""The sensor's noise in physical terms: photon shot noise, read noise, saturation, ADC bit depth.

A pixel's optical signal ``v`` (image units, 1 = full scale) becomes ``lambda = v * F``
photo-electrons, with ``F`` the electrons at full scale for that pixel. The pixel reads
``e = Poisson(lambda) + N(0, sigma_r^2)`` electrons; the value ``e / F`` is clipped to [0, 1]
(black level, saturation) and rounded to ``2^bits - 1`` levels. In training the Poisson draw is
replaced by its moment-matched Gaussian, ``lambda + sqrt(lambda + sigma_r^2) * eps`` with
``eps ~ N(0, 1)`` drawn independently of the signal (reparameterised: gradients flow through the
mean and the standard deviation), and rounding passes gradients straight through.

Default (an indoor scene, documented choice): ``F = 4000 e-`` per 3.713 um pixel, ``sigma_r =
2.5 e-``, 10 bits. Typical CMOS figures: full-well capacity of a few thousand electrons for
1-1.5 um phone pixels and about 10-20 thousand for 3-4 um pixels; read noise 1.5-3 e- RMS at the
gains used indoors; 10-12 bit ADCs (8 bit after JPEG). Indoors (about 300 lux) a camera keeps the
exposure short enough for moving faces (about 1/60 s) and raises the ISO, so full scale maps to a
fraction of the full well: 4000 e- is a 3-4 um pixel at roughly ISO 400-800. The result is an SNR
of about 45 (33 dB) at mid-grey and about 20 at 10 % grey; read noise matters only in the
darkest tones. Dimmer rooms mean fewer electrons: ``full_scale_e=1000`` halves the SNR.

Larger pixels collect more light: a capture pixel of side ``s`` times the sensor pitch gets
``s^2 F`` electrons at full scale (and one read noise), see :func:`electrons_at_full_scale`.
Colour channels are treated as independent pixels with the same ``F`` (no Bayer mosaic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from privlens.optics.config import CameraConfig


@dataclass(frozen=True)
class SensorNoise:
    """Noise of one capture pixel: electrons at full scale, read noise (e- RMS), ADC bits."""

    full_scale_e: float
    read_noise_e: float
    bit_depth: int

    def __post_init__(self) -> None:
        if not self.full_scale_e > 0:
            raise ValueError(f"full_scale_e must be positive, got {self.full_scale_e!r}")
        if not self.read_noise_e >= 0:
            raise ValueError(f"read_noise_e must be >= 0, got {self.read_noise_e!r}")
        if not 1 <= int(self.bit_depth) <= 24:
            raise ValueError(f"bit_depth must lie in 1..24, got {self.bit_depth!r}")


def electrons_at_full_scale(config: CameraConfig, pixel_side_px: float = 1.0) -> float:
    """Electrons at full scale of a capture pixel ``pixel_side_px`` image pixels wide.

    ``config.full_scale_e`` is given for one sensor pixel of pitch ``pitch_m``; the count scales
    with the pixel's area.
    """
    side_m = config.image_pitch_m * pixel_side_px
    return config.full_scale_e * (side_m / config.pitch_m) ** 2


def sensor_noise_for(config: CameraConfig, pixel_side_px: float = 1.0) -> SensorNoise:
    """The :class:`SensorNoise` of a capture pixel of this camera."""
    return SensorNoise(electrons_at_full_scale(config, pixel_side_px), config.read_noise_e, config.bit_depth)


def quantisation_variance(bit_depth: int) -> float:
    """Variance of the ADC's rounding error (uniform over one level), image units^2."""
    return 1.0 / (12.0 * float(2**bit_depth - 1) ** 2)


def equivalent_variance(noise: SensorNoise, mean_level: float) -> float:
    """White-noise variance (image units^2) with the power of this sensor's noise on a scene of
    mean value ``mean_level`` (image units): ``v / F`` (shot) ``+ (sigma_r / F)^2`` (read)
    ``+ 1 / (12 (2^bits - 1)^2)`` (rounding), ``F`` = electrons at full scale.

    The shot noise's variance is linear in the signal, so its mean over the pixels is that of the
    mean level; this is the noise a linear (Wiener) attacker has to model.
    """
    if not mean_level >= 0:
        raise ValueError(f"mean_level must be >= 0, got {mean_level!r}")
    scale = noise.full_scale_e
    return mean_level / scale + (noise.read_noise_e / scale) ** 2 + quantisation_variance(noise.bit_depth)


def add_sensor_noise(
    signal: torch.Tensor,
    noise: SensorNoise,
    *,
    exact: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shot and read noise on a signal in image units (not clipped).

    ``exact=True`` draws Poisson photo-electrons (not differentiable); ``exact=False`` draws the
    Gaussian with the same mean and variance, ``lambda + sigma_r^2``, differentiable in ``signal``.
    """
    scale = noise.full_scale_e
    electrons = signal.clamp_min(0.0) * scale
    if exact:
        shot = torch.poisson(electrons.detach().double(), generator=generator).to(signal.dtype)
        read = torch.randn(signal.shape, generator=generator, device=signal.device, dtype=signal.dtype)
        return (shot + noise.read_noise_e * read) / scale
    eps = torch.randn(signal.shape, generator=generator, device=signal.device, dtype=signal.dtype)
    std = torch.sqrt(electrons + max(noise.read_noise_e**2, 1e-6))
    return (electrons + std * eps) / scale


def quantise(values: torch.Tensor, bit_depth: int, straight_through: bool = True) -> torch.Tensor:
    """Clip to [0, 1] and round to ``2^bit_depth - 1`` levels.

    ``straight_through``: the rounding passes gradients unchanged (the clipping does not).
    """
    levels = float(2**bit_depth - 1)
    clipped = values.clamp(0.0, 1.0)
    rounded = torch.round(clipped * levels) / levels
    if straight_through:
        return clipped + (rounded - clipped).detach()
    return rounded


def sensor_readout(
    signal: torch.Tensor,
    noise: SensorNoise,
    *,
    add_noise: bool = True,
    quantise_output: bool = True,
    exact: bool | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """What a pixel stores: noise (optional), clipping to [0, 1], quantisation (optional).

    ``exact=None`` picks exact Poisson noise when no gradient is being recorded and the
    differentiable approximation otherwise.
    """
    if exact is None:
        exact = not (torch.is_grad_enabled() and signal.requires_grad)
    out = add_sensor_noise(signal, noise, exact=exact, generator=generator) if add_noise else signal
    if quantise_output:
        return quantise(out, noise.bit_depth, straight_through=not exact)
    return out.clamp(0.0, 1.0)
