"""Image formation on the sensor: PSF convolution, read noise, linear response, large pixels.

All functions take images as float tensors ``[B, C, H, W]`` in [0, 1] and PSFs as ``[C, K, K]``
whose centre (the optical axis) is pixel ``(K // 2, K // 2)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def next_fast_fft_size(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast for every FFT backend)."""
    m = max(1, n)
    while True:
        rest = m
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return m
        m += 1


def linear_fft_size(image: int, kernel: int) -> int:
    """FFT length that makes a circular convolution equal the 'same' linear one on ``image`` pixels.

    With the kernel centred at ``c = kernel // 2``, wrap-around stays inside the zero padding when
    the length is at least ``max(image + kernel - 1 - c, image + c, kernel)`` (about
    ``image + kernel / 2``, not the ``image + kernel - 1`` of a full linear convolution).
    """
    centre = kernel // 2
    return next_fast_fft_size(max(image + kernel - 1 - centre, image + centre, kernel))


def psf_to_periodic(psf: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Place a centred PSF on a ``size`` canvas with its centre at index (0, 0), wrapping around.

    A PSF larger than the canvas is folded (periodic summation), so the result is exactly the
    kernel of the circular convolution on that canvas and still sums to the PSF's sum.
    """
    height, width = size
    k_h, k_w = psf.shape[-2:]
    tiles_h = -(-k_h // height)
    tiles_w = -(-k_w // width)
    padded = F.pad(psf, (0, tiles_w * width - k_w, 0, tiles_h * height - k_h))
    lead = padded.shape[:-2]
    folded = padded.reshape(*lead, tiles_h, height, tiles_w, width).sum(dim=(-4, -2))
    return torch.roll(folded, shifts=(-(k_h // 2), -(k_w // 2)), dims=(-2, -1))


def convolve(
    images: torch.Tensor, psf: torch.Tensor, mode: Literal["linear", "circular"] = "linear"
) -> torch.Tensor:
    """``H * x`` per channel via real FFTs.

    ``mode="linear"``: zero-padded (light leaving the frame is lost, none wraps in); ``"circular"``:
    the image is treated as periodic. ``psf`` is ``[C, K, K]`` or ``[B, C, K, K]``; its channels
    must match the images'. The output has the images' shape.
    """
    height, width = images.shape[-2:]
    k_h, k_w = psf.shape[-2:]
    if mode == "circular":
        fft_h, fft_w = height, width
        signal = images
    elif mode == "linear":
        fft_h, fft_w = linear_fft_size(height, k_h), linear_fft_size(width, k_w)
        signal = F.pad(images, (0, fft_w - width, 0, fft_h - height))
    else:
        raise ValueError(f"convolution mode must be 'linear' or 'circular', got {mode!r}")
    kernel = psf_to_periodic(psf.to(images.dtype), (fft_h, fft_w))
    spectrum = torch.fft.rfft2(signal) * torch.fft.rfft2(kernel)
    out = torch.fft.irfft2(spectrum, s=(fft_h, fft_w))
    return out[..., :height, :width]


def add_read_noise(
    images: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Additive white Gaussian read noise of standard deviation ``sigma`` (image units)."""
    if sigma <= 0:
        return images
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images + sigma * noise


def large_pixel_sensor(images: torch.Tensor, lowres_size: int) -> torch.Tensor:
    """A sensor of ``lowres_size x lowres_size`` large pixels: area average, shown back at full size.

    Each large pixel integrates the light falling on it (area downsampling); the result is
    replicated back to the input size (nearest), which is what such a sensor records. Attacks may
    upsample the low-resolution reading more cleverly (see ``privlens.attacks``).
    """
    height, width = images.shape[-2:]
    small = F.adaptive_avg_pool2d(images, (lowres_size, lowres_size))
    return F.interpolate(small, size=(height, width), mode="nearest")
