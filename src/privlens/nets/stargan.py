"""Stage II networks after StarGAN v2 (Choi et al., CVPR 2020), written from its description.

* :class:`Generator` G with its inversion encoder E: ``G(y, m, s)`` encodes the capture ``y`` into
  the latent feature map ``ȳ = E(y)`` (plus skip features), then decodes it with residual blocks
  whose instance norms are modulated by the style code ``s`` (AdaIN). With ``w_hpf > 0`` the
  encoder's features at 1/8, 1/4 and 1/2 of the image side are high-pass filtered, gated by the
  face masks of the heatmap ``m`` and added to the decoder (StarGAN v2's "heatmap-gated high-pass
  skip connections"): the coarse mask at 1/8, the fine mask at 1/4 and 1/2.
* :class:`MappingNetwork` F: latent ``z`` [B, latent_dim] -> style [B, style_dim] (shared MLP,
  then one head per domain).
* :class:`StyleEncoder` S: image -> style (shared convolutional trunk, one linear head per domain).
* :class:`Discriminator` D: image -> one real/fake logit per domain; ``forward`` returns the
  logit of each sample's domain.

Conventions:

* Images in and out are float ``[B, 3, H, W]`` in [0, 1] (converted to [-1, 1] inside). The
  generator's output is bounded with ``(tanh(v) + 1) / 2``; StarGAN v2 leaves it unbounded and
  clips when saving, but here the output feeds the camera, LPIPS and D, which expect [0, 1].
* ``heatmaps`` is exactly what :class:`privlens.nets.HeatmapNet` returns for the captures:
  ``[B, 68 + 2, H/4, W/4]``. G reads only the two mask channels ``mask_channels`` (default 68 =
  coarse face mask, 69 = fine eyes-and-nose mask, see :mod:`privlens.faces.heatmaps`), clamped to
  [0, 1] and resized bilinearly to each skip's resolution. The 68 landmark channels are unused.
* Domains are integer labels ``LongTensor[B]`` indexing the per-domain heads.
* Initialisation: every network applies :func:`he_init` when built (He/kaiming normal, fan-in,
  ReLU gain, zero biases), as StarGAN v2 and the paper's released code do. With PyTorch's
  default init the eight-layer MLP F shrinks its input about sqrt(6) times per layer, so F(z)
  barely varies with z and S(x) barely with x; He init keeps both at a usable spread.
* Image sides are powers of two, at least 32. Widths: the first convolution has ``base_width``
  channels (StarGAN v2: ``2**14 // image_size``, 64 at 256 px), doubling at every down-sampling
  up to ``max_width`` (512).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 64
LATENT_DIM = 16


GENERATOR_CONTENTS = ("capture", "warp")  # what G's encoder reads, see Generator


def reads_warps(generator: nn.Module) -> bool:
    """Whether ``generator`` encodes warped references (``content="warp"``) rather than the
    capture; a stand-in module without the attribute reads the capture."""
    return getattr(generator, "content", "capture") == "warp"


def default_base_width(image_size: int) -> int:
    """StarGAN v2's first-layer width for an image side: ``2**14 // image_size`` (64 at 256 px)."""
    return max(2**14 // image_size, 1)


def he_init(module: nn.Module) -> None:
    """He (kaiming) normal init for one module: conv and linear weights ``N(0, 2 / fan_in)``,
    biases 0 (StarGAN v2's ``he_init``). Use with ``net.apply(he_init)``."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _check_size(image_size: int) -> int:
    if image_size < 32 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two, at least 32, got {image_size}")
    return int(math.log2(image_size))


def _check_widths(base_width: int, max_width: int) -> None:
    if base_width < 1 or max_width < base_width:
        raise ValueError(f"need 1 <= base_width <= max_width, got {base_width}, {max_width}")


def _check_images(images: torch.Tensor, image_size: int, what: str = "images") -> None:
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"{what} must be [B, 3, {image_size}, {image_size}] in [0, 1], got shape {tuple(images.shape)}"
        )


def _check_domains(domains: torch.Tensor, batch: int, num_domains: int) -> torch.Tensor:
    if domains.dim() != 1 or domains.shape[0] != batch or domains.dtype != torch.long:
        raise ValueError(f"domains must be a LongTensor[{batch}], got {domains.dtype} {tuple(domains.shape)}")
    return domains


def _select(per_domain: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
    """``per_domain [B, D, ...]`` -> ``[B, ...]``: each sample's entry of its own domain."""
    index = domains.view(-1, *([1] * (per_domain.dim() - 1))).expand(-1, 1, *per_domain.shape[2:])
    return per_domain.gather(1, index).squeeze(1)


class ResBlock(nn.Module):
    """Pre-activation residual block: (IN) -> LeakyReLU(0.2) -> 3x3 conv -> (2x2 avg pool) ->
    (IN) -> LeakyReLU -> 3x3 conv, plus a shortcut (1x1 conv when widths differ, pooled when
    down-sampling); the sum is divided by sqrt(2) to keep unit variance."""

    def __init__(
        self, in_channels: int, out_channels: int, normalize: bool = False, downsample: bool = False
    ):
        super().__init__()
        self.downsample = downsample
        self.norm1 = nn.InstanceNorm2d(in_channels, affine=True) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.norm2 = nn.InstanceNorm2d(in_channels, affine=True) if normalize else nn.Identity()
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        if self.downsample:
            skip = F.avg_pool2d(skip, 2)
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        return (skip + h) / math.sqrt(2.0)


class AdaIN(nn.Module):
    """Adaptive instance norm: ``(1 + gamma(s)) * IN(x) + beta(s)``, gamma and beta linear in ``s``."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(style)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdaINResBlock(nn.Module):
    """Decoder block: AdaIN -> LeakyReLU -> (nearest 2x up-sampling) -> 3x3 conv -> AdaIN ->
    LeakyReLU -> 3x3 conv. Without skip connections (``use_shortcut``) the shortcut (up-sampled,
    1x1 conv when widths differ) is added and the sum divided by sqrt(2); with them (w_hpf > 0)
    the block's own shortcut is left out, as in StarGAN v2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        upsample: bool = False,
        use_shortcut: bool = True,
    ) -> None:
        super().__init__()
        self.upsample, self.use_shortcut = upsample, use_shortcut
        self.norm1 = AdaIN(style_dim, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = AdaIN(style_dim, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, bias=False)
            if use_shortcut and in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.norm1(x, style), 0.2)
        if self.upsample:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), style), 0.2))
        if not self.use_shortcut:
            return h
        skip = F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x
        if self.shortcut is not None:
            skip = self.shortcut(skip)
        return (skip + h) / math.sqrt(2.0)


class HighPass(nn.Module):
    """Depthwise 3x3 high-pass filter ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf`` (zero padding)."""

    def __init__(self, w_hpf: float) -> None:
        super().__init__()
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        self.register_buffer("kernel", kernel / w_hpf, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=x.shape[1])


class InversionEncoder(nn.Module):
    """E: image in [0, 1] -> latent feature map ``ȳ`` plus the features cached for the skips.

    ``forward(images) -> (latent, skips)``; ``skips`` maps a feature side (image/8, /4, /2) to the
    encoder features at that side, taken before the block that halves it (empty when
    ``skip_sizes`` is empty)."""

    def __init__(
        self, image_size: int, base_width: int, max_width: int, num_down: int, skip_sizes: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.image_size, self.skip_sizes = image_size, skip_sizes
        self.from_rgb = nn.Conv2d(3, base_width, 3, 1, 1)
        blocks, widths = [], [base_width]
        width = base_width
        for _ in range(num_down):
            out = min(width * 2, max_width)
            blocks.append(ResBlock(width, out, normalize=True, downsample=True))
            width = out
            widths.append(width)
        for _ in range(2):  # bottleneck
            blocks.append(ResBlock(width, width, normalize=True))
        self.blocks = nn.ModuleList(blocks)
        self.widths = widths  # channels after from_rgb and after each down-sampling

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        _check_images(images, self.image_size)
        x = self.from_rgb(images * 2.0 - 1.0)
        skips: dict[int, torch.Tensor] = {}
        for block in self.blocks:
            if x.shape[-1] in self.skip_sizes and x.shape[-1] not in skips:
                skips[x.shape[-1]] = x
            x = block(x)
        return x, skips


class Generator(nn.Module):
    """G(E(y), m, s): the reference-guided generator with its inversion encoder ``self.encoder``.

    Args:
        image_size: side of the images (power of two, >= 32; 256 in the paper, 64 in tests).
        style_dim: size of the style code (64).
        base_width: channels of the first convolution (default ``2**14 // image_size``).
        max_width: widest feature map (512).
        w_hpf: weight of the high-pass skip connections (the filter is divided by it); 0 turns
            them off and the heatmaps may then be ``None``.
        mask_channels: the heatmap channels (coarse, fine) that gate the skips.
        content: what the encoder reads. ``capture`` (the paper): the camera's capture ``y``.
            ``warp`` (beyond the paper): the reference warped onto the landmarks U decodes from
            ``y`` (:func:`privlens.anonymize.warp.warp_reference`), so G never sees the capture's
            pixels and cannot reuse the identity they still carry; U's heatmaps still gate the
            skips. The network is the same; callers pass the content ``arch["content"]`` names.
        residual: (``content="warp"`` only) the output is the content plus a correction,
            ``clamp(c + tanh(to_rgb(h)), 0, 1)``, with the correction's last convolution
            zero-initialised, so an untrained G returns the warp it reads and training learns
            what to change. Refused with ``content="capture"``: that G would start from the
            capture, i.e. from the identity the lens lets through.

    ``forward(captures, heatmaps, styles) -> images``: captures (or, with ``content="warp"``, the
    warped references) ``[B, 3, N, N]`` in [0, 1],
    heatmaps ``[B, K, N/4, N/4]`` as :class:`HeatmapNet` returns them, styles ``[B, style_dim]``;
    new faces ``[B, 3, N, N]`` in [0, 1].
    """

    def __init__(
        self,
        image_size: int = 256,
        style_dim: int = STYLE_DIM,
        base_width: int | None = None,
        max_width: int = 512,
        w_hpf: float = 1.0,
        mask_channels: tuple[int, int] = (68, 69),
        content: str = "capture",
        residual: bool = False,
    ) -> None:
        super().__init__()
        log2 = _check_size(image_size)
        if content not in GENERATOR_CONTENTS:
            raise ValueError(f"content must be one of {', '.join(GENERATOR_CONTENTS)}, got {content!r}")
        if residual and content != "warp":
            raise ValueError(
                "residual needs content='warp' (a residual on the capture starts from its identity)"
            )
        self.content, self.residual = content, bool(residual)
        base_width = default_base_width(image_size) if base_width is None else base_width
        _check_widths(base_width, max_width)
        if w_hpf < 0:
            raise ValueError(f"w_hpf must be >= 0, got {w_hpf}")
        self.image_size, self.style_dim = image_size, style_dim
        self.base_width, self.max_width, self.w_hpf = base_width, max_width, float(w_hpf)
        self.mask_channels = (int(mask_channels[0]), int(mask_channels[1]))
        num_down = log2 - 4 + (1 if w_hpf > 0 else 0)  # down to 16 px, or 8 px with the skips
        skip_sizes = (
            tuple(
                s for s in (image_size // 8, image_size // 4, image_size // 2) if s > image_size >> num_down
            )
            if w_hpf > 0
            else ()
        )
        self.skip_sizes = skip_sizes
        self.encoder = InversionEncoder(image_size, base_width, max_width, num_down, skip_sizes)
        widths = self.encoder.widths
        use_shortcut = w_hpf == 0
        decode = [
            AdaINResBlock(widths[-1], widths[-1], style_dim, use_shortcut=use_shortcut) for _ in range(2)
        ]
        for i in range(num_down, 0, -1):
            decode.append(
                AdaINResBlock(widths[i], widths[i - 1], style_dim, upsample=True, use_shortcut=use_shortcut)
            )
        self.decode = nn.ModuleList(decode)
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(base_width, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(base_width, 3, 1)
        )
        self.hpf = HighPass(w_hpf) if w_hpf > 0 else None
        self.apply(he_init)
        if self.residual:  # an untrained residual G returns its content unchanged
            nn.init.zeros_(self.to_rgb[2].weight)
            nn.init.zeros_(self.to_rgb[2].bias)

    @property
    def arch(self) -> dict:
        """The constructor arguments (saved with the weights)."""
        return {
            "image_size": self.image_size,
            "style_dim": self.style_dim,
            "base_width": self.base_width,
            "max_width": self.max_width,
            "w_hpf": self.w_hpf,
            "mask_channels": list(self.mask_channels),
            "content": self.content,
            "residual": self.residual,
        }

    def masks(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coarse and fine masks ``[B, 1, h, w]`` in [0, 1] from U's heatmaps."""
        if heatmaps.dim() != 4 or heatmaps.shape[1] <= max(self.mask_channels):
            raise ValueError(
                f"heatmaps must be [B, K, h, w] with K > {max(self.mask_channels)} (HeatmapNet's output), "
                f"got shape {tuple(heatmaps.shape)}"
            )
        coarse, fine = self.mask_channels
        return heatmaps[:, coarse : coarse + 1].clamp(0, 1), heatmaps[:, fine : fine + 1].clamp(0, 1)

    def decode_latent(
        self,
        latent: torch.Tensor,
        skips: dict[int, torch.Tensor],
        heatmaps: torch.Tensor | None,
        styles: torch.Tensor,
        content: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The decoder half: ``ȳ`` (and the encoder's skip features) -> images in [0, 1];
        a ``residual`` G adds its correction to ``content`` (what the encoder read)."""
        if styles.dim() != 2 or styles.shape != (latent.shape[0], self.style_dim):
            raise ValueError(
                f"styles must be [{latent.shape[0]}, {self.style_dim}], got {tuple(styles.shape)}"
            )
        masks = None
        if self.hpf is not None:
            if heatmaps is None:
                raise ValueError("heatmaps are required when w_hpf > 0")
            masks = self.masks(heatmaps)
        x = latent
        for block in self.decode:
            x = block(x, styles)
            side = x.shape[-1]
            if masks is not None and side in skips:
                mask = masks[0] if side == self.image_size // 8 else masks[1]
                mask = F.interpolate(
                    mask.to(x.dtype), size=x.shape[-2:], mode="bilinear", align_corners=False
                )
                x = x + self.hpf(mask * skips[side])
        if self.residual:
            if content is None:
                raise ValueError("a residual generator needs its content to add the correction to")
            return (content + torch.tanh(self.to_rgb(x))).clamp(0.0, 1.0)
        return (torch.tanh(self.to_rgb(x)) + 1.0) / 2.0

    def forward(
        self, captures: torch.Tensor, heatmaps: torch.Tensor | None, styles: torch.Tensor
    ) -> torch.Tensor:
        latent, skips = self.encoder(captures)
        return self.decode_latent(latent, skips, heatmaps, styles, captures)


class MappingNetwork(nn.Module):
    """F: latent ``z`` ``[B, latent_dim]`` and domains -> styles ``[B, style_dim]``.

    A shared MLP (four linear layers of ``hidden`` units, ReLU) and, per domain, three more
    hidden layers and a linear projection to the style."""

    def __init__(
        self,
        latent_dim: int = LATENT_DIM,
        style_dim: int = STYLE_DIM,
        num_domains: int = 2,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"num_domains must be at least 1, got {num_domains}")
        self.latent_dim, self.style_dim, self.num_domains, self.hidden = (
            latent_dim,
            style_dim,
            num_domains,
            hidden,
        )
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleList()
        for _ in range(num_domains):
            head: list[nn.Module] = []
            for _ in range(3):
                head += [nn.Linear(hidden, hidden), nn.ReLU()]
            head.append(nn.Linear(hidden, style_dim))
            self.heads.append(nn.Sequential(*head))
        self.apply(he_init)

    @property
    def arch(self) -> dict:
        return {
            "latent_dim": self.latent_dim,
            "style_dim": self.style_dim,
            "num_domains": self.num_domains,
            "hidden": self.hidden,
        }

    def forward(self, latents: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        if latents.dim() != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"latents must be [B, {self.latent_dim}], got {tuple(latents.shape)}")
        _check_domains(domains, latents.shape[0], self.num_domains)
        h = self.shared(latents)
        per_domain = torch.stack([head(h) for head in self.heads], dim=1)  # [B, D, style_dim]
        return _select(per_domain, domains)


class _Trunk(nn.Module):
    """Shared convolutional body of S and D: 3x3 conv, down-sampling residual blocks to 4 px,
    LeakyReLU, 4x4 valid conv, LeakyReLU -> ``[B, width]``."""

    def __init__(self, image_size: int, base_width: int, max_width: int) -> None:
        super().__init__()
        log2 = _check_size(image_size)
        _check_widths(base_width, max_width)
        layers: list[nn.Module] = [nn.Conv2d(3, base_width, 3, 1, 1)]
        width = base_width
        for _ in range(log2 - 2):
            out = min(width * 2, max_width)
            layers.append(ResBlock(width, out, downsample=True))
            width = out
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.width = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images * 2.0 - 1.0).flatten(1)


class StyleEncoder(nn.Module):
    """S: images in [0, 1] and domains -> styles ``[B, style_dim]`` (one linear head per domain)."""

    def __init__(
        self,
        image_size: int = 256,
        style_dim: int = STYLE_DIM,
        num_domains: int = 2,
        base_width: int | None = None,
        max_width: int = 512,
    ) -> None:
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"num_domains must be at least 1, got {num_domains}")
        base_width = default_base_width(image_size) if base_width is None else base_width
        self.image_size, self.style_dim, self.num_domains = image_size, style_dim, num_domains
        self.base_width, self.max_width = base_width, max_width
        self.trunk = _Trunk(image_size, base_width, max_width)
        self.heads = nn.Linear(self.trunk.width, num_domains * style_dim)  # all heads in one matmul
        self.apply(he_init)

    @property
    def arch(self) -> dict:
        return {
            "image_size": self.image_size,
            "style_dim": self.style_dim,
            "num_domains": self.num_domains,
            "base_width": self.base_width,
            "max_width": self.max_width,
        }

    def forward(self, images: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_size)
        _check_domains(domains, images.shape[0], self.num_domains)
        per_domain = self.heads(self.trunk(images)).view(images.shape[0], self.num_domains, self.style_dim)
        return _select(per_domain, domains)


class Discriminator(nn.Module):
    """D: images in [0, 1] and domains -> real/fake logits ``[B]`` (one output per domain, each
    sample's own domain selected)."""

    def __init__(
        self, image_size: int = 256, num_domains: int = 2, base_width: int | None = None, max_width: int = 512
    ) -> None:
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"num_domains must be at least 1, got {num_domains}")
        base_width = default_base_width(image_size) if base_width is None else base_width
        self.image_size, self.num_domains = image_size, num_domains
        self.base_width, self.max_width = base_width, max_width
        self.trunk = _Trunk(image_size, base_width, max_width)
        self.head = nn.Linear(self.trunk.width, num_domains)
        self.apply(he_init)

    @property
    def arch(self) -> dict:
        return {
            "image_size": self.image_size,
            "num_domains": self.num_domains,
            "base_width": self.base_width,
            "max_width": self.max_width,
        }

    def forward(self, images: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_size)
        _check_domains(domains, images.shape[0], self.num_domains)
        return _select(self.head(self.trunk(images)), domains)
