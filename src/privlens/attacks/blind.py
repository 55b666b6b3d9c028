"""The blind attacker: no PSF is handed over; it is estimated from captures of a known target.

Whoever holds the camera (or one of the same model) can photograph a printed calibration target.
The target is coloured white noise in the centre of the frame with a black margin of a quarter
side, so the blurred pattern stays inside the frame for PSFs up to that radius and the capture is
exactly the circular convolution of target and PSF. The attacker averages ``frames`` stored
captures (the sensor's shot and read noise, ADC rounding) and divides spectra with Tikhonov
regularisation ``eps``:

    K = Y conj(T) / (|T|^2 + eps),

subtracts the estimation-noise floor, keeps the non-negative part, and normalises each channel to
sum 1. ``eps`` and the floor are chosen by the attacker on their own faces (best Wiener
restoration), like every other attack parameter.
"""

from __future__ import annotations

import torch

from privlens.attacks.capture import DEFAULT_NOISE, CaptureNoise, sensor_captures
from privlens.optics.camera import Camera


def calibration_target(size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """``[channels, size, size]``: uniform noise in [0, 1] inside, black margin of ``size // 4``."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.zeros(channels, size, size)
    margin = size // 4
    inner = size - 2 * margin
    target[:, margin : margin + inner, margin : margin + inner] = torch.rand(
        channels, inner, inner, generator=generator
    )
    return target


def estimate_psf(capture: torch.Tensor, target: torch.Tensor, eps: float, floor: float = 3.0) -> torch.Tensor:
    """Centred PSF estimate ``[C, H, W]`` from a (mean) capture and the target, both ``[C, H, W]``.

    Values less than ``floor`` robust noise levels (1.4826 x median absolute value) are dropped.
    """
    if capture.shape != target.shape:
        raise ValueError(f"capture {tuple(capture.shape)} and target {tuple(target.shape)} differ")
    spectrum_t = torch.fft.fft2(target.double())
    kernel = torch.fft.ifft2(
        torch.fft.fft2(capture.double()) * spectrum_t.conj() / (spectrum_t.abs().square() + eps)
    ).real
    kernel = torch.fft.fftshift(kernel, dim=(-2, -1))
    # noise floor: the PSF covers a small part of the canvas, so the median absolute value per
    # channel measures the estimation noise; keep only what stands ``floor`` noise levels above it
    level = 1.4826 * kernel.abs().flatten(-2).median(dim=-1).values[:, None, None]
    kernel = (kernel - floor * level).clamp_min(0)
    # fftshift puts index 0 at (H // 2, W // 2): the centre convention of every PSF here
    return (kernel / kernel.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).to(capture.dtype)


def capture_target(
    camera: Camera, frames: int = 64, noise: CaptureNoise = DEFAULT_NOISE, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean capture, target)``: ``frames`` stored captures of the target (``noise``), averaged."""
    size = camera.config.image_size
    target = calibration_target(size, 3, seed)
    repeated = target[None].expand(frames, -1, -1, -1).contiguous()
    captures = sensor_captures(camera, repeated, noise, seed=seed + 1)
    return captures.mean(dim=0), target
