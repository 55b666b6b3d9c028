"""Settings of Stage II (``privlens train gan``) as typed dataclasses.

Loaded with :func:`privlens.train.config.load_config` (YAML file, then ``key=value`` overrides);
every key is documented in docs (the Stage II page, with a table giving each weight's source).
Where the paper is silent the defaults are those of the authors' released training
(carlosh93/privacy-preserving-vision, ``Face-DeId/main.py`` and ``core/solver.py``):
``lambda_cyc`` 7, ``lambda_lpips`` 2000 (on the LPIPS scale of the ``lpips`` package, which their
StarGAN v2 LPIPS module shares), ``lambda_expr`` 1000 (their heatmap L1 weight); the rest are
StarGAN v2's (lr 1e-4, F's lr 1e-6, betas (0, 0.99), weight decay 1e-4, EMA 0.999,
lambda_reg = lambda_sty = lambda_ds = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Stage2DataConfig:
    """Faces with landmarks from ``privlens data prepare``; domains are the first sub-folder of
    each source file (e.g. ``female/``, ``male/``), or one domain ``face`` when there are none."""

    root: str | None = None  # a prepared folder (--data sets it)
    image_size: int = 256
    crop_p: float = 0.5  # StarGAN v2 random resized crop, sources and references alike
    flip_p: float = 0.5
    num_workers: int = 0
    domains: list[str] | None = None  # the domains to use, in label order (default: all, sorted)


@dataclass
class Stage1Files:
    """The frozen Stage I parts: the camera (lens) and the heatmap network U."""

    run: str | None = None  # a Stage I run folder (--stage1): lens.safetensors + heatmap_net.safetensors
    lens: str | None = None  # a lens file or a preset (open, defocus, prototype); overrides run/
    heatmap_net: str | None = None  # a heatmap_net.safetensors; overrides run/
    # captures stored as the sensor reads them out (shot + read noise at the lens file's light,
    # quantised), as `privlens anonymize` makes them; false: the noise-free optical image;
    # null: the lens file's own flag (on in Stage I's lens files, off in `privlens lens create`'s)
    sensor_noise: bool | None = None


@dataclass
class Stage2ModelConfig:
    """Network sizes (StarGAN v2 at 256 px: base_width 64, max_width 512, mapping_hidden 512)."""

    style_dim: int = 64
    latent_dim: int = 16
    base_width: int | None = None  # default 2**14 // image_size
    max_width: int = 512
    mapping_hidden: int = 512
    w_hpf: float = 1.0  # heatmap-gated high-pass skips; 0 turns them off
    # What G's encoder reads (privlens.nets.stargan.Generator): "capture", the paper's y; "warp"
    # (beyond the paper), the reference warped onto the landmarks U decodes from y, so G never
    # sees the capture's pixels. "warp" needs the references' landmarks and has no cycle term.
    content: str = "capture"
    # With content "warp": G outputs the warp plus a learned correction, zero at initialisation.
    residual: bool = False


@dataclass
class Stage2LossConfig:
    """Loss weights (Eqs. 7-13) and the LPIPS source."""

    lambda_reg: float = 1.0  # R1 penalty on the real images (the references)
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0  # diversity, decays linearly to 0 over ds_iter steps
    ds_iter: int = 100000
    lambda_cyc: float = 7.0  # the authors' value (StarGAN v2: 1)
    lambda_lpips: float = 2000.0  # the authors' value, LPIPS towards the reference
    lambda_expr: float = 1000.0  # heatmap consistency |U(camera(x~)) - U(y)| on the landmark channels
    # Beyond the paper (0 = the paper's losses): L1 between the reference-guided x~ and the
    # reference warped onto the source's landmarks (privlens.anonymize.warp), a pseudo-pair target
    # made of the reference's pixels at the source's geometry; it never holds a source pixel.
    lambda_warp: float = 0.0
    # Whose landmarks the warp target takes: "labels", the source's own (dlib, augmented with the
    # image: the geometry the output should have), or "heatmap", those U decodes from the capture
    # (the geometry the warp backend uses at inference; G can reproduce it from its input m).
    warp_geometry: Literal["labels", "heatmap"] = "labels"
    lpips_net: Literal["alex", "vgg"] = "alex"
    lpips_weights: str | None = None  # torchvision ImageNet backbone file (or $PRIVLENS_LPIPS_BACKBONE)
    # A stand-in chosen by name when the real LPIPS is unavailable. "random-backbone": LPIPS's
    # linear heads on a randomly initialised (seeded) backbone; logged as loss/lpips_random_backbone.
    lpips_substitute: Literal["none", "random-backbone"] = "none"


@dataclass
class Stage2OptimConfig:
    """Adam for G (with E), S, D; the mapping network F gets its own, much smaller rate."""

    lr: float = 1e-4
    mapping_lr: float = 1e-6
    betas: tuple[float, float] = (0.0, 0.99)
    weight_decay: float = 1e-4
    ema: float = 0.999  # EMA decay of G, F and S (the bundle holds the EMA and the raw weights)
    # Warm-up of the EMA: step t (0-based) uses decay min(ema, (1 + t) / (ema_warmup + t)), so the
    # average forgets the initial weights within the first few percent of any run; 0 = plain decay.
    ema_warmup: int = 10


@dataclass
class Stage2TrainConfig:
    """Loop settings. One step is a StarGAN v2 iteration: 2 D steps, 2 G steps, the EMA update."""

    steps: int = 100000
    max_seconds: float | None = None  # time box: stop after this many seconds, save as at the end
    batch_size: int = 8  # per process
    seed: int = 0
    amp: Literal["auto", "bf16", "off"] = "auto"  # auto: bf16 autocast for the networks on CUDA
    channels_last: bool = False
    device: str = "auto"
    log_every: int = 10
    image_every: int = 1000
    checkpoint_every: int = 1000
    progress: bool = True
    # warm start (a new run only): G, S and F from this generator bundle (raw weights for the
    # trained copies, EMA for the averaged ones), e.g. to fine-tune a generator behind another
    # lens and U; D starts fresh. Null: He initialisation as upstream.
    init_from: str | None = None


@dataclass
class Stage2Config:
    data: Stage2DataConfig = field(default_factory=Stage2DataConfig)
    stage1: Stage1Files = field(default_factory=Stage1Files)
    model: Stage2ModelConfig = field(default_factory=Stage2ModelConfig)
    loss: Stage2LossConfig = field(default_factory=Stage2LossConfig)
    optim: Stage2OptimConfig = field(default_factory=Stage2OptimConfig)
    train: Stage2TrainConfig = field(default_factory=Stage2TrainConfig)

    def __post_init__(self) -> None:
        size = self.data.image_size
        checks = [
            (
                size >= 32 and size & (size - 1) == 0,
                "data.image_size",
                f"must be a power of two >= 32, got {size}",
            ),
            (self.model.style_dim >= 1, "model.style_dim", "must be at least 1"),
            (self.model.latent_dim >= 1, "model.latent_dim", "must be at least 1"),
            (self.model.base_width is None or self.model.base_width >= 1, "model.base_width", "must be >= 1"),
            (
                self.model.max_width >= (self.model.base_width or 1),
                "model.max_width",
                "must be >= model.base_width",
            ),
            (self.model.mapping_hidden >= 1, "model.mapping_hidden", "must be at least 1"),
            (self.model.w_hpf >= 0, "model.w_hpf", "must be >= 0"),
            (self.loss.ds_iter >= 1, "loss.ds_iter", "must be at least 1"),
            (self.optim.lr > 0 and self.optim.mapping_lr > 0, "optim.lr", "learning rates must be positive"),
            (0 <= self.optim.ema < 1, "optim.ema", "must lie in [0, 1)"),
            (self.optim.ema_warmup >= 0, "optim.ema_warmup", "must be >= 0"),
            (
                self.train.max_seconds is None or self.train.max_seconds > 0,
                "train.max_seconds",
                "must be positive (or null for no time box)",
            ),
            (self.train.steps >= 0, "train.steps", "must be >= 0"),
            (self.train.batch_size >= 1, "train.batch_size", "must be at least 1"),
            (0 <= self.data.crop_p <= 1, "data.crop_p", "must lie in [0, 1]"),
            (0 <= self.data.flip_p <= 1, "data.flip_p", "must lie in [0, 1]"),
            (self.data.num_workers >= 0, "data.num_workers", "must be >= 0"),
        ]
        for name in (
            "lambda_reg",
            "lambda_sty",
            "lambda_ds",
            "lambda_cyc",
            "lambda_lpips",
            "lambda_expr",
            "lambda_warp",
        ):
            checks.append((getattr(self.loss, name) >= 0, f"loss.{name}", "must be >= 0"))
        for every in ("log_every", "image_every", "checkpoint_every"):
            checks.append((getattr(self.train, every) >= 1, f"train.{every}", "must be at least 1"))
        checks.append(
            (
                self.loss.warp_geometry in ("labels", "heatmap"),
                "loss.warp_geometry",
                "must be labels or heatmap",
            )
        )
        checks.append((self.model.content in ("capture", "warp"), "model.content", "must be capture or warp"))
        checks.append(
            (
                not self.model.residual or self.model.content == "warp",
                "model.residual",
                "needs model.content warp",
            )
        )
        checks.append(
            (
                self.model.content == "capture" or self.loss.lambda_cyc == 0,
                "loss.lambda_cyc",
                "must be 0 with model.content warp (that G reads no capture to cycle back to)",
            )
        )
        for ok, key, message in checks:
            if not ok:
                raise ValueError(f"{key} {message}")
