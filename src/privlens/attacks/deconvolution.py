"""Non-blind deconvolution attacks: the attacker measured the PSF (imaged a point source).

Both attacks work batched on tensors with FFTs. Wiener is a periodic (frequency-domain) filter:
the capture is extended by ``K // 2`` pixels on each side with edge replication (the attacker's
standard guard against ringing), filtered and cropped back. Richardson–Lucy iterates the camera's
exact forward model, zero-padded borders included; so does the regularised least-squares
restoration (:func:`tikhonov_cg`, conjugate gradients), which reaches in 20 iterations what
Richardson–Lucy reaches in about a thousand and is differentiable in the PSF (Stage I's in-loop
attacker uses it).
Captures ``[B, C, H, W]`` in [0, 1]; PSF ``[C, K, K]`` centred at ``(K // 2, K // 2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from privlens.eval.quality import psnr
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
    sharing the FFTs (:func:`wiener_restorations` yields them one at a time instead).
    """
    lambdas = torch.as_tensor(regularisation, dtype=captures.dtype, device=captures.device)
    restored = list(wiener_restorations(captures, psf, lambdas.reshape(-1), padding))
    return restored[0] if lambdas.dim() == 0 else torch.stack(restored)


def wiener_restorations(
    captures: torch.Tensor, psf: torch.Tensor, lambdas: torch.Tensor, padding: str = "replicate"
) -> Iterator[torch.Tensor]:
    """:func:`wiener_deconvolve` for each value of ``lambdas`` in turn (one FFT of the captures;
    only one restoration held at a time)."""
    size = captures.shape[-2:]
    canvas, offset = _extend(captures, psf, padding)
    spectrum = torch.fft.rfft2(canvas)
    otf = _otf(psf, canvas.shape[-2:], canvas.dtype)
    power = otf.real.square() + otf.imag.square()
    filtered = spectrum * otf.conj()
    shape = canvas.shape[-2:]
    del canvas, spectrum
    for value in lambdas:
        restored = torch.fft.irfft2(filtered / (power + value), s=shape)
        yield _crop(restored, offset, size).clamp(0, 1)


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
    monitor: Callable[[int, torch.Tensor], bool] | None = None,
) -> torch.Tensor:
    """Richardson–Lucy deconvolution with the camera's exact forward model, clipped to [0, 1].

    ``x <- x * A^T(y / A x) / A^T 1`` (maximum likelihood under Poisson noise) with ``A`` from
    :func:`blur_operator` (``mode`` as the camera's ``convolution`` setting): light that left the
    frame is modelled, not guessed. Starts from the capture. With ``snapshots`` (iteration counts
    <= ``iterations``) returns ``[len(snapshots), B, C, H, W]`` from one run. ``monitor(step,
    estimate)`` is called after every iteration; returning ``True`` stops the run there.
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
        if monitor is not None and monitor(step, estimate):
            break
    if snapshots:
        return torch.stack(kept)
    return estimate.clamp(0, 1)


def tikhonov_cg(
    captures: torch.Tensor,
    psf: torch.Tensor,
    regularisation: float | torch.Tensor,
    iterations: int = 20,
    mode: str = "linear",
) -> torch.Tensor:
    """Regularised least squares with the camera's exact forward model, clipped to [0, 1].

    Minimises ``||A x - y||^2 + lambda ||x - m||^2`` per image (``A`` from :func:`blur_operator`,
    so light that left the frame is modelled; ``m`` the capture's per-channel mean, the prior
    level) by ``iterations`` steps of conjugate gradients on the normal equations
    ``(A^T A + lambda) x = A^T y + lambda m``, starting from the capture. Differentiable in the
    captures, the PSF and ``lambda`` (a float or a 0-d tensor).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    forward, adjoint = blur_operator(psf.to(captures.dtype), captures.shape[-2:], mode)
    dims = (-3, -2, -1)
    prior = captures.mean(dim=(-2, -1), keepdim=True)
    estimate = captures
    residual = adjoint(captures - forward(estimate)) + regularisation * (prior - estimate)
    direction = residual
    power = residual.square().sum(dim=dims, keepdim=True)
    for _ in range(iterations):
        applied = adjoint(forward(direction)) + regularisation * direction
        step = power / (direction * applied).sum(dim=dims, keepdim=True).clamp_min(1e-20)
        estimate = estimate + step * direction
        residual = residual - step * applied
        new_power = residual.square().sum(dim=dims, keepdim=True)
        direction = residual + new_power / power.clamp_min(1e-20) * direction
        power = new_power
    return estimate.clamp(0, 1)


class PlateauStop:
    """Stopping rule for an iterative attack tuned on the attacker's own validation faces.

    Every ``check_every`` iterations the PSNR of the current estimate against the attacker's
    originals is measured; the run stops when it has not improved by more than ``min_gain_db``
    for ``patience`` checks in a row, or at ``max_iterations`` (a generous cap, not the usual
    answer). ``best`` is the iteration count with the highest PSNR seen, ``history`` every check.
    """

    def __init__(
        self,
        originals: torch.Tensor,
        check_every: int = 10,
        patience: int = 5,
        max_iterations: int = 5000,
        min_gain_db: float = 0.01,
    ) -> None:
        if check_every < 1 or patience < 1 or max_iterations < 1:
            raise ValueError("check_every, patience and max_iterations must be >= 1")
        self.originals = originals
        self.check_every, self.patience = check_every, patience
        self.max_iterations, self.min_gain_db = max_iterations, min_gain_db
        self.history: dict[int, float] = {}
        self.best, self.best_psnr, self._stale = 0, float("-inf"), 0
        self.stopped_by = "cap"

    def __call__(self, step: int, estimate: torch.Tensor) -> bool:
        if step >= self.max_iterations:
            self._check(step, estimate)
            return True
        if step % self.check_every:
            return False
        if self._check(step, estimate) >= self.patience:
            self.stopped_by = "plateau"
            return True
        return False

    def measure(self, step: int, estimate: torch.Tensor) -> float:
        """Mean PSNR (dB) of the estimate against the attacker's originals."""
        return float(psnr(estimate.clamp(0, 1), self.originals).mean())

    def _check(self, step: int, estimate: torch.Tensor) -> int:
        value = self.measure(step, estimate)
        self.history[step] = value
        if value > self.best_psnr + self.min_gain_db:
            self._stale = 0
        else:
            self._stale += 1
        if value > self.best_psnr:
            self.best, self.best_psnr = step, value
        return self._stale


def richardson_lucy_stopping(
    captures: torch.Tensor,
    originals: torch.Tensor,
    psf: torch.Tensor,
    rule: PlateauStop,
    mode: str = "linear",
) -> PlateauStop:
    """Run Richardson–Lucy on the attacker's captures until ``rule`` stops it; return the rule
    (its ``best`` iteration count is what the attacker then uses on the evaluated captures)."""
    rule.originals = originals
    richardson_lucy(captures, psf, rule.max_iterations, mode=mode, monitor=rule)
    return rule
