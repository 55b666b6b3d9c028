"""Learned inversion: the attacker owns a copy of the camera and trains a U-Net on its captures.

The network maps a capture to an estimate of the scene. It is trained on (capture, original)
pairs that the attacker makes with the same camera from their own face images (never the
evaluation faces). Tiny on CPU (64 px, width 16, a few hundred steps: minutes), larger on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from privlens.attacks.capture import DEFAULT_NOISE, CaptureNoise, stored
from privlens.optics.camera import Camera

__all__ = [
    "InversionTraining",
    "InversionUNet",
    "augment",
    "invert",
    "train_inversion",
    "train_inversion_on_pairs",
]


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1),
        nn.GroupNorm(min(8, channels_out), channels_out),
        nn.SiLU(),
        nn.Conv2d(channels_out, channels_out, 3, padding=1),
        nn.GroupNorm(min(8, channels_out), channels_out),
        nn.SiLU(),
    )


class InversionUNet(nn.Module):
    """U-Net ``capture [B, 3, H, W] in [0, 1] -> scene estimate in [0, 1]``.

    ``depth`` down-sampling levels (H and W must be divisible by ``2**depth``), ``width``
    channels at the first level, doubling per level. Predicts a residual on the capture.
    """

    def __init__(self, channels: int = 3, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be positive, got depth={depth}, width={width}")
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = _block(channels, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], channels, 1)
        nn.init.zeros_(self.head.weight)  # start as the identity: the raw capture
        nn.init.zeros_(self.head.bias)

    def forward(self, captures: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        if captures.shape[-1] % factor or captures.shape[-2] % factor:
            raise ValueError(f"image sides must be divisible by {factor}, got {tuple(captures.shape[-2:])}")
        x = captures * 2 - 1
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.avg_pool2d(skips[-1], 2)))
        h = skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return ((x + self.head(h)).clamp(-1, 1) + 1) / 2


@dataclass
class InversionTraining:
    """Settings of the attacker's training run.

    Training stops at ``steps`` or earlier when the PSNR on the attacker's validation faces has
    not improved for ``patience`` checks (one every ``check_every`` steps), but never before
    ``min_steps`` (a hard problem can sit on a plateau early on); the best weights are kept.
    ``noise``: the sensor noise of the training captures (as the evaluated ones; the camera's
    physical model by default, :mod:`privlens.attacks.capture`).
    """

    steps: int = 300
    batch_size: int = 8
    learning_rate: float = 2e-3
    width: int = 16
    depth: int = 3
    seed: int = 0
    check_every: int = 100
    patience: int = 5
    min_steps: int = 0
    noise: CaptureNoise = DEFAULT_NOISE


def augment(batch: torch.Tensor, generator: torch.Generator, shift: int = 4) -> torch.Tensor:
    """Attacker's augmentation: horizontal flip, shift up to ``shift`` px (edge fill), +-10 %
    contrast and +-0.05 brightness; stays in [0, 1]."""
    n = batch.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(-1), batch)
    if shift:
        padded = F.pad(batch, (shift,) * 4, mode="replicate")
        dy, dx = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=generator))
        batch = padded[..., dy : dy + batch.shape[-2], dx : dx + batch.shape[-1]]
    contrast = 1 + 0.2 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    bright = 0.1 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    return ((batch - mean) * contrast.to(batch.device) + mean + bright.to(batch.device)).clamp(0, 1)


def train_inversion(
    camera: Camera,
    images: torch.Tensor,
    settings: InversionTraining | None = None,
    progress=None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> InversionUNet:
    """Train an :class:`InversionUNet` on captures of ``images`` ``[N, 3, H, W]`` made by ``camera``.

    Fresh augmented captures every step (see :func:`augment`), stored as the sensor stores them
    with ``settings.noise`` (shot and read noise, ADC rounding). ``validation``: the
    attacker's held-out ``(captures, originals)`` for early stopping and picking the best weights.
    ``progress(step, loss)`` is called every step when given.
    """
    settings = settings or InversionTraining()
    generator = torch.Generator().manual_seed(settings.seed)
    device = images.device
    camera = camera.eval()
    with torch.no_grad():
        psf = camera.psf()

    def batch_of(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, images.shape[0], (settings.batch_size,), generator=generator)
        batch = augment(images[index.to(device)], generator)
        with torch.no_grad():
            return stored(camera, camera.image(batch, psf), settings.noise, generator), batch

    return _fit(images.shape[1], device, batch_of, settings, progress, validation)


def train_inversion_on_pairs(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    settings: InversionTraining | None = None,
    progress=None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> InversionUNet:
    """Train an :class:`InversionUNet` from ``inputs`` to ``targets`` (both ``[N, 3, H, W]``):
    fixed pairs, e.g. the attacker's own captures after a deconvolution (the hybrid attack of
    :mod:`privlens.attacks.suite`, where deconvolving fresh captures every step would cost more
    than the training). Batches are drawn uniformly; early stopping as :func:`train_inversion`."""
    if inputs.shape != targets.shape or inputs.dim() != 4:
        raise ValueError(
            f"inputs and targets must share one [N, 3, H, W] shape, got {tuple(inputs.shape)} "
            f"and {tuple(targets.shape)}"
        )
    settings = settings or InversionTraining()
    generator = torch.Generator().manual_seed(settings.seed)

    def batch_of(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, inputs.shape[0], (settings.batch_size,), generator=generator)
        index = index.to(inputs.device)
        return inputs[index], targets[index]

    return _fit(inputs.shape[1], inputs.device, batch_of, settings, progress, validation)


def _fit(channels, device, batch_of, settings: InversionTraining, progress, validation) -> InversionUNet:
    """The training loop: L1, Adam with cosine decay over ``settings.steps``, a validation PSNR
    check every ``check_every`` steps, stop after ``patience`` checks without a 0.01 dB gain (not
    before ``min_steps``), keep the best weights."""
    from privlens.eval.quality import psnr

    torch.manual_seed(settings.seed)
    model = InversionUNet(channels, settings.width, settings.depth).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    best_psnr, best_state, stale = float("-inf"), None, 0
    self_check = validation is not None
    model.train()
    step = -1
    for step in range(settings.steps):
        inputs, targets = batch_of(step)
        loss = F.l1_loss(model(inputs), targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress(step, float(loss.detach()))
        if self_check and ((step + 1) % settings.check_every == 0 or step + 1 == settings.steps):
            value = float(psnr(invert(model, validation[0]), validation[1]).mean())
            model.train()
            if value > best_psnr + 0.01:
                stale = 0
            else:
                stale += 1
            if value > best_psnr:
                best_psnr = value
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if stale >= settings.patience and step + 1 >= settings.min_steps:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.trained_steps = step + 1  # type: ignore[attr-defined]
    model.validation_psnr = best_psnr  # type: ignore[attr-defined]
    return model.eval()


@torch.no_grad()
def invert(model: InversionUNet, captures: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Apply a trained inversion network in batches."""
    model.eval()
    return torch.cat([model(chunk) for chunk in captures.split(batch_size)])
