"""Optics: Zernike phase masks, PSFs, the sensor and the differentiable privacy camera.

Knows nothing about faces or GANs.
"""

from privlens.optics.camera import Camera, Capture, SamplingReport, check_images
from privlens.optics.config import CameraConfig
from privlens.optics.lensfile import LensFileError, load_lens, load_lens_into, read_lens, save_lens
from privlens.optics.noise import SensorNoise, quantise, sensor_noise_for, sensor_readout
from privlens.optics.presets import LENS_PRESETS, make_camera
from privlens.optics.psf import PupilSamplingError, build_pupil_sampling, psf_from_coefficients
from privlens.optics.zernike import (
    ansi_to_noll,
    nm_to_noll,
    noll_to_ansi,
    noll_to_nm,
    zernike_basis,
)

__all__ = [
    "LENS_PRESETS",
    "Camera",
    "CameraConfig",
    "Capture",
    "LensFileError",
    "PupilSamplingError",
    "SamplingReport",
    "SensorNoise",
    "ansi_to_noll",
    "build_pupil_sampling",
    "check_images",
    "load_lens",
    "load_lens_into",
    "make_camera",
    "nm_to_noll",
    "noll_to_ansi",
    "noll_to_nm",
    "psf_from_coefficients",
    "quantise",
    "read_lens",
    "save_lens",
    "sensor_noise_for",
    "sensor_readout",
    "zernike_basis",
]
