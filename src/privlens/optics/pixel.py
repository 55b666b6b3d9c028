"""Pixel-area integration of the PSF, the same at every image size.

Model. A scene image of pitch ``P`` is a mosaic of uniformly bright squares of side ``P``, and
each sensor pixel integrates the light over its own square of side ``P``. The discrete kernel is
therefore the PSF convolved with both squares (per axis a triangle of base ``2P``, whose Fourier
transform is ``sinc^2(f P)``), sampled at the pixel centres. With this model a capture does not
depend on the image size: a 64 px capture of a scene constant over 4x4 blocks equals the 4x-binned
256 px capture.

Numerics. :mod:`privlens.optics.psf` computes the intensity on a periodic grid fine enough to
hold its whole band, so the triangle is applied exactly, as the factor :func:`pixel_response` on
its discrete Fourier transform; sampling at the pixel pitch then folds that spectrum onto the
pixel grid (:func:`fold_index`), and one small inverse FFT gives the pixel values.
"""

from __future__ import annotations

import math

import torch

INTENSITY_BAND_FRACTION = 0.45
"""Largest fraction of the fine grid's Nyquist band that the intensity may occupy."""


def samples_per_pixel(
    image_pitch_m: float, wavelength_min_m: float, distance_m: float, radius_m: float
) -> int:
    """Fine intensity samples per image pixel (per side) for an intensity band of ``2R/(lambda z)``.

    The incoherent cut-off of a pupil of radius ``R`` at distance ``z`` is ``2R / (lambda z)``
    cycles per metre; the fine pitch is at most ``INTENSITY_BAND_FRACTION`` of its Nyquist
    pitch (2 samples per pixel for the paper camera at 256 px, 7 at 64 px).
    """
    pitch_limit = INTENSITY_BAND_FRACTION * wavelength_min_m * distance_m / (2 * radius_m)
    return max(1, math.ceil(image_pitch_m / pitch_limit - 1e-9))


def pixel_response(size: int, period_px: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[M, M]`` factor ``sinc^2(f_y P) sinc^2(f_x P)`` on an ``fft2`` grid of ``M = size`` bins.

    Bin ``k`` (signed, :func:`torch.fft.fftfreq` order) is the frequency ``k / period``; one pixel
    is ``period / period_px``, so ``f P = k / period_px``.
    """
    bins = torch.fft.fftfreq(size, 1.0 / size, dtype=torch.float64)
    response = torch.sinc(bins / period_px) ** 2
    return (response[:, None] * response[None]).to(dtype)


def fold_index(size: int, period_px: int) -> torch.Tensor:
    """Pixel-grid bin (``k mod period_px``) of each of the ``size`` signed spectrum bins.

    Sampling at the pixel pitch folds the spectrum onto ``period_px`` bins (the sensor's own
    aliasing, which is physical)."""
    bins = torch.fft.fftfreq(size, 1.0 / size).round().long()
    return bins % period_px
