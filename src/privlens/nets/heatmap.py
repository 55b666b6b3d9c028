"""The face-heatmap network U: a FAN-style stacked hourglass with CoordConv layers.

Layout (after the FAN used by StarGAN v2, written from its description):

* stem: CoordConv 7x7 stride 2 -> BN -> ReLU -> residual block -> 2x2 average pool -> two
  residual blocks. Features are at 1/4 of the input resolution from here on (``stride`` 4, FAN's
  layout); with ``stride`` 2 the pool is left out and U works at 1/2 of the input resolution.
* ``num_stacks`` stages, each a 1x1 CoordConv, an hourglass of ``depth`` levels, a residual
  block, a 1x1 conv + BN + ReLU and a 1x1 head to ``num_landmarks + num_masks`` channels. Between
  stages, the features and the prediction are mapped back and added (intermediate supervision).

Conventions: input images are float ``[B, 3, H, W]`` RGB in [0, 1] (converted to [-1, 1] inside);
``H`` and ``W`` must be multiples of ``stride * 2**depth``. Output heatmaps are
``[B, K, H/stride, W/stride]`` with ``K = num_landmarks + num_masks``: channels
``0..num_landmarks-1`` are the landmarks (dlib order), then the aggregated face masks (coarse,
fine). Heatmaps are linear (no final activation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDES: tuple[int, ...] = (2, 4)


def add_coords(features: torch.Tensor) -> torch.Tensor:
    """Append three coordinate channels to ``[B, C, H, W]``: x and y in [-1, 1] (pixel centres,
    x along columns, y along rows) and the radius ``sqrt(x^2 + y^2) / sqrt(2)`` in [0, 1]."""
    b, _, h, w = features.shape
    ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=features.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=features.dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    rr = torch.sqrt(xx.square() + yy.square()) / (2.0**0.5)
    coords = torch.stack([xx, yy, rr]).unsqueeze(0).expand(b, -1, -1, -1)
    return torch.cat([features, coords], dim=1)


class CoordConv(nn.Module):
    """A convolution that sees its input plus the x, y and radius channels of :func:`add_coords`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding=kernel_size // 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv(add_coords(features))


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


class ResidualBlock(nn.Module):
    """Pre-activation block whose three 3x3 convs (``out/2``, ``out/4``, ``out/4`` channels) are
    concatenated, plus a shortcut (identity, or a 1x1 projection when the widths differ)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"residual block width must be a multiple of 4, got {out_channels}")
        half, quarter = out_channels // 2, out_channels // 4
        self.branch1 = _bn_relu_conv(in_channels, half, 3)
        self.branch2 = _bn_relu_conv(half, quarter, 3)
        self.branch3 = _bn_relu_conv(quarter, quarter, 3)
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else _bn_relu_conv(in_channels, out_channels, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        a = self.branch1(features)
        b = self.branch2(a)
        c = self.branch3(b)
        return torch.cat([a, b, c], dim=1) + self.shortcut(features)


class Hourglass(nn.Module):
    """Recursive hourglass: a full-resolution skip branch plus a pooled branch holding the next
    level (``depth`` levels in all), upsampled (nearest) and added back."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"hourglass depth must be at least 1, got {depth}")
        self.skip = ResidualBlock(channels, channels)
        self.down = ResidualBlock(channels, channels)
        self.inner: nn.Module = (
            Hourglass(depth - 1, channels) if depth > 1 else ResidualBlock(channels, channels)
        )
        self.up = ResidualBlock(channels, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.avg_pool2d(features, 2))))
        return self.skip(features) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class _Stage(nn.Module):
    def __init__(self, width: int, depth: int, out_channels: int, last: bool) -> None:
        super().__init__()
        self.coord = CoordConv(width, width, 1)
        self.hourglass = Hourglass(depth, width)
        self.block = ResidualBlock(width, width)
        self.features = nn.Sequential(
            nn.Conv2d(width, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.head = nn.Conv2d(width, out_channels, 1)
        self.remap = (
            None if last else nn.ModuleList([nn.Conv2d(width, width, 1), nn.Conv2d(out_channels, width, 1)])
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(self.block(self.hourglass(self.coord(x))))
        heatmaps = self.head(features)
        if self.remap is not None:
            x = x + self.remap[0](features) + self.remap[1](heatmaps)
        return x, heatmaps


class HeatmapNet(nn.Module):
    """FAN-style heatmap regressor U (see the module docstring for layout and conventions).

    Args:
        num_landmarks: landmark channels (68 for dlib's layout).
        num_masks: aggregated mask channels after the landmarks (2: coarse, fine).
        width: feature channels of the hourglasses (256 at paper scale; a multiple of 8).
        num_stacks: hourglasses stacked one after the other (StarGAN v2's FAN uses 1).
        depth: levels of each hourglass (4 in FAN).
        stride: input pixels per heatmap pixel, 4 (FAN) or 2 (finer heatmaps at about 2.3 times
            the compute; measured on 64 px faces in docs/training.md).
    """

    def __init__(
        self,
        num_landmarks: int = 68,
        num_masks: int = 2,
        width: int = 256,
        num_stacks: int = 1,
        depth: int = 4,
        stride: int = 4,
    ) -> None:
        super().__init__()
        if stride not in STRIDES:
            raise ValueError(f"stride must be one of {STRIDES}, got {stride}")
        if width < 8 or width % 8:
            raise ValueError(f"width must be a positive multiple of 8, got {width}")
        if num_stacks < 1:
            raise ValueError(f"num_stacks must be at least 1, got {num_stacks}")
        if num_landmarks < 1 or num_masks < 0:
            raise ValueError(f"need num_landmarks >= 1 and num_masks >= 0, got {num_landmarks}, {num_masks}")
        self.num_landmarks, self.num_masks = num_landmarks, num_masks
        self.width, self.num_stacks, self.depth, self.stride = width, num_stacks, depth, stride
        out_channels = num_landmarks + num_masks
        self.stem = nn.Sequential(
            CoordConv(3, width // 4, 7, stride=2),
            nn.BatchNorm2d(width // 4),
            nn.ReLU(inplace=True),
            ResidualBlock(width // 4, width // 2),
            nn.AvgPool2d(2) if stride == 4 else nn.Identity(),  # same module index either way
            ResidualBlock(width // 2, width // 2),
            ResidualBlock(width // 2, width),
        )
        self.stages = nn.ModuleList(
            [_Stage(width, depth, out_channels, last=i == num_stacks - 1) for i in range(num_stacks)]
        )

    @property
    def arch(self) -> dict[str, int]:
        """The constructor arguments, enough to rebuild the network (saved with its weights).
        ``stride`` is only listed when it is not FAN's 4, so files written before it existed match."""
        arch = {
            "num_landmarks": self.num_landmarks,
            "num_masks": self.num_masks,
            "width": self.width,
            "num_stacks": self.num_stacks,
            "depth": self.depth,
        }
        if self.stride != 4:
            arch["stride"] = self.stride
        return arch

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return self.stride * 2**self.depth

    def forward_stacks(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Heatmaps of every stack, ``[B, K, H/stride, W/stride]`` each; the last is the prediction."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images [B, 3, H, W], got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(
                f"image size {h}x{w} must be a multiple of {self.multiple} for an hourglass of depth "
                f"{self.depth}; resize the images or lower the depth"
            )
        x = self.stem(images * 2.0 - 1.0)
        outputs = []
        for stage in self.stages:
            x, heatmaps = stage(x)
            outputs.append(heatmaps)
        return outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` images in [0, 1] -> ``[B, K, H/stride, W/stride]`` heatmaps (last stack)."""
        return self.forward_stacks(images)[-1]
