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

from privlens.optics.camera import Camera


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
    """Settings of the attacker's training run."""

    steps: int = 300
    batch_size: int = 8
    learning_rate: float = 2e-3
    width: int = 16
    depth: int = 3
    seed: int = 0


def train_inversion(
    camera: Camera,
    images: torch.Tensor,
    settings: InversionTraining | None = None,
    quantise: bool = True,
    progress=None,
) -> InversionUNet:
    """Train an :class:`InversionUNet` on captures of ``images`` ``[N, 3, H, W]`` made by ``camera``.

    Augmentation: horizontal flips. The captures are quantised to 8 bits when ``quantise`` (what a
    stolen PNG holds). ``progress(step, loss)`` is called every step when given.
    """
    settings = settings or InversionTraining()
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    device = images.device
    model = InversionUNet(images.shape[1], settings.width, settings.depth).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    camera = camera.eval()
    with torch.no_grad():
        psf = camera.psf()
    model.train()
    for step in range(settings.steps):
        index = torch.randint(0, images.shape[0], (settings.batch_size,), generator=generator)
        batch = images[index.to(device)]
        flip = torch.rand(settings.batch_size, generator=generator) < 0.5
        batch = torch.where(flip.to(device)[:, None, None, None], batch.flip(-1), batch)
        with torch.no_grad():
            captures = camera.image(batch, psf)
            if quantise:
                captures = quantise_8bit(captures)
        loss = F.l1_loss(model(captures), batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress(step, float(loss))
    return model.eval()


def quantise_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit file."""
    return torch.round(images.clamp(0, 1) * 255) / 255


@torch.no_grad()
def invert(model: InversionUNet, captures: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Apply a trained inversion network in batches."""
    model.eval()
    return torch.cat([model(chunk) for chunk in captures.split(batch_size)])
