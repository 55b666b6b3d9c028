"""Stage I objectives beyond the paper's Eq. 4 (``loss.objective`` of the Stage I config).

``robust``: the lens is trained against the best linear attacker. The paper's privacy term
``1 - ||x - y||^2`` (distortion of the capture, which a deconvolution can undo) is replaced by
``robust_weight * PSNR_W / 10``, where ``PSNR_W`` is the expected PSNR in dB of the Wiener
estimator that knows the PSF, the faces' cross-spectrum (from the batch) and the noise level
(``robust_noise``, image units, 8-bit quantisation added), in closed form
(:func:`privlens.attacks.wiener_bound.wiener_privacy_db`). The PSF term ``alpha1 ||H - H_f||``
and the heatmap term are kept, so ``alpha1 = 0`` leaves only privacy against utility.
"""

from __future__ import annotations

import torch

from privlens.attacks.wiener_bound import QUANTISATION_VARIANCE, wiener_privacy_db
from privlens.train.losses import Stage1Loss
from privlens.train.stage1_config import LossConfig


def robust_losses(losses: Stage1Loss, scene: torch.Tensor, psf: torch.Tensor, loss: LossConfig) -> Stage1Loss:
    """``losses`` of Eq. 6 with the distortion term replaced by the attack-aware one (see above).

    ``losses.psf`` must already be ``||H - H_f||`` (scaled as configured); the ``optics`` field
    becomes ``robust_weight * PSNR_W / 10 + alpha1 * ||H - H_f||``.
    """
    privacy = wiener_privacy_db(scene, psf, loss.robust_noise**2 + QUANTISATION_VARIANCE)
    optics = loss.robust_weight * privacy / 10 + loss.alpha1 * losses.psf
    return losses._replace(total=loss.alpha2 * losses.heatmap + optics, optics=optics)
