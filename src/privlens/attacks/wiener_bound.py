"""The error of the best linear (Wiener) attacker, in closed form, and that attacker itself.

Model (circular, on an ``N x N`` canvas of ``P = N^2`` pixels, ``C`` channels): the scene is a
stationary random field with per-channel mean ``mu`` and cross-spectrum
``S(f) = E[X(f) X(f)^H] / P`` (``X`` the 2-D DFT of ``x - mu``, a ``C x C`` Hermitian matrix per
frequency); the capture is ``Y_c = H_c X_c + W_c`` with OTF ``H_c`` and white noise of variance
``sigma^2`` per pixel (read noise, 8-bit quantisation ``1 / (12 * 255^2)`` and the shot noise at
the mean level can all be summed into it). The best linear estimator of ``x`` from ``y`` works per
frequency, ``X^ = S H^H (H S H^H + sigma^2 I)^-1 Y``, and its mean squared error per pixel and
channel is

    MSE = 1 / (C P) * sum_f tr( S - S H^H (H S H^H + sigma^2 I)^-1 H S ),

differentiable in the OTF, so a lens can be trained to make it large (``objective: robust`` of
Stage I). Using the cross-spectrum (not one channel at a time) lets the attacker combine the
colour channels, which see the same face through different PSFs. Images are in [0, 1].
"""

from __future__ import annotations

import torch

from privlens.optics.sensor import psf_to_periodic

QUANTISATION_VARIANCE = 1.0 / (12 * 255**2)
"""Variance of the rounding error of an 8-bit file (uniform over one level), image units^2."""


CROSS_SPECTRUM_CHUNK = 8
"""Faces transformed at a time by :func:`cross_spectrum` (its temporaries grow with this, not B)."""


def otf(psf: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[C, H, W]`` complex OTF of a centred PSF ``[C, K, K]`` for circular convolution on ``size``."""
    return torch.fft.fft2(psf_to_periodic(psf, size))


def cross_spectrum(images: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """``[H, W, C, C]`` cross-spectrum ``E[X X^H] / P`` of ``images`` ``[B, C, H, W]``.

    ``mean`` (``[C]``, default: the batch's per-channel mean) is removed first.
    """
    if mean is None:
        mean = images.mean(dim=(0, 2, 3))
    pixels = images.shape[-2] * images.shape[-1]
    total = None
    for start in range(0, images.shape[0], CROSS_SPECTRUM_CHUNK):  # bounded temporaries
        chunk = images[start : start + CROSS_SPECTRUM_CHUNK] - mean[None, :, None, None]
        spectra = torch.fft.fft2(chunk).permute(0, 2, 3, 1)  # [b, H, W, C]
        part = torch.einsum("bhwc,bhwd->hwcd", spectra, spectra.conj())
        total = part if total is None else total + part
    return total / (images.shape[0] * pixels)


def _gain_and_error(
    transfer: torch.Tensor, spectrum: torch.Tensor, noise_variance: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frequency: the Wiener gain ``S H^H M^-1`` and the error matrix, ``[H, W, C, C]`` each."""
    if noise_variance <= 0:
        raise ValueError(f"the noise variance must be positive, got {noise_variance}")
    channels = spectrum.shape[-1]
    h = torch.diag_embed(transfer.permute(1, 2, 0))  # [H, W, C, C] diagonal
    spectrum = spectrum.to(h.dtype)
    identity = torch.eye(channels, dtype=h.dtype, device=h.device)
    coupling = h @ spectrum @ h.mH + noise_variance * identity  # M = H S H^H + sigma^2 I
    gain = torch.linalg.solve(coupling, h @ spectrum, left=True).mH  # (M^-1 H S)^H = S H^H M^-1
    error = spectrum - gain @ h @ spectrum
    return gain, error


def wiener_mse(transfer: torch.Tensor, spectrum: torch.Tensor, noise_variance: float) -> torch.Tensor:
    """Closed-form MSE per pixel and channel of the best linear estimator (module docstring).

    ``transfer``: ``[C, H, W]`` OTF (:func:`otf`); ``spectrum``: ``[H, W, C, C]``
    (:func:`cross_spectrum`); ``noise_variance``: sigma^2 in image units^2. A real scalar.
    """
    _, error = _gain_and_error(transfer, spectrum, noise_variance)
    channels, pixels = spectrum.shape[-1], spectrum.shape[0] * spectrum.shape[1]
    return torch.diagonal(error, dim1=-2, dim2=-1).real.sum() / (channels * pixels)


def wiener_psnr_db(transfer: torch.Tensor, spectrum: torch.Tensor, noise_variance: float) -> torch.Tensor:
    """The best linear attacker's expected PSNR (dB, peak 1): ``-10 log10(MSE)``."""
    return -10 * torch.log10(wiener_mse(transfer, spectrum, noise_variance))


def wiener_restore(
    captures: torch.Tensor,
    transfer: torch.Tensor,
    spectrum: torch.Tensor,
    noise_variance: float,
    mean: torch.Tensor,
) -> torch.Tensor:
    """The best linear estimate of the scenes from circular captures ``[B, C, H, W]`` (not clipped).

    ``mean`` ``[C]`` is the scene mean the spectrum was measured around (a PSF summing to 1 maps it
    to itself).
    """
    gain, _ = _gain_and_error(transfer, spectrum, noise_variance)
    centred = captures - mean[None, :, None, None]
    spectra = torch.fft.fft2(centred).permute(0, 2, 3, 1)  # [B, H, W, C]
    estimate = torch.einsum("hwcd,bhwd->bhwc", gain, spectra).permute(0, 3, 1, 2)
    return torch.fft.ifft2(estimate).real + mean[None, :, None, None]


def wiener_privacy_db(scenes: torch.Tensor, psf: torch.Tensor, noise_variance: float) -> torch.Tensor:
    """The best linear attacker's PSNR (dB) on the captures of ``scenes`` ``[B, C, N, N]`` through
    ``psf`` ``[C, K, K]`` (circular model on the scenes' canvas, cross-spectrum from this batch).
    Differentiable in ``psf``: Stage I's ``objective: robust`` minimises it."""
    spectrum = cross_spectrum(scenes.detach().float())
    transfer = otf(psf.float(), tuple(scenes.shape[-2:]))
    return wiener_psnr_db(transfer, spectrum, noise_variance)
