"""What the attacker gets: captures through the camera as its physical sensor stores them.

Noise model: the one Stage I trains with, :mod:`privlens.optics.noise` (photon shot noise,
read noise, clipping, ADC rounding), with the camera's own settings: by default
``full_scale_e = 4000`` e- per 3.713 um sensor pixel, ``read_noise_e = 2.5`` e-, 10 bits (a
documented indoor scene; a 64 px capture of the 256-pixel sensor bins 4 x 4 pixels, so it gets
16 x 4000 e- at full scale). Exact Poisson draws, hard rounding: captures are always quantised.
:class:`CaptureNoise` overrides any of the three settings (e.g. ``bit_depth=8`` for a stolen
8-bit file, ``full_scale_e=1000`` for a dimmer room) or turns the noise off (still quantised).
Noise is drawn from a seeded generator, so tables are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from privlens.optics.camera import Camera
from privlens.optics.config import CameraConfig
from privlens.optics.noise import SensorNoise, equivalent_variance, sensor_noise_for, sensor_readout


@dataclass(frozen=True)
class CaptureNoise:
    """Sensor noise of privacy evaluations: the camera's physical model, optionally overridden.

    ``None`` keeps the camera's setting (:class:`privlens.optics.CameraConfig`: 4000 e-, 2.5 e-,
    10 bits unless the lens file says otherwise). ``enabled=False``: no shot or read noise, but
    the capture is still clipped and rounded to ``bit_depth`` bits.
    """

    enabled: bool = True
    full_scale_e: float | None = None
    read_noise_e: float | None = None
    bit_depth: int | None = None

    def __post_init__(self) -> None:
        # validate through the sensor model's own checks (one message naming the setting)
        SensorNoise(
            4000.0 if self.full_scale_e is None else self.full_scale_e,
            2.5 if self.read_noise_e is None else self.read_noise_e,
            10 if self.bit_depth is None else self.bit_depth,
        )

    def config_for(self, config: CameraConfig) -> CameraConfig:
        """``config`` with the overridden sensor settings."""
        changes = {
            name: value
            for name, value in (
                ("full_scale_e", self.full_scale_e),
                ("read_noise_e", self.read_noise_e),
                ("bit_depth", self.bit_depth),
            )
            if value is not None
        }
        return config.replace(**changes) if changes else config

    def sensor(self, camera: Camera) -> SensorNoise:
        """The :class:`SensorNoise` of one capture pixel of ``camera`` (large pixels of a
        ``lowres`` sensor collect more light)."""
        config = self.config_for(camera.config)
        side = 1.0 if config.lowres_size is None else config.image_size / config.lowres_size
        return sensor_noise_for(config, side)

    def variance(self, camera: Camera, mean_level: float) -> float:
        """White-noise variance (image units^2) with the power of this noise at signal level
        ``mean_level``, rounding included (:func:`privlens.optics.noise.equivalent_variance`)."""
        sensor = self.sensor(camera)
        if not self.enabled:
            sensor = SensorNoise(sensor.full_scale_e, 0.0, sensor.bit_depth)
            return equivalent_variance(sensor, 0.0)
        return equivalent_variance(sensor, mean_level)

    def describe(self, camera: Camera) -> dict:
        """The settings in force for ``camera``, for result tables."""
        config = self.config_for(camera.config)
        return {
            "model": "privlens.optics.noise (shot + read noise, clipping, ADC rounding)",
            "noise": self.enabled,
            "full_scale_e_per_sensor_pixel": config.full_scale_e,
            "full_scale_e_per_capture_pixel": self.sensor(camera).full_scale_e,
            "read_noise_e": config.read_noise_e if self.enabled else 0.0,
            "bit_depth": config.bit_depth,
        }


DEFAULT_NOISE = CaptureNoise()
"""The noise of every privacy evaluation unless told otherwise: the camera's physical model."""


def stored(
    camera: Camera,
    response: torch.Tensor,
    noise: CaptureNoise = DEFAULT_NOISE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """What the sensor stores for a noise-free response from ``camera.image``: exact Poisson
    and read noise (when ``noise.enabled``), clipping, rounding to ``bit_depth`` bits; a
    ``lowres`` sensor's large pixels are read once each and shown back at image size."""
    sensor = noise.sensor(camera)
    lowres = camera.config.lowres_size
    values = response if lowres is None else F.adaptive_avg_pool2d(response, (lowres, lowres))
    out = sensor_readout(values, sensor, add_noise=noise.enabled, exact=True, generator=generator)
    return out if lowres is None else F.interpolate(out, size=response.shape[-2:], mode="nearest")


@torch.no_grad()
def sensor_captures(
    camera: Camera,
    images: torch.Tensor,
    noise: CaptureNoise = DEFAULT_NOISE,
    seed: int = 0,
    batch_size: int = 16,
    psf: torch.Tensor | None = None,
) -> torch.Tensor:
    """Captures of ``images`` through ``camera`` (eval mode, its legacy noise off) as stored
    by its sensor (:func:`stored`); ``seed`` fixes the noise draw."""
    camera = camera.eval()
    psf = camera.psf() if psf is None else psf
    generator = torch.Generator().manual_seed(seed)
    chunks = [camera.image(chunk, psf) for chunk in images.split(batch_size)]
    return stored(camera, torch.cat(chunks), noise, generator)
