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
    crop_p: float = 0.0  # probability of the random resized crop (scale 0.8-1, aspect 0.9-1.1)
    flip_p: float = 0.5  # probability of a horizontal flip (landmark indices mirrored too)
    rotate_deg: float = 15.0  # random rotation within +- this many degrees (landmarks follow)
    scale_jitter: float = 0.15  # random scale within 1 +- this (log-uniform)
    shift_fraction: float = 0.08  # random shift within +- this fraction of the image side
    colour: float = 0.5  # colour jitter strength in [0, 1] (brightness, contrast, saturation, gamma)
    shape_mix_p: float = 0.0  # probability of warping a face onto a geometry mixed with another's
    num_workers: int = 0  # DataLoader worker processes
    val_limit: int | None = None  # evaluate on at most this many validation faces


@dataclass
class NetConfig:
    """The heatmap network U and its targets."""

    width: int = 256
    num_stacks: int = 1
    depth: int = 4
    stride: int | None = None  # input pixels per heatmap pixel: 4 (FAN) or 2; null: net.pretrained's, else 4
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
    noise_sigma: float = 0.0  # legacy additive Gaussian noise in image units, training captures only
    sensor_noise: bool = False  # physical sensor model (shot + read noise, 10-bit ADC), privlens.optics.noise
    # photo-electrons at full scale per sensor pixel (sensor_noise only); null: the lens file's
    # (a stopped-down lens made with `lens create --exposure same` collects less), 4000 for presets
    full_scale_e: float | None = None
    lowres_size: int = 16  # large pixels per side of the `lowres` baseline sensor
    lr: float = 5e-4  # Adam learning rate of beta
    mirror_limit_um: float | None = None  # if set, |beta_j| <= limit after every step


OBJECTIVES: tuple[str, ...] = ("paper", "robust")
"""Stage I objectives: ``paper`` is Eqs. 4-6 (with the heatmap options below); ``robust``
replaces the distortion term by the best linear attacker's PSNR (:mod:`privlens.train.objectives`)."""


@dataclass
class LossConfig:
    """L = (1 - ||x - y||^2) + alpha1 ||H - H_f||_2 + alpha2 L_heatmap (Eqs. 4-6).

    ``heatmap``, ``foreground_weight`` and ``coord_weight`` choose L_heatmap (``l1`` with no
    weighting and no coordinate term is the paper's Eq. 5); ``psf_norm: open`` divides
    ||H - H_f|| by ||H_open - H_f|| (see :mod:`privlens.train.losses`)."""

    objective: str = "paper"
    robust_weight: float = 1.0  # objective robust: weight of PSNR_W / 10 (dB of the Wiener attacker)
    robust_noise: float = 0.01  # objective robust: the attacker's noise std, image units
    robust_target_db: float | None = None  # objective robust: push PSNR_W down to here only (null: no floor)
    adversary_weight: float = 0.0  # objective robust: weight of the in-loop inversion's PSNR / 10 (0: off)
    adversary_width: int = 8  # its U-Net width (privlens.attacks.inversion.InversionUNet, depth 3)
    adversary_lr: float = 0.002  # its Adam learning rate (follows train.lr_schedule)
    adversary_warmup: int = 0  # steps the adversary trains before the lens feels it
    adversary_frontend: Literal["none", "tikhonov"] = "none"  # tikhonov: deconvolve with the PSF first
    alpha1: float = 10.0
    alpha2: float = 2.0
    defocus_um: float = 0.5  # Noll-4 RMS (um) of the reference defocus PSF H_f
    heatmap: Literal["l1", "mse"] = "mse"
    foreground_weight: float = 10.0  # extra weight near the landmark Gaussians (0: none)
    coord_weight: float = 0.05  # soft-argmax coordinate term, per heatmap pixel (0: none)
    psf_norm: Literal["none", "open"] = "none"


@dataclass
class TrainConfig:
    """Loop settings."""

    steps: int = 20000
    max_seconds: float | None = None  # time box: stop after this many seconds, save as at the end
    batch_size: int = 16  # per process
    seed: int = 0
    amp: Literal["auto", "bf16", "off"] = "auto"  # auto: bf16 autocast for U on CUDA
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    log_every: int = 10  # scalars to TensorBoard
    image_every: int = 500  # PSF and capture/heatmap grids to TensorBoard
    val_every: int = 500  # held-out heatmap loss (and NME)
    checkpoint_every: int = 500
    progress: bool = True
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: every lr decays to lr_final_fraction
    lr_final_fraction: float = 0.05  # of the base lr at the last step (cosine only)


@dataclass
class Stage1Config:
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    camera: CameraSettings = field(default_factory=CameraSettings)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        stride = self.net.stride or 4
        multiple = stride * 2**self.net.depth
        checks = [
            (
                self.data.image_size >= multiple and self.data.image_size % multiple == 0,
                "data.image_size",
                f"must be a multiple of {multiple} (net.stride * 2**net.depth), got {self.data.image_size}",
            ),
            (
                self.net.width >= 8 and self.net.width % 8 == 0,
                "net.width",
                f"must be a positive multiple of 8, got {self.net.width}",
            ),
            (self.net.depth >= 1, "net.depth", f"must be at least 1, got {self.net.depth}"),
            (
                self.net.stride in (None, 2, 4),
                "net.stride",
                f"must be 2, 4 or null, got {self.net.stride}",
            ),
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
            (
                self.camera.full_scale_e is None or self.camera.full_scale_e > 0,
                "camera.full_scale_e",
                "must be positive or null",
            ),
            (
                self.loss.objective in OBJECTIVES,
                "loss.objective",
                f"must be one of {', '.join(OBJECTIVES)}, got {self.loss.objective!r}",
            ),
            (
                self.loss.robust_target_db is None or self.loss.robust_target_db > 0,
                "loss.robust_target_db",
                "must be positive (dB) or null",
            ),
            (self.loss.adversary_weight >= 0, "loss.adversary_weight", "must be >= 0"),
            (self.loss.adversary_width >= 1, "loss.adversary_width", "must be >= 1"),
            (self.loss.adversary_lr > 0, "loss.adversary_lr", "must be positive"),
            (self.loss.adversary_warmup >= 0, "loss.adversary_warmup", "must be >= 0"),
            (
                self.loss.adversary_frontend in ("none", "tikhonov"),
                "loss.adversary_frontend",
                "must be none or tikhonov",
            ),
            (
                self.loss.adversary_weight == 0 or self.loss.objective == "robust",
                "loss.adversary_weight",
                "needs loss.objective: robust",
            ),
            (self.loss.heatmap in ("l1", "mse"), "loss.heatmap", "must be l1 or mse"),
            (self.loss.psf_norm in ("none", "open"), "loss.psf_norm", "must be none or open"),
            (self.loss.foreground_weight >= 0, "loss.foreground_weight", "must be >= 0"),
            (self.loss.coord_weight >= 0, "loss.coord_weight", "must be >= 0"),
            (0 <= self.data.colour <= 1, "data.colour", "must lie in [0, 1]"),
            (0 <= self.data.shape_mix_p <= 1, "data.shape_mix_p", "must lie in [0, 1]"),
            (0 <= self.data.rotate_deg <= 180, "data.rotate_deg", "must lie in [0, 180]"),
            (0 <= self.data.scale_jitter < 1, "data.scale_jitter", "must lie in [0, 1)"),
            (0 <= self.data.shift_fraction <= 0.5, "data.shift_fraction", "must lie in [0, 0.5]"),
            (self.train.steps >= 0, "train.steps", "must be >= 0"),
            (
                self.train.max_seconds is None or self.train.max_seconds > 0,
                "train.max_seconds",
                "must be positive (or null for no time box)",
            ),
            (
                self.train.lr_schedule in ("constant", "cosine"),
                "train.lr_schedule",
                "must be constant or cosine",
            ),
            (0 < self.train.lr_final_fraction <= 1, "train.lr_final_fraction", "must lie in (0, 1]"),
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
