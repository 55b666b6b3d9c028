"""Point-spread functions of a Zernike phase mask: the functional core of the camera.

Physics (Eq. 1 of Lopez et al., CVPR 2024, paraxial/Fresnel regime). A point source at distance
``d`` lights the pupil with the spherical wave ``Pt = exp(i k r^2 / (2 d))``; the thin lens
(``1/f = 1/z + 1/d_focus``) multiplies by ``exp(-i k r^2 / (2 f))``, the phase mask by
``P_phi = exp(-i k phi)`` with ``phi = sum_j beta_j Z_j`` (optical path difference) and the aperture
by its indicator. Fresnel propagation over the lens-sensor distance ``z`` then gives::

    E(u) ∝ ∫ A(x) exp(i k |x|^2 / 2 (1/d - 1/d_focus)) exp(-i k phi(x)) exp(-i 2 pi x·u / (lambda z)) dx

(the lens chirp cancels the propagation chirp ``exp(i k |x|^2 / (2 z))`` up to the object term, and
the chirp in ``u`` vanishes in the intensity). ``H = |E|^2`` is therefore a *scaled* Fourier
transform of the pupil function, the same Fresnel integral that the transfer-function form
``F^-1{F{P W} T}`` evaluates, but with the output sampled exactly where we want it.

Numerics. The transform is evaluated as a matrix Fourier transform (two dense DFT matrices,
``E = M P M^T``) from the pupil samples (the paper's 8 mm / 256-point lens window, cropped to the
aperture) straight onto the sensor's pixel centres: no interpolation, no wrap-around, and any
pitch. This is valid as long as the pupil phase is sampled finely enough (less than pi per pupil
sample, i.e. |grad phi| < lambda / (2 dx)); :func:`max_phase_step` reports it. When the image is
coarser than the sensor (``image_size < grid_size``) the PSF is computed at a fine pitch and summed
over each image pixel (pixel-area integration), not point-sampled. Each PSF is normalised to sum 1
per wavelength over the sensor window; light falling outside the window is discarded.

The optical axis maps to pixel ``(N // 2, N // 2)`` of an ``N x N`` PSF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from privlens.optics.config import CameraConfig
from privlens.optics.zernike import zernike_on_points

MICROMETRE = 1e-6


@dataclass(frozen=True)
class PupilSampling:
    """Everything about the PSF computation that does not depend on the Zernike coefficients.

    Attributes:
        basis: ``[num_terms, n, n]`` Noll terms on the pupil samples (zero outside the aperture).
        aperture: ``[n, n]`` 1 inside the aperture, 0 outside.
        object_phase: ``[C, n, n]`` residual quadratic phase (radians) of an object that is not
            at the focus distance, one slice per wavelength.
        wave_numbers: ``[C]`` ``2 pi / lambda`` in rad/m.
        dft: ``[C, n_out, n]`` complex matrix Fourier transform from pupil to fine sensor samples.
        binning: fine sensor samples per image pixel (per side).
        pupil_pitch_m: spacing of the pupil samples.
    """

    basis: torch.Tensor
    aperture: torch.Tensor
    object_phase: torch.Tensor
    wave_numbers: torch.Tensor
    dft: torch.Tensor
    binning: int
    pupil_pitch_m: float

    def to(self, device: torch.device | str) -> PupilSampling:
        return PupilSampling(
            basis=self.basis.to(device),
            aperture=self.aperture.to(device),
            object_phase=self.object_phase.to(device),
            wave_numbers=self.wave_numbers.to(device),
            dft=self.dft.to(device),
            binning=self.binning,
            pupil_pitch_m=self.pupil_pitch_m,
        )


def pupil_coordinates_m(config: CameraConfig) -> torch.Tensor:
    """1-D pupil sample positions (metres): the lens window's pixel centres inside the aperture box."""
    pitch = config.lens_window_m / config.grid_size
    index = torch.arange(config.grid_size, dtype=torch.float64)
    coords = (index - config.grid_size / 2 + 0.5) * pitch
    return coords[coords.abs() <= config.aperture_radius_m]


def psf_binning(config: CameraConfig) -> int:
    """Fine sensor samples per image pixel: 1 when the image pixel is no larger than the sensor's."""
    return max(1, math.ceil(config.image_pitch_m / config.pitch_m - 1e-9))


def sensor_coordinates_m(config: CameraConfig) -> torch.Tensor:
    """1-D positions (metres) of the fine sensor samples; binned groups are centred on image pixels.

    Image pixel ``i`` is centred at ``(i - image_size // 2) * image_pitch_m``, so the optical axis
    falls on pixel ``image_size // 2``.
    """
    binning = psf_binning(config)
    fine_pitch = config.image_pitch_m / binning
    index = torch.arange(config.image_size * binning, dtype=torch.float64)
    offset = (config.image_size // 2) * binning + (binning - 1) / 2
    return (index - offset) * fine_pitch


def fresnel_dft_matrix(
    pupil_m: torch.Tensor, sensor_m: torch.Tensor, wavelength_m: float, distance_m: float
) -> torch.Tensor:
    """``M[u, x] = exp(-2 pi i u x / (lambda z))``: one axis of the scaled Fresnel transform."""
    argument = -2 * math.pi * torch.outer(sensor_m, pupil_m) / (wavelength_m * distance_m)
    return torch.polar(torch.ones_like(argument), argument)


def build_pupil_sampling(config: CameraConfig, dtype: torch.dtype = torch.float32) -> PupilSampling:
    """Precompute the coefficient-independent parts of the PSF for ``config``.

    Geometry is evaluated in float64 and stored in ``dtype`` (float32 by default; complex64 DFT).
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"PSF dtype must be float32 or float64, got {dtype}")
    complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    coords = pupil_coordinates_m(config)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    radius = config.aperture_radius_m
    basis = zernike_on_points(config.num_terms, x / radius, y / radius)
    r2 = x * x + y * y
    aperture = (r2 <= radius**2).to(torch.float64)
    wavelengths = torch.tensor(config.wavelengths_m, dtype=torch.float64)
    wave_numbers = 2 * math.pi / wavelengths
    vergence = 1 / config.object_distance_m - 1 / config.focus_distance_m
    object_phase = wave_numbers[:, None, None] * r2[None] / 2 * vergence
    sensor = sensor_coordinates_m(config)
    dft = torch.stack([fresnel_dft_matrix(coords, sensor, w, config.sensor_distance_m) for w in wavelengths])
    return PupilSampling(
        basis=basis.to(dtype),
        aperture=aperture.to(dtype),
        object_phase=object_phase.to(dtype),
        wave_numbers=wave_numbers.to(dtype),
        dft=dft.to(complex_dtype),
        binning=psf_binning(config),
        pupil_pitch_m=config.lens_window_m / config.grid_size,
    )


def wavefront_m(coeffs_um: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Optical path difference ``phi = sum_j beta_j Z_j`` in metres from coefficients in um."""
    if coeffs_um.shape != basis.shape[:1]:
        raise ValueError(
            f"expected {basis.shape[0]} Zernike coefficients, got shape {tuple(coeffs_um.shape)}"
        )
    opd_um = torch.tensordot(coeffs_um.to(basis.dtype), basis, dims=1)
    return opd_um * MICROMETRE


def max_phase_step(coeffs_um: torch.Tensor, sampling: PupilSampling) -> float:
    """Largest phase change (radians) between neighbouring pupil samples; keep it below pi."""
    phase = sampling.wave_numbers.max() * wavefront_m(coeffs_um, sampling.basis)
    phase = phase + sampling.object_phase.abs().amax(0)
    mask = sampling.aperture > 0
    steps = []
    for dim in (0, 1):
        diff = torch.diff(phase, dim=dim).abs()
        both = torch.minimum(
            mask.narrow(dim, 0, mask.shape[dim] - 1), mask.narrow(dim, 1, mask.shape[dim] - 1)
        )
        steps.append(diff[both].max())
    return float(torch.stack(steps).max())


def psf_from_coefficients(coeffs_um: torch.Tensor, sampling: PupilSampling) -> torch.Tensor:
    """PSFs ``[C, N, N]`` (one per wavelength, each summing to 1) for Noll coefficients in um."""
    opd = wavefront_m(coeffs_um, sampling.basis)
    phase = sampling.object_phase - sampling.wave_numbers[:, None, None] * opd[None]
    pupil = torch.polar(sampling.aperture.expand_as(phase), phase)
    dft = sampling.dft
    field = dft @ pupil @ dft.transpose(-1, -2)
    intensity = field.real.square() + field.imag.square()
    if sampling.binning > 1:
        intensity = F.avg_pool2d(intensity[None], sampling.binning)[0]
    return intensity / intensity.sum(dim=(-2, -1), keepdim=True)
