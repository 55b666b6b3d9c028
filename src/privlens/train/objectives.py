"""Stage I objectives beyond the paper's Eq. 4 (``loss.objective`` of the Stage I config).

``robust``: the lens is trained against the best linear attacker. The paper's privacy term
``1 - ||x - y||^2`` (distortion of the capture, which a deconvolution can undo) is replaced by
``robust_weight * PSNR_W / 10``, where ``PSNR_W`` is the expected PSNR in dB of the Wiener
estimator that knows the PSF, the faces' cross-spectrum (from the batch) and the noise, in closed
form (:func:`privlens.attacks.wiener_bound.wiener_privacy_db`). The PSF term ``alpha1 ||H - H_f||``
and the heatmap term are kept, so ``alpha1 = 0`` leaves only privacy against utility.

Target: with ``robust_target_db`` set, the term is a hinge, ``robust_weight * max(PSNR_W - target,
0) / 10``: the lens is pushed towards privacy only until the Wiener attacker's PSNR reaches the
target, and from there the heatmap term alone moves it (towards what U reads best at that level of
privacy). Without it (null) the privacy gradient never stops, so the lens blurs further for as long
as it trains and the trade-off is set by the number of steps.

Adversary (``adversary_weight > 0``, beyond the Wiener bound): a small inversion U-Net
(:class:`privlens.attacks.inversion.InversionUNet`) trains in the loop on the lens's own noisy
captures (L1 to the scene, its own Adam), and the lens is trained to lower that network's PSNR,
``adversary_weight * PSNR_adv / 10`` (a min-max game; after ``adversary_warmup`` steps, so the
lens first meets a trained attacker). The closed form covers linear attackers only; a lens that
beats it can still be a blur a learned attacker inverts (benchmarks/RESULTS.md, issue 14).
``adversary_frontend: tikhonov`` gives that network the known-PSF attacker's first move as well
(:class:`DeconvolvingAdversary`: regularised least squares with the lens's current PSF and the
camera's exact forward model, 20 conjugate-gradient steps, learned regularisation, then the U-Net
on the result: the in-loop counterpart of the suite's ``rl+inversion``; on the shipped robust lens
the restoration alone reaches 19.3 dB on the held-out faces, Richardson–Lucy 19.2 dB after 990
iterations). Its deconvolution follows the lens at every step, so the lens cannot win the game by
only changing its PSF faster than a plain network relearns; ``none`` (default) is the plain U-Net
on the capture.

Noise: ``robust_noise`` is the standard deviation (image units) of the white noise the attacker
models, everything included. Set it to the sensor's: :func:`physical_noise_std` gives the
physical model's (:mod:`privlens.optics.noise`: shot noise at the faces' mean level, read noise,
ADC rounding) for a camera and image size; the shipped robust config uses it (0.0026 at 64 px,
the default sensor and the embedded faces' mean level 0.42).
"""

from __future__ import annotations

import math

import torch

from privlens.attacks.deconvolution import tikhonov_cg
from privlens.attacks.inversion import InversionUNet
from privlens.attacks.wiener_bound import wiener_privacy_db
from privlens.eval.quality import psnr
from privlens.optics.config import CameraConfig
from privlens.optics.noise import equivalent_variance, sensor_noise_for
from privlens.train.losses import Stage1Loss
from privlens.train.stage1_config import LossConfig


class DeconvolvingAdversary(torch.nn.Module):
    """In-loop attacker that knows the PSF: regularised least squares
    (:func:`privlens.attacks.deconvolution.tikhonov_cg`, the camera's exact forward model of
    ``mode``, ``iterations`` conjugate-gradient steps) with the lens's current PSF ``[C, K, K]``
    and a learned regularisation ``10 ** log10_lambda``, then an
    :class:`~privlens.attacks.inversion.InversionUNet` (residual, so it starts as the plain
    restoration). Images in [0, 1]."""

    def __init__(
        self,
        channels: int = 3,
        width: int = 8,
        depth: int = 3,
        log10_lambda: float = -4.0,
        iterations: int = 20,
        mode: str = "linear",
    ) -> None:
        super().__init__()
        self.log10_lambda = torch.nn.Parameter(torch.tensor(float(log10_lambda)))
        self.unet = InversionUNet(channels, width, depth)
        self.iterations, self.mode = iterations, mode

    def forward(self, capture: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
        lam = 10.0**self.log10_lambda
        return self.unet(tikhonov_cg(capture.float(), psf.float(), lam, self.iterations, self.mode))


def build_adversary(frontend: str, width: int, mode: str = "linear") -> torch.nn.Module:
    """The in-loop attacker of ``loss.adversary_frontend`` (``none`` or ``tikhonov``), U-Net width
    ``width``, for a camera whose ``convolution`` is ``mode``."""
    if frontend == "tikhonov":
        return DeconvolvingAdversary(3, width, mode=mode)
    if frontend == "none":
        return InversionUNet(3, width, 3)
    raise ValueError(f"adversary front-end must be none or tikhonov, got {frontend!r}")


def _estimate(adversary: torch.nn.Module, capture: torch.Tensor, psf: torch.Tensor | None) -> torch.Tensor:
    if isinstance(adversary, DeconvolvingAdversary):
        if psf is None:
            raise ValueError("a deconvolving adversary needs the lens's PSF")
        return adversary(capture.clamp(0, 1), psf)
    return adversary(capture.clamp(0, 1))


def adversary_psnr(
    adversary: torch.nn.Module, capture: torch.Tensor, scene: torch.Tensor, psf: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean PSNR (dB) of the adversary's estimate of ``scene`` from ``capture`` (and the PSF, for a
    :class:`DeconvolvingAdversary`); differentiable in the capture and the PSF (the lens) and in
    the adversary."""
    return psnr(_estimate(adversary, capture, psf), scene).mean()


def adversary_update(
    adversary: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    capture: torch.Tensor,
    scene: torch.Tensor,
    psf: torch.Tensor | None = None,
) -> float:
    """One attacker step on detached captures and PSF (the lens gets no gradient); returns its L1
    loss."""
    optimizer.zero_grad(set_to_none=True)
    detached_psf = None if psf is None else psf.detach()
    loss = torch.nn.functional.l1_loss(_estimate(adversary, capture.detach(), detached_psf), scene)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def physical_noise_std(config: CameraConfig, mean_level: float) -> float:
    """Std (image units) of white noise with the power of ``config``'s sensor noise at signal
    level ``mean_level``: shot + read noise and rounding of one capture pixel."""
    return math.sqrt(equivalent_variance(sensor_noise_for(config), mean_level))


def robust_losses(losses: Stage1Loss, scene: torch.Tensor, psf: torch.Tensor, loss: LossConfig) -> Stage1Loss:
    """``losses`` of Eq. 6 with the distortion term replaced by the attack-aware one (see above).

    ``losses.psf`` must already be ``||H - H_f||`` (scaled as configured); the ``optics`` field
    becomes ``robust_weight * PSNR_W / 10 + alpha1 * ||H - H_f||`` (``PSNR_W - robust_target_db``
    clipped at 0 when a target is set).
    """
    privacy = wiener_privacy_db(scene, psf, max(loss.robust_noise**2, 1e-12))
    if loss.robust_target_db is not None:
        privacy = (privacy - loss.robust_target_db).clamp_min(0.0)
    optics = loss.robust_weight * privacy / 10 + loss.alpha1 * losses.psf
    return losses._replace(total=loss.alpha2 * losses.heatmap + optics, optics=optics)
