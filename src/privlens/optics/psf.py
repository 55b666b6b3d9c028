"""Point-spread functions of a Zernike phase mask: the functional core of the camera.

Physics (Eq. 1 of Lopez et al., CVPR 2024, paraxial/Fresnel regime). A point source at distance
``d`` lights the pupil with the spherical wave ``Pt = exp(i k r^2 / (2 d))``; the thin lens
(``1/f = 1/z + 1/d_focus``) multiplies by ``exp(-i k r^2 / (2 f))``, the phase mask by
``P_phi = exp(-i k phi)`` with ``phi = sum_j beta_j Z_j`` (optical path difference) and the aperture
by its indicator. Fresnel propagation over the lens-sensor distance ``z`` then gives::

    E(u) ∝ ∫ A(x) exp(i k |x|^2 / 2 (1/d - 1/d_focus)) exp(-i k phi(x)) exp(-i 2 pi x·u / (lambda z)) dx

(the lens chirp cancels the propagation chirp ``exp(i k |x|^2 / (2 z))`` up to the object term, and
the chirp in ``u`` vanishes in the intensity). ``H = |E|^2`` is therefore a *scaled* Fourier
transform of the pupil function.

Numerics. For each wavelength the pupil is sampled at ``dx = lambda z / (K d)`` and zero-padded to
a ``K x K`` FFT, which gives the field on the sensor at pitch ``d`` (the fine pitch, ``P / s`` for
image pitch ``P``), periodic with period ``K d``: the same ``K`` and ``d`` for every wavelength,
so one batched FFT serves all channels. Rays leave the pupil at up to ``w = z max|grad(path)|``
from the axis; the image window (half-width ``U``, plus one pixel for the pixel integration) is
free of aliased copies when ``K d >= U + w + margin``, and :func:`required_fft_size` picks the
smallest fast ``K`` that satisfies it for the current coefficients (adaptive oversampling: a
strong mask gets a finer pupil sampling). :func:`max_phase_step` reports the phase change between
neighbouring pupil samples; below pi is not required when the PSF is wider than the window
(copies overlapping each other outside the window do no harm) and not sufficient when it is
narrower. The aperture's edge samples carry their area coverage (8 x 8 sub-samples).

Pixels. The intensity is filtered with the pixel-area factor of :mod:`privlens.optics.pixel`
(exactly, in the Fourier domain) and read at the pixel centres. Each PSF is normalised to sum 1 per
wavelength over the sensor window; light falling outside the window is discarded. The optical axis
maps to pixel ``(N // 2, N // 2)`` of an ``N x N`` PSF.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from privlens.optics import pixel
from privlens.optics.config import CameraConfig
from privlens.optics.sensor import next_fast_fft_size
from privlens.optics.zernike import zernike_on_points

MICROMETRE = 1e-6

ALIAS_MARGIN_AIRY = 8.0
"""Extra clearance (in units of ``lambda_min * f_number``, ~44 um for the paper camera) between an
aliased copy of the field and the window, for the diffraction tails of the aperture edge."""

MIN_FFT_SIZE = 320
"""Smallest FFT: 110 pupil samples across the aperture in blue, 76 in red, for the paper camera
at 256 px; the open lens's PSF is then within L1 0.013 per channel of a converged one (0.007 at
384, at 1.4x the FFT cost)."""


class PupilSamplingError(ValueError):
    """The phase mask is too strong to be simulated within the allowed FFT size."""


@dataclass(frozen=True)
class PupilSampling:
    """Everything about the PSF computation that does not depend on the Zernike coefficients.

    Per wavelength ``c`` (tuples, one entry per channel, ``n_c`` pupil samples per side):

    Attributes:
        bases: ``[num_terms, n_c, n_c]`` Noll terms on the pupil samples.
        apertures: ``[n_c, n_c]`` area fraction of each pupil sample inside the aperture.
        object_phases: ``[n_c, n_c]`` residual quadratic phase (radians) of an object that is
            not at the focus distance.
        wave_numbers: ``[C]`` ``2 pi / lambda`` in rad/m.
        response: ``[M, M]`` pixel-integration factor on the intensity's ``fft2`` (``M`` bins).
        fold: ``[M]`` pixel-grid bin of each spectrum bin (:func:`pixel.fold_index`).
        pixel_index: ``[N]`` index (mod ``Q``) of each pixel centre on the periodic pixel grid.
        fft_size: ``K``, the period in fine samples (``K = s Q``, ``Q`` pixels per period).
        samples_per_pixel: ``s``, fine samples per image pixel (per side): the period's unit.
        fine_pitch_m: pitch ``d = P / s``.
        pupil_pitches_m: pupil sample spacing per wavelength.
        reach_m: the window half-width plus one pixel (what must be free of aliased copies).
    """

    bases: tuple[torch.Tensor, ...]
    apertures: tuple[torch.Tensor, ...]
    object_phases: tuple[torch.Tensor, ...]
    wave_numbers: torch.Tensor
    response: torch.Tensor
    fold: torch.Tensor
    pixel_index: torch.Tensor
    fft_size: int
    samples_per_pixel: int
    fine_pitch_m: float
    pupil_pitches_m: tuple[float, ...]
    reach_m: float

    @property
    def pupil_samples(self) -> tuple[int, ...]:
        """Pupil samples across the aperture diameter, per wavelength."""
        return tuple(int(a.shape[-1]) for a in self.apertures)

    def to(self, device: torch.device | str) -> PupilSampling:
        return dataclasses.replace(
            self,
            bases=tuple(t.to(device) for t in self.bases),
            apertures=tuple(t.to(device) for t in self.apertures),
            object_phases=tuple(t.to(device) for t in self.object_phases),
            wave_numbers=self.wave_numbers.to(device),
            response=self.response.to(device),
            fold=self.fold.to(device),
            pixel_index=self.pixel_index.to(device),
        )


def fine_pitch_m(config: CameraConfig) -> tuple[float, int]:
    """Pitch of the fine intensity grid and fine samples per image pixel."""
    samples = pixel.samples_per_pixel(
        config.image_pitch_m, min(config.wavelengths_m), config.sensor_distance_m, config.aperture_radius_m
    )
    return config.image_pitch_m / samples, samples


def window_reach_m(config: CameraConfig) -> float:
    """Farthest pixel centre from the axis, plus one pixel (the pixel filter's reach)."""
    size = config.image_size
    return (max(size // 2, size - 1 - size // 2) + 1) * config.image_pitch_m


def required_fft_size(
    coeffs_um: torch.Tensor, config: CameraConfig, slopes: tuple[torch.Tensor, torch.Tensor]
) -> int:
    """Smallest fast even FFT size whose period keeps aliased copies out of the window."""
    margin = ALIAS_MARGIN_AIRY * min(config.wavelengths_m) * config.f_number
    reach = window_reach_m(config) + ray_radius_m(coeffs_um, config, slopes) * 1.05 + margin
    pitch, samples = fine_pitch_m(config)
    return period_size(max(MIN_FFT_SIZE, math.ceil(reach / pitch)), samples)


def period_size(fft_size: int, samples: int) -> int:
    """``fft_size`` rounded up to ``s Q`` with ``Q`` (pixels per period) fast and even."""
    return samples * fast_even_size(-(-fft_size // samples))


def fast_even_size(n: int) -> int:
    """Smallest even ``m >= n`` whose prime factors are 2, 3 and 5."""
    m = next_fast_fft_size(max(2, n))
    while m % 2:
        m = next_fast_fft_size(m + 1)
    return m


def _aperture_coverage(coords: torch.Tensor, pitch: float, radius: float, sub: int = 8) -> torch.Tensor:
    """Fraction of each pupil sample's square (side ``pitch``) inside the disc of ``radius``."""
    offsets = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub - 0.5
    fine = (coords[:, None] + offsets[None] * pitch).reshape(-1)
    inside = (fine[:, None] ** 2 + fine[None] ** 2 <= radius**2).to(torch.float64)
    n = coords.shape[0]
    return inside.reshape(n, sub, n, sub).mean(dim=(1, 3))


def build_pupil_sampling(
    config: CameraConfig, dtype: torch.dtype = torch.float32, fft_size: int | None = None
) -> PupilSampling:
    """Precompute the coefficient-independent parts of the PSF for ``config``.

    ``fft_size`` (default :data:`MIN_FFT_SIZE`, made fast and even) sets the pupil sampling.
    Geometry is evaluated in float64 and stored in ``dtype`` (float32 by default).
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"PSF dtype must be float32 or float64, got {dtype}")
    pitch, samples = fine_pitch_m(config)
    size = period_size(fft_size or MIN_FFT_SIZE, samples)
    period_px = size // samples
    radius = config.aperture_radius_m
    vergence = 1 / config.object_distance_m - 1 / config.focus_distance_m
    bases, apertures, object_phases, pitches = [], [], [], []
    for wavelength in config.wavelengths_m:
        dx = wavelength * config.sensor_distance_m / (size * pitch)
        n = math.ceil(2 * radius / dx + 1e-9)
        n += n % 2
        coords = (torch.arange(n, dtype=torch.float64) - n / 2 + 0.5) * dx
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        rho = torch.sqrt(x * x + y * y) / radius
        shrink = torch.where(rho > 1, 1 / rho.clamp_min(1e-12), torch.ones_like(rho)) * (1 - 1e-12)
        bases.append(zernike_on_points(config.num_terms, x / radius * shrink, y / radius * shrink).to(dtype))
        apertures.append(_aperture_coverage(coords, dx, radius).to(dtype))
        k = 2 * math.pi / wavelength
        r2 = (x * x + y * y) * shrink**2  # edge samples: phase at the rim, like the basis
        object_phases.append((k * r2 / 2 * vergence).to(dtype))
        pitches.append(dx)
    image = config.image_size
    index = (torch.arange(image) - image // 2) % period_px
    spectrum_bins = fast_even_size(2 * max(a.shape[-1] for a in apertures))  # holds |E|^2's band
    return PupilSampling(
        bases=tuple(bases),
        apertures=tuple(apertures),
        object_phases=tuple(object_phases),
        wave_numbers=(2 * math.pi / torch.tensor(config.wavelengths_m, dtype=torch.float64)).to(dtype),
        response=pixel.pixel_response(spectrum_bins, period_px, dtype),
        fold=pixel.fold_index(spectrum_bins, period_px),
        pixel_index=index,
        fft_size=size,
        samples_per_pixel=samples,
        fine_pitch_m=pitch,
        pupil_pitches_m=tuple(pitches),
        reach_m=window_reach_m(config),
    )


def wavefront_m(coeffs_um: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Optical path difference ``phi = sum_j beta_j Z_j`` in metres from coefficients in um."""
    if coeffs_um.shape != basis.shape[:1]:
        raise ValueError(
            f"expected {basis.shape[0]} Zernike coefficients, got shape {tuple(coeffs_um.shape)}"
        )
    opd_um = torch.tensordot(coeffs_um.to(basis.dtype), basis, dims=1)
    return opd_um * MICROMETRE


def pupil_phases(coeffs_um: torch.Tensor, sampling: PupilSampling) -> list[torch.Tensor]:
    """Per wavelength, the ``[n_c, n_c]`` pupil phase (rad): object defocus minus ``k`` x mask path."""
    return [
        phase - sampling.wave_numbers[c] * wavefront_m(coeffs_um, basis)
        for c, (basis, phase) in enumerate(zip(sampling.bases, sampling.object_phases, strict=True))
    ]


def max_phase_step(coeffs_um: torch.Tensor, sampling: PupilSampling) -> float:
    """Largest phase change (radians) between neighbouring pupil samples inside the aperture,
    over all wavelengths."""
    steps = []
    for phase, aperture in zip(pupil_phases(coeffs_um.detach(), sampling), sampling.apertures, strict=True):
        inside = aperture >= 0.5
        for dim in (0, 1):
            length = inside.shape[dim] - 1
            both = inside.narrow(dim, 0, length) & inside.narrow(dim, 1, length)
            steps.append(torch.diff(phase, dim=dim).abs()[both].max())
    return float(torch.stack(steps).max())


def slope_basis(config: CameraConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients ``d Z_j / dx`` (per metre) at check points covering the aperture and its rim.

    Returns ``([2, num_terms, P], [P] radii in m)`` in float64: a 64 x 64 grid inside the disc
    and 256 points just inside the rim (where Zernike slopes peak).
    """
    grid = torch.linspace(-1, 1, 64, dtype=torch.float64)
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")
    inside = gx**2 + gy**2 <= 1
    angles = torch.linspace(0, 2 * math.pi, 257, dtype=torch.float64)[:-1]
    rim = 1 - 1e-6
    x = torch.cat([gx[inside], rim * torch.cos(angles)]) * (1 - 2e-6)
    y = torch.cat([gy[inside], rim * torch.sin(angles)]) * (1 - 2e-6)
    h = 1e-6
    terms = config.num_terms
    dzdx = (zernike_on_points(terms, x + h, y) - zernike_on_points(terms, x - h, y)) / (2 * h)
    dzdy = (zernike_on_points(terms, x, y + h) - zernike_on_points(terms, x, y - h)) / (2 * h)
    radius = config.aperture_radius_m
    return torch.stack([dzdx, dzdy]) / radius, torch.stack([x, y]) * radius


def ray_radius_m(
    coeffs_um: torch.Tensor, config: CameraConfig, slopes: tuple[torch.Tensor, torch.Tensor]
) -> float:
    """Geometric PSF radius ``z max|grad(path)|`` (m): how far from the axis rays land."""
    gradient, points = slopes
    coeffs = coeffs_um.detach().to(device="cpu", dtype=torch.float64)
    mask_slope = torch.einsum("j,djp->dp", coeffs * MICROMETRE, gradient)
    vergence = 1 / config.object_distance_m - 1 / config.focus_distance_m
    total = points * vergence - mask_slope
    return config.sensor_distance_m * float(total.square().sum(0).max()) ** 0.5


def psf_from_coefficients(coeffs_um: torch.Tensor, sampling: PupilSampling) -> torch.Tensor:
    """PSFs ``[C, N, N]`` (one per wavelength, each summing to 1) for Noll coefficients in um.

    Per wavelength the pupil (pitch ``lambda z / (K d)``) is transformed on ``M`` bins, enough for
    the intensity's band; the intensity's spectrum is multiplied by the pixel factor, folded onto
    the ``Q`` pixels of one period and transformed back.
    """
    bins = sampling.response.shape[-1]
    period_px = sampling.fft_size // sampling.samples_per_pixel
    fields = []
    for phase, aperture in zip(pupil_phases(coeffs_um, sampling), sampling.apertures, strict=True):
        # the pupil fills n of the M rows: transform its rows first, then the M columns
        rows = torch.fft.fft(torch.polar(aperture, phase), n=bins, dim=-1)
        fields.append(torch.fft.fft(rows, n=bins, dim=-2))
    field = torch.stack(fields)
    intensity = torch.view_as_real(field).square().sum(-1)
    spectrum = torch.fft.fft2(intensity) * sampling.response
    shape = (spectrum.shape[0], period_px, bins)
    folded = spectrum.new_zeros(shape).index_add(-2, sampling.fold, spectrum)
    folded = folded.new_zeros(shape[:2] + (period_px,)).index_add(-1, sampling.fold, folded)
    values = torch.fft.ifft2(folded).real
    index = sampling.pixel_index
    psf = values.index_select(-2, index).index_select(-1, index).clamp_min(0.0)
    return psf / psf.sum(dim=(-2, -1), keepdim=True)
