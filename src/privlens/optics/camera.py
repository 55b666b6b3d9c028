"""The privacy camera as an ``nn.Module``: learnable Zernike phase mask -> PSF -> sensor.

``y = C(H * x) + eta``: ``H`` from :mod:`privlens.optics.psf`, the convolution, noise and large
pixels from :mod:`privlens.optics.sensor`. The only learnable tensor is ``coeffs_um`` (Noll
coefficients in micrometres of RMS wavefront); terms listed in ``config.frozen_terms`` get no
gradient.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
from torch import nn

from privlens.optics.config import CameraConfig
from privlens.optics.psf import PupilSampling, build_pupil_sampling, psf_from_coefficients
from privlens.optics.sensor import add_read_noise, convolve, large_pixel_sensor

_SAMPLING_TENSORS = ("basis", "aperture", "object_phase", "wave_numbers", "dft")


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
        sampling = build_pupil_sampling(self.config, dtype=psf_dtype)
        self._sampling = sampling
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
        for name in _SAMPLING_TENSORS:
            self.register_buffer(f"_{name}", getattr(sampling, name), persistent=False)

    # -- physics -----------------------------------------------------------------------------
    def effective_coeffs_um(self) -> torch.Tensor:
        """Coefficients with the frozen terms detached (they receive no gradient)."""
        return torch.where(self.trainable_mask, self.coeffs_um, self.coeffs_um.detach())

    def _current_sampling(self) -> PupilSampling:
        """The precomputed sampling, with the tensors on the module's current device."""
        return dataclasses.replace(
            self._sampling,
            **{name: getattr(self, f"_{name}") for name in _SAMPLING_TENSORS},
        )

    def psf(self, coeffs_um: torch.Tensor | None = None) -> torch.Tensor:
        """PSFs ``[C, N, N]`` (N = image_size), one per wavelength, each summing to 1."""
        coeffs = self.effective_coeffs_um() if coeffs_um is None else coeffs_um
        return psf_from_coefficients(coeffs.to(self._basis.dtype), self._current_sampling())

    def defocus_psf(self, defocus_um: float) -> torch.Tensor:
        """Frozen PSF of the same camera with only Noll 4 (defocus) set: ``H_f`` of Stage I."""
        coeffs = torch.zeros_like(self.coeffs_um)
        coeffs[3] = defocus_um
        with torch.no_grad():
            return self.psf(coeffs).detach()

    def aperture_mask(self) -> torch.Tensor:
        """``[n, n]`` 1 inside the aperture, 0 outside, on the pupil samples."""
        return self._aperture

    def wavefront_um(self) -> torch.Tensor:
        """The phase mask as optical path difference (um) on the pupil samples, 0 outside."""
        return torch.tensordot(self.coeffs_um.detach(), self._basis, dims=1) * self._aperture

    # -- image formation ---------------------------------------------------------------------
    def image(self, images: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
        """Sensor response to ``images`` ``[B, C, H, W]`` for a given PSF ``[3, H, W]``."""
        images = check_images(images, self.config.image_size)
        kernel = psf.mean(dim=0, keepdim=True) if images.shape[1] == 1 else psf
        if images.shape[1] not in (1, kernel.shape[0]):
            raise ValueError(
                f"{images.shape[1]}-channel images need a camera with as many wavelengths, "
                f"this one has {kernel.shape[0]}"
            )
        out = convolve(images, kernel, self.config.convolution)
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

    def forward(self, images: torch.Tensor) -> Capture:
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
