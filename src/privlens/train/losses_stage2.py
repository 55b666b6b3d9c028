"""Stage II losses (Lopez et al. 2024, Eqs. 7-13, after StarGAN v2) as plain functions.

Notation: x the private source, y = camera(x) its capture, m = U(y) its heatmap, ȳ = E(y),
r (and r2) references of the target domain t, s̃ = S(r, t) or F(z, t) the target style,
x̃ = G(ȳ, m, s̃) the new face.

* Adversarial, non-saturating: D minimises ``softplus(-D_t(r)) + softplus(D_t(x̃))`` plus
  ``lambda_reg`` times the R1 penalty ``0.5 * E ||grad_r D_t(r)||^2`` on its real images. **The
  real images are the references r, never the source x** (the paper's privacy choice: nothing
  trained adversarially ever sees the private faces). G minimises ``softplus(-D_t(x̃))``.
* Style reconstruction ``||s̃ - S(x̃, t)||_1``; diversity ``||x̃ - x̃2||_1`` (x̃2 from a second
  style, detached; maximised with a weight decaying linearly to 0 over ``ds_iter`` steps).
* Cycle ``||y - G(E(x̃), m̂, ŝ)||_1`` with ŝ = S(y, source domain) and m̂ = U*(x̃). dlib cannot
  run inside the loop, so m̂ is the frozen U applied to the camera's capture of x̃, computed
  without gradient (as StarGAN v2 computes its masks): U was trained on captures, so this is the
  input it knows, and it is what inference does.
* LPIPS between r and x̃ (reference-guided steps, where x̃ carries r's style), with the real
  ``lpips`` package and ImageNet backbone weights; see :func:`build_perceptual_loss`.
* Warp target (beyond the paper, ``lambda_warp``, off by default): ``||x̃ - W(r; l_r -> l_x)||_1``
  on reference-guided steps, where ``W`` warps the reference r piecewise-affinely so that its
  landmarks ``l_r`` land on the source's ``l_x`` (:func:`privlens.anonymize.warp.warp_reference`,
  done in the data loader). The target is a new face with the source's pose and expression made
  only of the reference's pixels: a dense pairing signal that StarGAN v2's unpaired losses lack,
  which lets a short run learn where to put the reference's appearance. The source's landmarks
  are training labels (dlib's, augmented with the image); no source pixel enters the target.
* Expression (heatmap) consistency, as the authors' released training computes it: the L1
  distance between U's heatmaps of the new face seen through the camera, ``U(camera(x̃))``, and
  the heatmaps of the source's capture, ``m = U(y)``, on the landmark channels only (the two
  face-mask channels are left out). Gradients flow through the frozen camera and U into x̃.
  It compares where the landmarks are, not what the face looks like, so it carries expression
  and pose without pulling x̃ towards the private source's pixels. (Eq. 12 as printed,
  ``||m*⊙x - m⊙y||_1``, has no path to G; the pixel reading ``||m*⊙x - m⊙x̃||_1`` that privlens
  used before pulls the whole face towards the source, i.e. trains G to deblur the identity.)
  The authors add an optical-flow term (RAFT between the masked source and x̃, weight 10); it
  is left out here: it compares x̃ with the private source's pixels inside the face mask (what
  the heatmap term avoids), and RAFT's weights are a download.

All means are per element (``mean`` over batch, channels and pixels), computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from privlens.train.config import ConfigError


def d_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's non-saturating loss: ``E softplus(-D(r)) + E softplus(D(x̃))``."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def g_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's non-saturating loss ``E softplus(-D(x̃))``."""
    return F.softplus(-fake_logits.float()).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """``0.5 * E_b ||d D(r_b) / d r_b||^2`` (``real_images`` must require grad; keeps the graph
    so that the penalty itself can be back-propagated into D)."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return 0.5 * grad.float().square().flatten(1).sum(1).mean()


def style_reconstruction(target_style: torch.Tensor, recovered_style: torch.Tensor) -> torch.Tensor:
    """``||s̃ - S(x̃)||_1``."""
    return (target_style.float() - recovered_style.float()).abs().mean()


def diversity(fake: torch.Tensor, fake2: torch.Tensor) -> torch.Tensor:
    """``||x̃ - x̃2||_1`` (``fake2`` is detached here, as in StarGAN v2)."""
    return (fake.float() - fake2.detach().float()).abs().mean()


def diversity_weight(step: int, lambda_ds: float, ds_iter: int) -> float:
    """The diversity weight at ``step`` (0-based): ``lambda_ds * max(0, 1 - step / ds_iter)``."""
    return lambda_ds * max(0.0, 1.0 - step / ds_iter)


def cycle(capture: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """``||y - G(E(x̃), m̂, ŝ)||_1``."""
    return (capture.float() - reconstruction.float()).abs().mean()


def heatmap_consistency(
    fake_heatmaps: torch.Tensor, heatmaps: torch.Tensor, num_landmarks: int
) -> torch.Tensor:
    """``mean |U(camera(x̃)) - U(y)|`` over the first ``num_landmarks`` channels (per element).

    ``fake_heatmaps`` carries the gradient (U applied to the camera's capture of x̃);
    ``heatmaps`` is the target ``m`` and is detached."""
    if fake_heatmaps.shape != heatmaps.shape or heatmaps.shape[1] < num_landmarks:
        raise ValueError(
            f"heatmaps must share one shape with at least {num_landmarks} channels, got "
            f"{tuple(fake_heatmaps.shape)} and {tuple(heatmaps.shape)}"
        )
    fake = fake_heatmaps[:, :num_landmarks].float()
    return (fake - heatmaps[:, :num_landmarks].detach().float()).abs().mean()


def warp_target(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |x̃ - W(r; l_r -> l_x)|`` (per element; ``target`` is a data-loader image, no gradient)."""
    if fake.shape != target.shape:
        raise ValueError(
            f"warp targets must match the outputs' shape {tuple(fake.shape)}, got {tuple(target.shape)}"
        )
    return (fake.float() - target.detach().float()).abs().mean()


class PerceptualLoss(nn.Module):
    """A frozen perceptual distance ``forward(a, b) -> [B]`` for images in [0, 1]; ``name`` is what
    it is logged as (``lpips``, or the stand-in's own name)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.name = name

    def train(self, mode: bool = True) -> PerceptualLoss:  # the backbone always stays in eval mode
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.autocast(a.device.type, enabled=False):
            return self.model(a.float(), b.float(), normalize=True).flatten()


def build_perceptual_loss(
    net: str = "alex", weights: str | None = None, substitute: str = "none", seed: int = 0
) -> PerceptualLoss:
    """LPIPS for training: the ``lpips`` package's v0.1 linear heads on torchvision's ImageNet
    backbone (a local file ``weights`` or ``$PRIVLENS_LPIPS_BACKBONE``, else torchvision's
    cache/download, see :func:`privlens.eval.perceptual.load_lpips`).

    When that is unavailable, raise :class:`ConfigError` explaining the choices, unless
    ``substitute == "random-backbone"`` names the stand-in explicitly: the same linear heads on a
    backbone initialised randomly from ``seed`` (logged as ``lpips_random_backbone``, never as
    LPIPS). The real LPIPS is never replaced silently.
    """
    if substitute == "random-backbone":
        import warnings

        import lpips

        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        finally:
            torch.random.set_rng_state(state)
        return PerceptualLoss(model, "lpips_random_backbone")
    if substitute != "none":
        raise ConfigError(f"loss.lpips_substitute: unknown stand-in {substitute!r} (none, random-backbone)")
    from privlens.eval.perceptual import load_lpips
    from privlens.eval.weights import MetricUnavailableError, WeightsFileError

    try:
        model = load_lpips(net, weights)
    except (MetricUnavailableError, WeightsFileError) as error:
        raise ConfigError(
            f"loss.lambda_lpips > 0 needs LPIPS with its ImageNet {net} backbone, which is unavailable: "
            f"{error}. Give the backbone file with loss.lpips_weights=FILE (or $PRIVLENS_LPIPS_BACKBONE), "
            "set loss.lambda_lpips=0, or choose the named stand-in loss.lpips_substitute=random-backbone "
            "(not LPIPS: random backbone features)"
        ) from error
    return PerceptualLoss(model, "lpips")
