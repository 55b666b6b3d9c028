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


def convolution_fft_shape(
    image_shape: tuple[int, int], kernel_shape: tuple[int, int], mode: Literal["linear", "circular"]
) -> tuple[int, int]:
    """The FFT canvas of :func:`convolve`: the image itself (circular) or the padded size (linear)."""
    if mode == "circular":
        return image_shape
    if mode == "linear":
        return linear_fft_size(image_shape[0], kernel_shape[0]), linear_fft_size(
            image_shape[1], kernel_shape[1]
        )
    raise ValueError(f"convolution mode must be 'linear' or 'circular', got {mode!r}")


def kernel_spectrum(psf: torch.Tensor, fft_shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """``rfft2`` of the PSF wrapped onto the FFT canvas (the OTF :func:`convolve` multiplies by)."""
    return torch.fft.rfft2(psf_to_periodic(psf.to(dtype), fft_shape))


CHUNK_VALUES = 3 * 2**20
"""Values of FFT canvas per chunk when no kernel gradient is needed: batches are filtered a few
images at a time so the spectra stay in cache (about 2x faster on the CPU at batch 64)."""


def _filter_in_chunks(images: torch.Tensor, spectrum: torch.Tensor, fft_h: int, fft_w: int) -> torch.Tensor:
    """``irfft2(rfft2(x, s) * K)[..., :H, :W]``, a few images at a time into one output tensor.

    With padding (linear mode) the transforms are separable and pruned: the row transform skips
    the zero rows of the padding and the inverse column transform keeps only the output rows.
    """
    height, width = images.shape[-2:]
    out = torch.empty_like(images)
    per_image = max(1, images[0].numel() // (height * width)) * fft_h * fft_w
    # on a GPU one launch for the whole batch is faster: no chunks there
    step = max(1, CHUNK_VALUES // per_image) if images.device.type == "cpu" else images.shape[0]
    padded = (fft_h, fft_w) != (height, width)
    for start in range(0, images.shape[0], step):
        chunk = images[start : start + step]
        if padded:
            z = torch.fft.fft(torch.fft.rfft(chunk, n=fft_w, dim=-1), n=fft_h, dim=-2).mul_(spectrum)
            rows = torch.fft.ifft(z, dim=-2)[..., :height, :]
            out[start : start + step] = torch.fft.irfft(rows, n=fft_w, dim=-1)[..., :width]
        else:
            z = torch.fft.rfft2(chunk).mul_(spectrum)
            out[start : start + step] = torch.fft.irfft2(z, s=(height, width))
    return out


class _SpectralConvolution(torch.autograd.Function):
    """``irfft2(rfft2(x, s) * K)[..., :H, :W]`` with a hand-written backward.

    Backward uses the correlation theorem for real signals: the kernel's gradient is
    ``irfft2(sum_b rfft2(g) * conj(X))`` and the images' ``irfft2(rfft2(g) * conj(K))``: one batch
    FFT, against the three passes and extra copies that autograd spends through ``irfft2``.
    """

    @staticmethod
    def forward(ctx, images, spectrum, fft_h: int, fft_w: int):  # type: ignore[override]
        height, width = images.shape[-2:]
        ctx.fft = (fft_h, fft_w)
        ctx.out = (height, width)
        ctx.spectrum_shape = spectrum.shape
        needs_kernel = ctx.needs_input_grad[1]
        if not needs_kernel and spectrum.dim() < 4 and images.dim() == 4:
            ctx.save_for_backward(None, spectrum if ctx.needs_input_grad[0] else None)
            return _filter_in_chunks(images, spectrum, fft_h, fft_w)
        signal = torch.fft.rfft2(images, s=(fft_h, fft_w))
        ctx.save_for_backward(signal if needs_kernel else None, spectrum if ctx.needs_input_grad[0] else None)
        product = signal * spectrum if needs_kernel else signal.mul_(spectrum)
        out = torch.fft.irfft2(product, s=(fft_h, fft_w))
        if (fft_h, fft_w) != (height, width):
            out = out[..., :height, :width].contiguous()
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        signal, spectrum = ctx.saved_tensors
        fft_h, fft_w = ctx.fft
        grad_spectrum = torch.fft.rfft2(grad, s=(fft_h, fft_w))
        grad_images = grad_kernel = None
        if ctx.needs_input_grad[0]:
            height, width = ctx.out
            grad_images = torch.fft.irfft2(grad_spectrum * spectrum.conj(), s=(fft_h, fft_w))
            grad_images = grad_images[..., :height, :width]
        if ctx.needs_input_grad[1]:
            # the correlation spectrum sum_b G conj(X): _KernelToSpectrum turns it into the real
            # kernel's gradient (the only producer of a spectrum that requires grad)
            grad_kernel = grad_spectrum.mul_(signal.conj()).sum_to_size(ctx.spectrum_shape)
        return grad_images, grad_kernel, None, None


class _KernelToSpectrum(torch.autograd.Function):
    """``rfft2`` of a real periodic kernel, whose backward takes the correlation spectrum that
    :class:`_SpectralConvolution` returns and gives the real gradient ``irfft2(S)``."""

    @staticmethod
    def forward(ctx, kernel):  # type: ignore[override]
        ctx.shape = kernel.shape[-2:]
        return torch.fft.rfft2(kernel)

    @staticmethod
    def backward(ctx, correlation):  # type: ignore[override]
        return torch.fft.irfft2(correlation, s=tuple(ctx.shape))


def convolve_spectrum(
    images: torch.Tensor, spectrum: torch.Tensor, fft_shape: tuple[int, int]
) -> torch.Tensor:
    """Convolve with a precomputed :func:`kernel_spectrum` (e.g. cached while the PSF is fixed).

    Gradients flow to the images; the spectrum is a constant (detached).
    """
    return _SpectralConvolution.apply(images, spectrum.detach(), fft_shape[0], fft_shape[1])


def convolve(
    images: torch.Tensor, psf: torch.Tensor, mode: Literal["linear", "circular"] = "linear"
) -> torch.Tensor:
    """``H * x`` per channel via real FFTs.

    ``mode="linear"``: zero-padded (light leaving the frame is lost, none wraps in); ``"circular"``:
    the image is treated as periodic. ``psf`` is ``[C, K, K]`` or ``[B, C, K, K]``; its channels
    must match the images'. The output has the images' shape.
    """
    fft_shape = convolution_fft_shape(tuple(images.shape[-2:]), tuple(psf.shape[-2:]), mode)
    kernel = psf_to_periodic(psf.to(images.dtype), fft_shape)
    spectrum = _KernelToSpectrum.apply(kernel) if kernel.requires_grad else torch.fft.rfft2(kernel)
    return _SpectralConvolution.apply(images, spectrum, fft_shape[0], fft_shape[1])


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
