"""The privacy camera as an ``nn.Module``: learnable Zernike phase mask -> PSF -> sensor.

``y = C(H * x) + eta``: ``H`` from :mod:`privlens.optics.psf`, the convolution and large pixels
from :mod:`privlens.optics.sensor`, the sensor noise from :mod:`privlens.optics.noise`. The only
learnable tensor is ``coeffs_um`` (Noll coefficients in micrometres of RMS wavefront); terms listed
in ``config.frozen_terms`` get no gradient.

Noise API: ``camera.capture(x, noise=True, quantise=True, generator=g)`` is what the physical
sensor stores (differentiable in training, exact Poisson and hard rounding under ``no_grad``);
``camera.readout(response, ...)`` applies the same sensor to a response from ``camera.image``;
``forward`` applies it only when ``config.sensor_noise`` is set.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from privlens.optics.config import CameraConfig
from privlens.optics.noise import sensor_noise_for, sensor_readout
from privlens.optics.psf import (
    MIN_FFT_SIZE,
    PupilSampling,
    PupilSamplingError,
    build_pupil_sampling,
    fast_even_size,
    max_phase_step,
    psf_from_coefficients,
    required_fft_size,
    slope_basis,
)
from privlens.optics.sensor import (
    add_read_noise,
    convolution_fft_shape,
    convolve,
    convolve_spectrum,
    kernel_spectrum,
    large_pixel_sensor,
)
from privlens.optics.zernike import zernike_basis

SAMPLINGS_KEPT = 3
"""Pupil samplings a camera keeps (the coefficients move between a few FFT sizes in training)."""


class SamplingReport(NamedTuple):
    """How the pupil is sampled for some coefficients (see :meth:`Camera.sampling_report`).

    ``required``: smallest FFT size whose period keeps aliased copies out of the window;
    ``used``: the FFT size the camera uses (the open lens's when ``pupil_sampling="fixed"``);
    ``pupil_samples``: samples across the aperture per wavelength at ``used``;
    ``phase_step``: largest phase step (rad) between neighbouring pupil samples at ``used``;
    ``alias_free``: ``used >= required``.
    """

    required: int
    used: int
    pupil_samples: tuple[int, ...]
    phase_step: float
    alias_free: bool


class Capture(NamedTuple):
    """A camera's output: the capture ``[B, C, H, W]`` and the PSF ``[3, H, W]`` it was made with."""

    image: torch.Tensor
    psf: torch.Tensor


def check_images(images: torch.Tensor, image_size: int | None = None) -> torch.Tensor:
    """Validate a scene batch and return it as ``[B, C, H, W]``; raise ``ValueError`` otherwise.

    Accepted: float tensors ``[C, H, W]`` or ``[B, C, H, W]`` with ``C`` = 1 (grey) or 3 (RGB),
    values finite and within [0, 1].
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor image batch, got {type(images).__name__}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [0, 1], got dtype {images.dtype}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            "images must be [B, C, H, W] or [C, H, W] with C = 1 or 3 channels, "
            f"got shape {tuple(images.shape)}"
        )
    if image_size is not None and tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"this camera is built for {image_size}x{image_size} images, got "
            f"{images.shape[-2]}x{images.shape[-1]}; resize the images or build the camera with "
            f"image_size={images.shape[-1]}"
        )
    low, high = (float(v) for v in torch.aminmax(images.detach()))  # one pass; NaN propagates
    if math.isnan(low) or math.isnan(high) or math.isinf(low) or math.isinf(high):
        raise ValueError("images contain NaN or infinite values")
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"images must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    return images


class Camera(nn.Module):
    """Differentiable camera with a Zernike phase mask (see :class:`CameraConfig` for settings).

    Args:
        config: camera settings.
        coeffs_um: initial Noll coefficients ``beta_1..beta_p`` in um (zeros: aberration-free).
        psf_dtype: precision of the PSF computation. float32 is accurate to ~1e-6 relative
            here (phases of at most a few hundred radians); use float64 for reference checks.

    ``forward(images)`` returns a :class:`Capture`. A grey image (1 channel) is imaged by a
    panchromatic sensor: the mean of the per-wavelength PSFs.
    """

    def __init__(
        self,
        config: CameraConfig | None = None,
        coeffs_um: torch.Tensor | None = None,
        psf_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.config = config or CameraConfig()
        self._psf_dtype = psf_dtype
        self._slopes = slope_basis(self.config)
        self._fixed_size = required_fft_size(torch.zeros(self.config.num_terms), self.config, self._slopes)
        self._samplings: dict[int, PupilSampling] = {}
        self._spectrum_cache: tuple | None = None
        self._psf_cache: tuple | None = None
        p = self.config.num_terms
        initial = torch.zeros(p, dtype=psf_dtype) if coeffs_um is None else coeffs_um
        initial = torch.as_tensor(initial, dtype=psf_dtype).detach().clone()
        if initial.shape != (p,):
            raise ValueError(f"expected {p} Zernike coefficients, got shape {tuple(initial.shape)}")
        if not torch.isfinite(initial).all():
            raise ValueError("Zernike coefficients contain NaN or infinite values")
        self.coeffs_um = nn.Parameter(initial)
        trainable = torch.ones(p, dtype=torch.bool)
        for j in self.config.frozen_terms:
            trainable[j - 1] = False
        self.register_buffer("trainable_mask", trainable, persistent=False)
        # display only: the mask on the paper's lens-window pitch (128 samples across the aperture)
        across = round(2 * self.config.aperture_radius_m * self.config.grid_size / self.config.lens_window_m)
        grid = zernike_basis(p, max(2, across))
        self.register_buffer("_basis", grid.to(psf_dtype), persistent=False)
        self.register_buffer("_aperture", (grid[0] != 0).to(psf_dtype), persistent=False)

    # -- physics -----------------------------------------------------------------------------
    def effective_coeffs_um(self) -> torch.Tensor:
        """Coefficients with the frozen terms detached (they receive no gradient)."""
        return torch.where(self.trainable_mask, self.coeffs_um, self.coeffs_um.detach())

    def sampling_report(self, coeffs_um: torch.Tensor | None = None) -> SamplingReport:
        """Pupil sampling needed and used for ``coeffs_um`` (default: the current coefficients)."""
        coeffs = (self.coeffs_um if coeffs_um is None else coeffs_um).detach()
        required = required_fft_size(coeffs, self.config, self._slopes)
        used = self._fixed_size if self.config.pupil_sampling == "fixed" else required
        sampling = self._sampling(min(used, self._size_limit()), torch.device("cpu"))
        step = max_phase_step(coeffs.cpu().to(sampling.bases[0].dtype), sampling)
        return SamplingReport(required, used, sampling.pupil_samples, step, used >= required)

    def simulable(self, coeffs_um: torch.Tensor | None = None) -> bool:
        """Whether the mask (default: the current coefficients) fits within ``max_pupil_samples``:
        the cheap part of :meth:`check_sampling` (no phase-step scan), for a check every step."""
        if self.config.pupil_sampling == "fixed":
            return self._fixed_size <= self._size_limit()
        coeffs = (self.coeffs_um if coeffs_um is None else coeffs_um).detach()
        return required_fft_size(coeffs, self.config, self._slopes) <= self._size_limit()

    def _size_limit(self) -> int:
        """Largest FFT size allowed by ``max_pupil_samples`` (counted in the bluest channel)."""
        base = self._sampling(MIN_FFT_SIZE, torch.device("cpu")).pupil_samples
        return fast_even_size(MIN_FFT_SIZE * self.config.max_pupil_samples // max(base))

    def check_sampling(
        self, coeffs_um: torch.Tensor | None = None, *, strict: bool | None = None
    ) -> SamplingReport:
        """The :meth:`sampling_report`, raising or warning when the PSF would not be right.

        Raises :class:`PupilSamplingError` when the mask needs more than ``max_pupil_samples``
        pupil samples, or when it aliases at a fixed sampling and ``strict`` (default: in
        training mode); warns when it aliases at a fixed sampling otherwise. The Stage I loop can
        call ``camera.check_sampling(strict=True)`` once per logging interval.
        """
        report = self.sampling_report(coeffs_um)
        if report.used > self._size_limit():
            raise PupilSamplingError(
                f"the phase mask is too strong to simulate: it needs an FFT of {report.required} "
                f"(more than {self.config.max_pupil_samples} pupil samples across the aperture, "
                "max_pupil_samples); reduce the coefficients (Camera.project_) or raise "
                "max_pupil_samples (cost grows as its square)"
            )
        if not report.alias_free:
            message = (
                f"the phase mask aliases at the fixed pupil sampling (FFT {report.used}, phase step "
                f"{report.phase_step:.2f} rad; needs {report.required}): the PSF is wrong; use "
                "pupil_sampling='adaptive'"
            )
            if self.training if strict is None else strict:
                raise PupilSamplingError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        return report

    def _sampling(self, size: int, device: torch.device) -> PupilSampling:
        """The cached sampling for FFT size ``size``, on ``device``."""
        sampling = self._samplings.get(size)
        if sampling is None:
            sampling = build_pupil_sampling(self.config, dtype=self._psf_dtype, fft_size=size)
        if sampling.response.device != device:
            sampling = sampling.to(device)
        self._samplings.pop(size, None)
        self._samplings[size] = sampling  # most recently used last
        while len(self._samplings) > SAMPLINGS_KEPT:  # bases take p n^2 values per wavelength
            del self._samplings[next(iter(self._samplings))]
        return sampling

    def psf(self, coeffs_um: torch.Tensor | None = None) -> torch.Tensor:
        """PSFs ``[C, N, N]`` (N = image_size), one per wavelength, each summing to 1.

        The pupil sampling follows the coefficients (see :meth:`check_sampling`). The camera's own
        PSF is computed once and reused while no gradient is recorded and the coefficients are
        unchanged (inference with a fixed lens: captures, attacks, anonymisation); a training
        step always recomputes it.
        """
        if coeffs_um is None and not (torch.is_grad_enabled() and self.coeffs_um.requires_grad):
            return self._fixed_psf()
        return self._psf_of(self.effective_coeffs_um() if coeffs_um is None else coeffs_um)

    def _fixed_psf(self) -> torch.Tensor:
        """:meth:`psf` of the current coefficients, cached on their value, device and dtype."""
        coeffs = self.coeffs_um.detach()
        key = (coeffs.device, coeffs.dtype, coeffs.data_ptr(), coeffs._version)
        cached = self._psf_cache
        if cached is None or cached[0] != key or not torch.equal(cached[1], coeffs):
            with torch.no_grad():
                cached = (key, coeffs.clone(), self._psf_of(coeffs))
            self._psf_cache = cached
        return cached[2]

    def _psf_of(self, coeffs: torch.Tensor) -> torch.Tensor:
        size = required_fft_size(coeffs, self.config, self._slopes)
        if self.config.pupil_sampling == "fixed" or size > self._size_limit():
            size = self.check_sampling(coeffs).used
        sampling = self._sampling(size, self.coeffs_um.device)
        return psf_from_coefficients(coeffs.to(sampling.bases[0].dtype), sampling)

    def defocus_psf(self, defocus_um: float) -> torch.Tensor:
        """Frozen PSF of the same camera with only Noll 4 (defocus) set: ``H_f`` of Stage I."""
        coeffs = torch.zeros_like(self.coeffs_um)
        coeffs[3] = defocus_um
        with torch.no_grad():
            return self.psf(coeffs).detach()

    def aperture_mask(self) -> torch.Tensor:
        """``[n, n]`` 1 inside the aperture, 0 outside, on the paper's pupil samples."""
        return self._aperture

    def wavefront_um(self) -> torch.Tensor:
        """The phase mask as optical path difference (um) on the paper's pupil samples, 0 outside."""
        return torch.tensordot(self.coeffs_um.detach(), self._basis, dims=1) * self._aperture

    # -- image formation ---------------------------------------------------------------------
    def image(self, images: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
        """Noise-free sensor response to ``images`` ``[B, C, H, W]`` for a PSF ``[3, H, W]``.

        Only the legacy ``noise_sigma`` is added here; see :meth:`readout` for the sensor noise.
        """
        images = check_images(images, self.config.image_size)
        kernel = psf.mean(dim=0, keepdim=True) if images.shape[1] == 1 else psf
        if images.shape[1] not in (1, kernel.shape[0]):
            raise ValueError(
                f"{images.shape[1]}-channel images need a camera with as many wavelengths, "
                f"this one has {kernel.shape[0]}"
            )
        out = self._convolve(images, kernel)
        if self.config.lowres_size is not None:
            out = large_pixel_sensor(out, self.config.lowres_size)
        if self.config.gain != 1.0:
            out = self.config.gain * out
        noisy = self.config.noise_sigma > 0 and (self.training or self.config.noise_in_eval)
        if noisy:
            out = add_read_noise(out, self.config.noise_sigma)
        if self.config.clip and (noisy or self.config.gain > 1.0):
            # Without noise or gain the capture of a [0, 1] scene already lies in [0, 1] (a
            # non-negative PSF summing to 1), up to FFT round-off of ~1e-7: no clipping pass.
            out = out.clamp(0.0, 1.0)
        return out

    def _convolve(self, images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """:func:`convolve`, reusing the kernel's spectrum while a fixed PSF is applied again."""
        if kernel.requires_grad or images.requires_grad:
            return convolve(images, kernel, self.config.convolution)
        shape = convolution_fft_shape(
            tuple(images.shape[-2:]), tuple(kernel.shape[-2:]), self.config.convolution
        )
        key = (shape, images.dtype, images.device, kernel.shape, kernel.data_ptr(), kernel._version)
        cached = self._spectrum_cache
        if cached is None or cached[0] != key or not torch.equal(cached[1], kernel):
            cached = (key, kernel.detach().clone(), kernel_spectrum(kernel, shape, images.dtype))
            self._spectrum_cache = cached
        return convolve_spectrum(images, cached[2], shape)

    def readout(
        self,
        response: torch.Tensor,
        *,
        noise: bool = True,
        quantise: bool = True,
        generator: torch.Generator | None = None,
        exact: bool | None = None,
    ) -> torch.Tensor:
        """What the sensor stores for a response from :meth:`image`: photon shot noise and read
        noise (``config.full_scale_e``, ``read_noise_e``), clipping to [0, 1] and ``bit_depth``
        quantisation, each pixel at its physical size (large pixels of ``lowres_size`` collect
        more light). ``exact=None``: exact Poisson and hard rounding when no gradient is
        recorded, the differentiable approximation otherwise (see :mod:`privlens.optics.noise`).
        """
        lowres = self.config.lowres_size
        if lowres is None:
            return sensor_readout(
                response,
                sensor_noise_for(self.config),
                add_noise=noise,
                quantise_output=quantise,
                exact=exact,
                generator=generator,
            )
        size = response.shape[-2:]
        small = F.adaptive_avg_pool2d(response, (lowres, lowres))
        side = self.config.image_size / lowres
        stored = sensor_readout(
            small,
            sensor_noise_for(self.config, side),
            add_noise=noise,
            quantise_output=quantise,
            exact=exact,
            generator=generator,
        )
        return F.interpolate(stored, size=size, mode="nearest")

    def capture(
        self,
        images: torch.Tensor,
        psf: torch.Tensor | None = None,
        *,
        noise: bool = True,
        quantise: bool = True,
        generator: torch.Generator | None = None,
        exact: bool | None = None,
    ) -> Capture:
        """A capture as the physical sensor stores it: :meth:`image` then :meth:`readout`.

        ``psf`` defaults to the camera's current PSF. ``generator`` seeds the noise draw.
        """
        psf = self.psf() if psf is None else psf
        response = self.image(images, psf)
        stored = self.readout(response, noise=noise, quantise=quantise, generator=generator, exact=exact)
        return Capture(stored, psf)

    def forward(self, images: torch.Tensor) -> Capture:
        if self.config.sensor_noise:
            return self.capture(images)
        psf = self.psf()
        return Capture(self.image(images, psf), psf)

    # -- keeping the parameters physical -----------------------------------------------------
    @torch.no_grad()
    def project_(self, limits_um: torch.Tensor | float) -> None:
        """Clamp every coefficient to ``[-limit, +limit]`` (e.g. a deformable mirror's range)."""
        limits = torch.as_tensor(limits_um, dtype=self.coeffs_um.dtype, device=self.coeffs_um.device)
        self.coeffs_um.copy_(torch.maximum(torch.minimum(self.coeffs_um, limits), -limits))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"image_size={c.image_size}, terms={c.num_terms}, conv={c.convolution}, "
            f"f/{c.f_number:g}, frozen={list(c.frozen_terms)}"
        )
