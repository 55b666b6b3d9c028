"""Non-blind deconvolution attacks: the attacker measured the PSF (imaged a point source).

Both attacks work batched on tensors with FFTs. Wiener is a periodic (frequency-domain) filter:
the capture is extended by ``K // 2`` pixels on each side with edge replication (the attacker's
standard guard against ringing), filtered and cropped back. Richardson–Lucy iterates the camera's
exact forward model, zero-padded borders included.
Captures ``[B, C, H, W]`` in [0, 1]; PSF ``[C, K, K]`` centred at ``(K // 2, K // 2)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from privlens.optics.sensor import linear_fft_size, next_fast_fft_size, psf_to_periodic


def _extend(
    captures: torch.Tensor, psf: torch.Tensor, padding: str = "replicate"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the captures to a fast FFT size; return the canvas and the crop offset."""
    height, width = captures.shape[-2:]
    margin = psf.shape[-1] // 2
    size_h = next_fast_fft_size(height + 2 * margin)
    size_w = next_fast_fft_size(width + 2 * margin)
    top, left = (size_h - height) // 2, (size_w - width) // 2
    pad = (left, size_w - width - left, top, size_h - height - top)
    return F.pad(captures, pad, mode=padding), (top, left)


def _crop(canvas: torch.Tensor, offset: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    top, left = offset
    return canvas[..., top : top + size[0], left : left + size[1]]


def _otf(psf: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    return torch.fft.rfft2(psf_to_periodic(psf.to(dtype), shape))


def wiener_deconvolve(
    captures: torch.Tensor,
    psf: torch.Tensor,
    regularisation: float | torch.Tensor,
    padding: str = "replicate",
) -> torch.Tensor:
    """Wiener filter ``X = conj(H) Y / (|H|^2 + lambda)`` per channel, clipped to [0, 1].

    ``regularisation`` (lambda, the noise-to-signal power ratio) is a float, or a tensor of
    several values: then the output gains a leading dimension, one restoration per lambda,
    sharing the FFTs.
    """
    size = captures.shape[-2:]
    canvas, offset = _extend(captures, psf, padding)
    spectrum = torch.fft.rfft2(canvas)
    otf = _otf(psf, canvas.shape[-2:], canvas.dtype)
    power = otf.real.square() + otf.imag.square()
    lambdas = torch.as_tensor(regularisation, dtype=canvas.dtype, device=canvas.device)
    if lambdas.dim() == 0:
        restored = torch.fft.irfft2(spectrum * otf.conj() / (power + lambdas), s=canvas.shape[-2:])
        return _crop(restored, offset, size).clamp(0, 1)
    outputs = []
    for value in lambdas:
        restored = torch.fft.irfft2(spectrum * otf.conj() / (power + value), s=canvas.shape[-2:])
        outputs.append(_crop(restored, offset, size).clamp(0, 1))
    return torch.stack(outputs)


def blur_operator(
    psf: torch.Tensor, size: tuple[int, int], mode: str = "linear"
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """The camera's exact image formation ``A`` and its adjoint ``A^T`` for one PSF and image size.

    ``mode="linear"``: ``A x`` = the frame of the zero-padded convolution (what
    :func:`privlens.optics.sensor.convolve` computes); ``"circular"``: periodic convolution.
    Both share one OTF; ``A^T`` multiplies by its conjugate.
    """
    height, width = size
    if mode == "linear":
        fft_h, fft_w = linear_fft_size(height, psf.shape[-2]), linear_fft_size(width, psf.shape[-1])
    elif mode == "circular":
        fft_h, fft_w = height, width
    else:
        raise ValueError(f"mode must be 'linear' or 'circular', got {mode!r}")
    otf = torch.fft.rfft2(psf_to_periodic(psf, (fft_h, fft_w)))

    def apply(images: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        padded = F.pad(images, (0, fft_w - width, 0, fft_h - height))
        return torch.fft.irfft2(torch.fft.rfft2(padded) * transfer, s=(fft_h, fft_w))[..., :height, :width]

    return (lambda x: apply(x, otf)), (lambda r: apply(r, otf.conj()))


def richardson_lucy(
    captures: torch.Tensor,
    psf: torch.Tensor,
    iterations: int,
    snapshots: list[int] | None = None,
    mode: str = "linear",
    eps: float = 1e-6,
) -> torch.Tensor:
    """Richardson–Lucy deconvolution with the camera's exact forward model, clipped to [0, 1].

    ``x <- x * A^T(y / A x) / A^T 1`` (maximum likelihood under Poisson noise) with ``A`` from
    :func:`blur_operator` (``mode`` as the camera's ``convolution`` setting): light that left the
    frame is modelled, not guessed. Starts from the capture. With ``snapshots`` (iteration counts
    <= ``iterations``) returns ``[len(snapshots), B, C, H, W]`` from one run.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    forward, adjoint = blur_operator(psf.to(captures.dtype), captures.shape[-2:], mode)
    observed = captures.clamp_min(0)
    normaliser = adjoint(torch.ones_like(observed[:1])).clamp_min(eps)
    estimate = observed.clamp_min(1e-3)
    wanted = set(snapshots or [])
    kept = []
    for step in range(1, iterations + 1):
        estimate = estimate * adjoint(observed / forward(estimate).clamp_min(eps)) / normaliser
        if step in wanted:
            kept.append(estimate.clamp(0, 1))
    if snapshots:
        return torch.stack(kept)
    return estimate.clamp(0, 1)
