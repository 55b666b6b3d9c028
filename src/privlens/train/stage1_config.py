"""Settings of Stage I (``privlens train heatmap|optics|lowres``) as typed dataclasses.

Loaded with :func:`privlens.train.config.load_config`; every key is documented in the README
(section "Stage I"). Units: Zernike coefficients and mirror limits in um of RMS wavefront,
``heatmap_sigma`` in heatmap pixels, image sizes in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    """Where the faces come from and how they are augmented."""

    root: str | None = None  # a folder written by `privlens data prepare` (--data sets it)
    image_size: int = 256
    crop_p: float = 0.5  # probability of the random resized crop (scale 0.8-1, aspect 0.9-1.1)
    flip_p: float = 0.5  # probability of a horizontal flip (landmark indices mirrored too)
    num_workers: int = 0  # DataLoader worker processes
    val_limit: int | None = None  # evaluate on at most this many validation faces


@dataclass
class NetConfig:
    """The heatmap network U and its targets."""

    width: int = 256
    num_stacks: int = 1
    depth: int = 4
    heatmap_sigma: float = 1.5  # Gaussian sigma of U*'s landmark channels, heatmap pixels
    mask_sigma_fraction: float = 0.04  # sigma of the coarse/fine masks, fraction of the heatmap side
    pretrained: str | None = None  # U weights (heatmap_net.safetensors) to start from
    lr: float = 1e-4  # Adam learning rate of U
    weight_decay: float = 0.0


@dataclass
class CameraSettings:
    """The learnable lens of Stage I (paper camera, see privlens.optics.CameraConfig)."""

    init: str = "open"  # starting lens: open, defocus, prototype, or a lens file
    num_terms: int = 15  # p, Noll terms 1..p
    frozen_terms: tuple[int, ...] = (1, 2, 3)  # piston, tip, tilt
    convolution: Literal["linear", "circular"] = "linear"
    noise_sigma: float = 0.0  # read noise in image units, training captures only
    lowres_size: int = 16  # large pixels per side of the `lowres` baseline sensor
    lr: float = 5e-4  # Adam learning rate of beta
    mirror_limit_um: float | None = None  # if set, |beta_j| <= limit after every step


@dataclass
class LossConfig:
    """L = (1 - ||x - y||^2) + alpha1 ||H - H_f||_2 + alpha2 ||U(y) - U*(x)||_1 (Eqs. 4-6)."""

    alpha1: float = 10.0
    alpha2: float = 2.0
    defocus_um: float = 0.5  # Noll-4 RMS (um) of the reference defocus PSF H_f


@dataclass
class TrainConfig:
    """Loop settings."""

    steps: int = 20000
    batch_size: int = 16  # per process
    seed: int = 0
    amp: Literal["auto", "bf16", "off"] = "auto"  # auto: bf16 autocast for U on CUDA
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    log_every: int = 10  # scalars to TensorBoard
    image_every: int = 500  # PSF and capture/heatmap grids to TensorBoard
    val_every: int = 500  # held-out heatmap loss (and NME)
    checkpoint_every: int = 500
    progress: bool = True


@dataclass
class Stage1Config:
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    camera: CameraSettings = field(default_factory=CameraSettings)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        multiple = 4 * 2**self.net.depth
        checks = [
            (
                self.data.image_size >= multiple and self.data.image_size % multiple == 0,
                "data.image_size",
                f"must be a multiple of {multiple} (4 * 2**net.depth), got {self.data.image_size}",
            ),
            (
                self.net.width >= 8 and self.net.width % 8 == 0,
                "net.width",
                f"must be a positive multiple of 8, got {self.net.width}",
            ),
            (self.net.depth >= 1, "net.depth", f"must be at least 1, got {self.net.depth}"),
            (self.net.num_stacks >= 1, "net.num_stacks", f"must be at least 1, got {self.net.num_stacks}"),
            (self.net.heatmap_sigma > 0, "net.heatmap_sigma", "must be positive"),
            (self.net.lr > 0, "net.lr", "must be positive"),
            (self.camera.lr > 0, "camera.lr", "must be positive"),
            (
                self.camera.num_terms >= 4,
                "camera.num_terms",
                f"must be at least 4, got {self.camera.num_terms}",
            ),
            (
                all(1 <= j <= self.camera.num_terms for j in self.camera.frozen_terms),
                "camera.frozen_terms",
                f"Noll indices must lie in 1..camera.num_terms={self.camera.num_terms}",
            ),
            (
                self.camera.mirror_limit_um is None or self.camera.mirror_limit_um > 0,
                "camera.mirror_limit_um",
                "must be positive or null",
            ),
            (
                1 <= self.camera.lowres_size <= self.data.image_size,
                "camera.lowres_size",
                "must lie in 1..data.image_size",
            ),
            (self.camera.noise_sigma >= 0, "camera.noise_sigma", "must be >= 0"),
            (self.train.steps >= 0, "train.steps", "must be >= 0"),
            (self.train.batch_size >= 1, "train.batch_size", "must be at least 1"),
            (0 <= self.data.crop_p <= 1, "data.crop_p", "must lie in [0, 1]"),
            (0 <= self.data.flip_p <= 1, "data.flip_p", "must lie in [0, 1]"),
            (self.data.num_workers >= 0, "data.num_workers", "must be >= 0"),
        ]
        for every in ("log_every", "image_every", "val_every", "checkpoint_every"):
            checks.append((getattr(self.train, every) >= 1, f"train.{every}", "must be at least 1"))
        for ok, key, message in checks:
            if not ok:
                raise ValueError(f"{key} {message}")
