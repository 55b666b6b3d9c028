"""Stage II: train the reference-guided generator G (with E), S, F and D behind the frozen
Stage I camera and heatmap network U (``privlens train gan``).

One step is a StarGAN v2 iteration on a batch of sources x and references r, r2 of target
domains t: a D step with latent-guided fakes, a D step with reference-guided fakes, a G step
with latent-guided styles (updates G, F and S), a G step with reference-guided styles (updates
G), then the EMA update of G, F and S (with a warm-up, see :func:`ema_decay`). Losses:
:mod:`privlens.train.losses_stage2`. The private source x is only ever used through the camera
(y = camera(x)); D's real images are the references.

Frozen parts: the camera and U have ``requires_grad = False`` and stay in eval mode. They run
without autograd on the source; on the new face x̃ they pass gradients through to G for the
heatmap-consistency loss (their own weights never get one).

Time box: ``train.max_seconds`` ends the loop after the step that crosses it; the run then saves
its checkpoint, bundle and summary exactly as at the last step (``summary.json`` records the
steps done and ``stopped_by: "max_seconds"``), and a later call with a larger budget resumes.

Precision: with ``train.amp`` bf16 (``auto`` on CUDA), G, S, F, D and U run in bf16 autocast; the
camera and every loss run in float32. Distributed (``torchrun``): every process draws its own
slice of each step's batch; gradients are averaged across processes with one all-reduce per
optimiser step (not DDP wrappers, which cannot carry R1's double backward and the partial use of
the networks in each sub-step), so weights stay identical on every rank.

Reproducibility: data, latents and camera noise of step ``s`` are functions of
``(seed, s, rank)``; with the checkpointed weights, EMA copies and optimiser states a resumed run
reaches the same state as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from privlens.files import atomic_path, atomic_write_text
from privlens.nets import Discriminator, Generator, HeatmapNet, MappingNetwork, StyleEncoder, reads_warps
from privlens.optics.camera import Camera
from privlens.train import losses_stage2 as L
from privlens.train import tblog
from privlens.train.checkpoint import CheckpointError, load_checkpoint, load_heatmap_net, save_checkpoint
from privlens.train.config import ConfigError, to_dict, to_yaml
from privlens.train.data import mix_seed
from privlens.train.distributed import (
    DistInfo,
    barrier,
    init_distributed,
    max_difference_across_ranks,
    out_of_time,
    shutdown,
)
from privlens.train.runs import RunResult, append_metrics, check_data_root, locked_run_folder, trim_metrics
from privlens.train.stage2_bundle import GENERATOR_FILE, save_generator_bundle
from privlens.train.stage2_config import Stage2Config
from privlens.train.stage2_data import Stage2Faces, Stage2Sampler

CHECKPOINT = "checkpoint.safetensors"
LENS = "lens.safetensors"
NET = "heatmap_net.safetensors"
CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tb"

RESUMABLE_CHANGES = (
    "train.steps",
    "train.max_seconds",
    "train.progress",
    "train.log_every",
    "train.image_every",
    "train.checkpoint_every",
    "data.num_workers",
    "data.root",
    "stage1.run",
    "stage1.lens",
    "stage1.heatmap_net",
)
TRAINED = ("generator", "style_encoder", "mapping", "discriminator")
EMA = ("generator", "style_encoder", "mapping")


@dataclass
class Stage2Parts:
    """Everything one iteration needs. ``ema`` holds the EMA copies of G, S and F."""

    camera: Camera
    heatmap_net: HeatmapNet
    generator: Generator
    style_encoder: StyleEncoder
    mapping: MappingNetwork
    discriminator: Discriminator
    ema: dict[str, nn.Module]
    perceptual: L.PerceptualLoss | None = None
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    psf: torch.Tensor | None = None  # the frozen camera's PSF, computed once (see capture_of)

    def trained(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in TRAINED}


# -- building ------------------------------------------------------------------------------------
def resolve_stage1(config: Stage2Config) -> tuple[str, Path]:
    """The lens (file path or preset name) and U's weight file, from ``stage1.*``."""
    from privlens.optics.presets import LENS_PRESETS

    s = config.stage1
    run = Path(s.run) if s.run is not None else None
    if run is not None and not run.is_dir():
        raise ConfigError(f"stage1.run: Stage I run folder not found: {run}")
    lens = s.lens
    if lens is None:
        if run is None:
            raise ConfigError(
                "stage1: give the Stage I run folder (--stage1 DIR) or stage1.lens and stage1.heatmap_net"
            )
        if not (run / LENS).is_file():
            raise ConfigError(
                f"stage1.run: {run} has no {LENS} (a `train heatmap` run has no lens); use a `train optics` "
                "run or set stage1.lens"
            )
        lens = str(run / LENS)
    elif lens not in LENS_PRESETS and not Path(lens).is_file():
        raise ConfigError(f"stage1.lens: lens file not found: {lens}")
    if lens == "lowres":
        raise ConfigError("stage1.lens: the lowres sensor is a baseline camera, not a lens for Stage II")
    net = Path(s.heatmap_net) if s.heatmap_net is not None else (run / NET if run is not None else None)
    if net is None:
        raise ConfigError(
            "stage1.heatmap_net: no heatmap network given (--stage1 DIR or stage1.heatmap_net=FILE)"
        )
    if not net.is_file():
        raise ConfigError(f"stage1.heatmap_net: heatmap-network file not found: {net}")
    return lens, net


def build_frozen(config: Stage2Config) -> tuple[Camera, HeatmapNet, str, Path]:
    """The frozen camera and U (eval mode, no gradients), and where they came from."""
    from privlens.optics.presets import make_camera

    lens, net_path = resolve_stage1(config)
    size = config.data.image_size
    noise = config.stage1.sensor_noise
    try:
        camera = make_camera(lens, size, **({} if noise is None else {"sensor_noise": noise}))
    except ValueError as error:
        raise ConfigError(f"stage1.lens: {error}") from error
    try:
        net = load_heatmap_net(net_path)
    except CheckpointError as error:
        raise ConfigError(f"stage1.heatmap_net: {error}") from error
    if size % net.multiple:
        raise ConfigError(
            f"data.image_size {size} must be a multiple of {net.multiple} for this heatmap network"
        )
    if net.num_masks < 2:
        raise ConfigError(
            f"stage1.heatmap_net: {net_path} predicts no face masks (num_masks={net.num_masks})"
        )
    for module in (camera, net):
        module.eval().requires_grad_(False)
    return camera, net, lens, net_path


def build_networks(
    config: Stage2Config, num_domains: int, mask_channels: tuple[int, int]
) -> dict[str, nn.Module]:
    """G, S, F and D as configured (initialised from the current torch seed)."""
    m, size = config.model, config.data.image_size
    return {
        "generator": Generator(
            size,
            m.style_dim,
            m.base_width,
            m.max_width,
            m.w_hpf,
            mask_channels,
            content=m.content,
            residual=m.residual,
        ),
        "style_encoder": StyleEncoder(size, m.style_dim, num_domains, m.base_width, m.max_width),
        "mapping": MappingNetwork(m.latent_dim, m.style_dim, num_domains, m.mapping_hidden),
        "discriminator": Discriminator(size, num_domains, m.base_width, m.max_width),
    }


def build_optimizers(parts: Stage2Parts, config: Stage2Config) -> dict[str, torch.optim.Optimizer]:
    o = config.optim

    def adam(module: nn.Module, lr: float) -> torch.optim.Adam:
        fused = all(p.is_cuda for p in module.parameters())  # one kernel per step on CUDA
        return torch.optim.Adam(
            module.parameters(), lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay, fused=fused or None
        )

    return {
        "generator": adam(parts.generator, o.lr),
        "style_encoder": adam(parts.style_encoder, o.lr),
        "mapping": adam(parts.mapping, o.mapping_lr),
        "discriminator": adam(parts.discriminator, o.lr),
    }


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    if setting == "off":
        return None
    if setting == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


# -- one iteration -------------------------------------------------------------------------------
def _average_gradients(module: nn.Module, info: DistInfo | None) -> None:
    if info is None or not info.distributed:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _step(
    loss: torch.Tensor, optimizers: list[torch.optim.Optimizer], modules: list[nn.Module], info
) -> bool:
    """zero_grad, backward, average across ranks, step if every gradient is finite."""
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grads = []
    for module in modules:
        _average_gradients(module, info)
        grads += [p.grad for p in module.parameters() if p.grad is not None]
    finite = (
        bool(torch.stack([torch.isfinite(n) for n in torch._foreach_norm(grads)]).all()) if grads else True
    )
    if finite:
        for optimizer in optimizers:
            optimizer.step()
    return finite


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Parameters of ``modules`` need no gradient inside the block (gradients still flow through
    them to their inputs); restored afterwards."""
    states = [[p.requires_grad for p in m.parameters()] for m in modules]
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m, flags in zip(modules, states, strict=True):
            for p, flag in zip(m.parameters(), flags, strict=True):
                p.requires_grad_(flag)


def ema_decay(step: int, beta: float, warmup: int) -> float:
    """The EMA decay used after step ``step`` (0-based): ``min(beta, (1 + step) / (warmup + step))``.

    With ``warmup`` 10 the weight the average still gives the initial weights after ``n`` steps
    is ``prod (1 + t) / (10 + t)`` (about ``9! / n**9``: 1e-6 after 50 steps), so a short run ships
    what it learned, not its initialisation; a plain decay of 0.999 keeps 82 % of the initial
    weights after 200 steps. ``warmup`` 0 gives the plain decay ``beta``."""
    if warmup <= 0:
        return beta
    return min(beta, (1.0 + step) / (warmup + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * model`` for parameters; buffers copied."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - beta)
    for a, b in zip(ema.buffers(), model.buffers(), strict=True):
        a.copy_(b)


class IterationOutput(dict):
    """Scalar losses of one iteration (floats, keys like ``d_latent/real``) plus tensors for logging."""


def _autocast(parts: Stage2Parts, device: torch.device):
    return torch.autocast(
        device.type, dtype=parts.amp_dtype or torch.bfloat16, enabled=parts.amp_dtype is not None
    )


def _fmt(parts: Stage2Parts, images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if parts.channels_last else images


def capture_of(parts: Stage2Parts, images: torch.Tensor) -> torch.Tensor:
    """The frozen camera's capture of ``images`` (float32, autocast off). Its PSF does not change
    during Stage II, so it is computed once and reused (a sensor-noise camera runs in full)."""
    with torch.autocast(images.device.type, enabled=False):
        if parts.camera.config.sensor_noise:
            return parts.camera(images.float()).image
        if parts.psf is None or parts.psf.device != images.device:
            with torch.no_grad():
                parts.psf = parts.camera.psf().detach()
        return parts.camera.image(images.float(), parts.psf)


@torch.no_grad()
def frozen_views(parts: Stage2Parts, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, U(y))``: the camera's capture (float32, autocast off) and U's heatmaps (float32)."""
    capture = capture_of(parts, images)
    with _autocast(parts, images.device):
        heat = parts.heatmap_net(_fmt(parts, capture))
    return capture, heat.float()


def camera_heatmaps(parts: Stage2Parts, images: torch.Tensor) -> torch.Tensor:
    """``U(camera(images))`` (float32) with gradients flowing to ``images``: the camera in
    float32 with autocast off, U under the configured autocast; their own weights stay frozen."""
    capture = capture_of(parts, images)
    with _autocast(parts, images.device):
        heat = parts.heatmap_net(_fmt(parts, capture))
    return heat.float()


def heatmap_warp_targets(batch: dict[str, torch.Tensor], heat: torch.Tensor) -> torch.Tensor:
    """The warp targets of ``loss.warp_geometry: heatmap``: each reference warped onto the
    landmarks U decodes from the source's capture (as the warp backend paints at inference); also
    the content a ``model.content: warp`` generator reads."""
    from privlens.anonymize.pipeline import heatmap_landmarks
    from privlens.anonymize.warp import warp_batch

    landmarks = heatmap_landmarks(heat.float(), batch["reference"].shape[-1])
    return warp_batch(batch["reference"], batch["reference_landmarks"], landmarks).to(heat.device)


def train_iteration(
    parts: Stage2Parts,
    optimizers: dict[str, torch.optim.Optimizer],
    batch: dict[str, torch.Tensor],
    step: int,
    config: Stage2Config,
    info: DistInfo | None = None,
) -> IterationOutput:
    """One StarGAN v2 iteration (2 D steps, 2 G steps, EMA) on a batch from :class:`Stage2Faces`
    already on the device. ``step`` (0-based) sets the diversity weight and the latents' seed."""
    lo = config.loss
    device = batch["image"].device
    source = batch["image"]
    y_org, y_trg = batch["domain"], batch["target"]
    ref, ref2 = _fmt(parts, batch["reference"]), _fmt(parts, batch["reference2"])
    generator, style_encoder, mapping, disc = (
        parts.generator,
        parts.style_encoder,
        parts.mapping,
        parts.discriminator,
    )
    rank = info.rank if info is not None else 0

    capture, heat = frozen_views(parts, source)
    capture = _fmt(parts, capture)
    # what G reads: the capture (the paper) or the reference warped onto U's landmarks (Generator)
    warped = heatmap_warp_targets(batch, heat) if reads_warps(parts.generator) else None
    content = capture if warped is None else _fmt(parts, warped)
    num_landmarks = parts.heatmap_net.num_landmarks
    generator_rng = torch.Generator(device="cpu").manual_seed(mix_seed(config.train.seed, step, rank, 0x1A7E))
    b = source.shape[0]
    z, z2 = (torch.randn(b, config.model.latent_dim, generator=generator_rng).to(device) for _ in range(2))
    out = IterationOutput()
    skipped = 0

    # -- discriminator: real = the references r, never the source x -------------------------------
    for kind in ("latent", "ref"):
        real = ref.detach().requires_grad_(True)
        with _autocast(parts, device):
            real_logits = disc(real, y_trg)
            with torch.no_grad():
                style = mapping(z, y_trg) if kind == "latent" else style_encoder(ref, y_trg)
                fake = generator(content, heat, style)
            fake_logits = disc(fake.detach(), y_trg)
        r1 = L.r1_penalty(real_logits, real)
        adv = L.d_adversarial(real_logits, fake_logits)
        loss = adv + lo.lambda_reg * r1
        skipped += not _step(loss, [optimizers["discriminator"]], [disc], info)
        out[f"d_{kind}/adv"] = adv.detach()
        out[f"d_{kind}/r1"] = r1.detach()
        out[f"d_{kind}/real_logit"] = real_logits.detach().float().mean()
        out[f"d_{kind}/fake_logit"] = fake_logits.detach().float().mean()

    # -- generator ----------------------------------------------------------------------------------
    lambda_ds = L.diversity_weight(step, lo.lambda_ds, lo.ds_iter)
    s_org_needed = lo.lambda_cyc > 0
    for kind in ("latent", "ref"):
        # D (and in the reference-guided step S, which only G's optimiser follows) pass gradients
        # through to G without computing their own
        idle = (disc,) if kind == "latent" else (disc, style_encoder, mapping)
        with frozen(*idle), _autocast(parts, device):
            if kind == "latent":
                style, style2 = mapping(z, y_trg), mapping(z2, y_trg)
            else:
                style, style2 = style_encoder(ref, y_trg), style_encoder(ref2, y_trg)
            fake = generator(content, heat, style)
            adv = L.g_adversarial(disc(fake, y_trg))
            sty = L.style_reconstruction(style, style_encoder(fake, y_trg))
            ds = fake.new_zeros((), dtype=torch.float32)
            if lambda_ds > 0:  # past ds_iter the term has no weight: skip the second image
                with torch.no_grad():
                    fake2 = generator(content, heat, style2)
                ds = L.diversity(fake, fake2)
            cyc = expr = fake.new_zeros((), dtype=torch.float32)
            heat_fake = None
            if lo.lambda_expr > 0:  # U(camera(x̃)) against m = U(y), gradients into x̃
                heat_fake = camera_heatmaps(parts, fake)
                expr = L.heatmap_consistency(heat_fake, heat, num_landmarks)
            if s_org_needed:
                if heat_fake is None:
                    _, heat_fake = frozen_views(parts, fake.detach().float())  # m̂ = U(camera(x̃))
                s_org = style_encoder(capture, y_org)  # ŝ = S(y)
                reconstruction = generator(_fmt(parts, fake), heat_fake.detach(), s_org)
                cyc = L.cycle(capture, reconstruction)
            warp = fake.new_zeros((), dtype=torch.float32)
            if lo.lambda_warp > 0 and kind == "ref":
                if lo.warp_geometry == "labels":
                    target = batch["warp_target"]
                else:
                    target = warped if warped is not None else heatmap_warp_targets(batch, heat)
                warp = L.warp_target(fake, target)
            perceptual = fake.new_zeros((), dtype=torch.float32)
            if parts.perceptual is not None and lo.lambda_lpips > 0 and kind == "ref":
                perceptual = parts.perceptual(ref, fake).mean()
        loss = (
            adv
            + lo.lambda_sty * sty
            - lambda_ds * ds
            + lo.lambda_cyc * cyc
            + lo.lambda_lpips * perceptual
            + lo.lambda_expr * expr
            + lo.lambda_warp * warp
        )
        names = ("generator", "mapping", "style_encoder") if kind == "latent" else ("generator",)
        skipped += not _step(loss, [optimizers[n] for n in names], [getattr(parts, n) for n in names], info)
        values = {"adv": adv, "sty": sty, "ds": ds, "cyc": cyc, "expr": expr, "total": loss}
        if lo.lambda_warp > 0 and kind == "ref":
            values["warp"] = warp
        if parts.perceptual is not None and kind == "ref":
            values[parts.perceptual.name] = perceptual
        for key, value in values.items():
            out[f"g_{kind}/{key}"] = value.detach().float()
        out[f"_fake_{kind}"] = fake.detach()

    decay = ema_decay(step, config.optim.ema, config.optim.ema_warmup)
    for name in EMA:
        update_ema(parts.ema[name], getattr(parts, name), decay)
    out["lambda_ds"] = torch.tensor(lambda_ds, device=device)
    out["skipped"] = torch.tensor(float(skipped), device=device)
    out["_capture"], out["_heat"] = capture, heat
    return out


def scalars(out: IterationOutput) -> dict[str, float]:
    """The iteration's losses as floats (one device sync)."""
    keys = [k for k in out if not k.startswith("_")]
    device = out["_capture"].device
    values = torch.stack([out[k].detach().float().to(device) for k in keys]).tolist()
    return dict(zip(keys, values, strict=True))


# -- the run -------------------------------------------------------------------------------------


def run_stage2(
    config: Stage2Config, run_dir: str | Path, resume: bool = True, stop_after: int | None = None
) -> RunResult:
    """Train (or resume) a Stage II run in ``run_dir`` (files: see the README, section Stage II).

    ``stop_after``: leave after this many steps of this call, as a kill would (for resume tests).
    """
    root = check_data_root(config)
    info = init_distributed(config.train.device)
    try:
        with locked_run_folder(run_dir, info.is_main):  # one training per run folder
            return _run(config, Path(run_dir), root, info, resume, stop_after)
    finally:
        shutdown(info)


def _copy(src: Path, dst: Path) -> None:
    if dst.exists() and src.resolve() == dst.resolve():
        return
    with atomic_path(dst) as temporary:
        shutil.copyfile(src, temporary)


def warm_start(nets: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module], bundle: Path) -> None:
    """Load G, S and F of a generator bundle into a new run's networks (``train.init_from``): the
    bundle's raw weights into the trained copies (its EMA weights when it stores no raw ones), its
    EMA weights into the averaged copies. Raises :class:`ConfigError` when the file is not a
    bundle or its architecture differs from the config's (both shapes named)."""
    from privlens.train.stage2_bundle import GeneratorBundleError, load_generator_bundle

    try:
        averaged = load_generator_bundle(bundle, weights="ema")
        try:
            trained = load_generator_bundle(bundle, weights="raw")
        except GeneratorBundleError:
            trained = averaged
    except GeneratorBundleError as error:
        raise ConfigError(f"train.init_from: {error}") from error
    for name in EMA:
        for target, source in ((nets[name], getattr(trained, name)), (ema[name], getattr(averaged, name))):
            mine, theirs = target.state_dict(), source.state_dict()
            for key, value in theirs.items():
                if key not in mine or mine[key].shape != value.shape:
                    shape = tuple(mine[key].shape) if key in mine else "absent"
                    raise ConfigError(
                        f"train.init_from: {bundle} is another architecture: {name}.{key} is "
                        f"{tuple(value.shape)} there, {shape} in this config's model"
                    )
            missing = sorted(set(mine) - set(theirs))
            if missing:
                raise ConfigError(
                    f"train.init_from: {bundle} lacks {name}.{missing[0]} (another architecture)"
                )

            target.load_state_dict({k: v.float() for k, v in theirs.items()})


def _check_same_frozen(run_dir: Path, lens_source: str, net_source: Path) -> None:
    """Refuse to resume behind a lens or U whose file changed since the run began: the config
    holds only their paths, and the run folder keeps a copy of each file as it was trained with."""
    from privlens.models.provenance import sha256_of

    for key, source, kept in (
        ("stage1.lens", Path(lens_source), run_dir / LENS),
        ("stage1.heatmap_net", Path(net_source), run_dir / NET),
    ):
        if not (source.is_file() and kept.is_file()) or source.resolve() == kept.resolve():
            continue  # a preset lens, or resumed behind the run's own copy
        if sha256_of(source) != sha256_of(kept):
            raise ConfigError(
                f"{key}: {source} is not the file this run was trained with (its copy: {kept}); "
                "restore it, or start a new run with another --out or --no-resume"
            )


def _check_resumable(saved: dict[str, Any], current: dict[str, Any]) -> None:
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved), flat(current)
    # a key this version added (absent from an older checkpoint) is fine at its default value
    defaults = flat(to_dict(Stage2Config()))
    a.update({k: defaults[k] for k in b if k not in a and k in defaults})
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    if differing:
        k = differing[0]
        raise ConfigError(
            f"{k}: differs from the checkpointed run ({a.get(k)!r} there, {b.get(k)!r} now); "
            "use another --out or --no-resume"
        )


def _run(
    config: Stage2Config, run_dir: Path, root: Path, info: DistInfo, resume: bool, stop_after: int | None
) -> RunResult:
    device, t = info.device, config.train
    camera, heatmap_net, lens_source, net_source = build_frozen(config)
    dataset = Stage2Faces(
        root,
        config.data.image_size,
        config.data.domains,
        config.data.crop_p,
        config.data.flip_p,
        warp_targets=config.loss.lambda_warp > 0 or config.model.content == "warp",
        warp_geometry=config.loss.warp_geometry,
    )
    torch.manual_seed(mix_seed(t.seed, 0x5EED))  # identical initial weights on every rank
    nets = build_networks(
        config, len(dataset.domains), (heatmap_net.num_landmarks, heatmap_net.num_landmarks + 1)
    )
    ema = {name: copy.deepcopy(nets[name]).eval().requires_grad_(False) for name in EMA}
    perceptual = None
    if config.loss.lambda_lpips > 0:
        lo = config.loss
        perceptual = L.build_perceptual_loss(lo.lpips_net, lo.lpips_weights, lo.lpips_substitute, seed=t.seed)
    parts = Stage2Parts(
        camera,
        heatmap_net,
        **nets,
        ema=ema,
        perceptual=perceptual,
        amp_dtype=amp_dtype(t.amp, device),
        channels_last=t.channels_last,
    )
    memory = torch.channels_last if t.channels_last else torch.preserve_format
    for module in (camera, heatmap_net, *nets.values(), *ema.values(), *([perceptual] if perceptual else [])):
        module.to(device)
    for module in (heatmap_net, *nets.values(), *ema.values()):
        module.to(memory_format=memory)
    optimizers = build_optimizers(parts, config)
    modules = {**nets, **{f"ema_{k}": v for k, v in ema.items()}}

    config_dict = to_dict(config)
    start_step = 0
    first: dict[str, float] = {}
    checkpoint_path = run_dir / CHECKPOINT
    if resume and checkpoint_path.is_file():
        meta = load_checkpoint(checkpoint_path, modules, optimizers)
        if meta.get("stage") != "II":
            raise ConfigError(f"{run_dir} holds a checkpoint of another stage; use another --out")
        _check_resumable(meta["config"], config_dict)
        if meta["domains"] != dataset.domains:
            raise ConfigError(
                f"data.domains: the checkpoint has {meta['domains']}, the data {dataset.domains}"
            )
        start_step, first = int(meta["step"]), dict(meta.get("first_losses", {}))
        _check_same_frozen(run_dir, lens_source, net_source)
    elif t.init_from is not None:
        warm_start(nets, ema, Path(t.init_from))

    writer = None
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG, "# privlens train gan\n" + to_yaml(config))
        if Path(lens_source).is_file():
            _copy(Path(lens_source), run_dir / LENS)
        else:  # a preset lens: write it out so the run folder is self-contained
            from privlens.optics.lensfile import save_lens

            save_lens(camera, run_dir / LENS, {"preset": lens_source})
        _copy(net_source, run_dir / NET)
        writer = tblog.open_writer(run_dir / TENSORBOARD, True, purge_step=start_step)
        trim_metrics(run_dir / METRICS, start_step)

    def checkpoint(step: int) -> None:
        if info.is_main:
            meta = {
                "stage": "II",
                "step": step,
                "config": config_dict,
                "domains": dataset.domains,
                "first_losses": first,
            }
            save_checkpoint(checkpoint_path, modules, optimizers, meta)
        barrier(info)

    sampler = Stage2Sampler(
        dataset.by_domain, t.batch_size, t.steps, t.seed, start_step, info.rank, info.world_size
    )
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.data.num_workers)
    progress = None
    if info.is_main and t.progress:
        from tqdm import tqdm

        progress = tqdm(total=t.steps, initial=start_step, desc="train gan", unit="it", dynamic_ncols=True)

    for name in TRAINED:
        getattr(parts, name).train()
    last: dict[str, float] = {}
    skipped, done_here = 0, 0
    began = time.perf_counter()
    end_step, stopped_by = max(t.steps, start_step), None
    for step, batch in enumerate(loader, start=start_step):
        torch.manual_seed(mix_seed(t.seed, step, info.rank, 0xA015E))  # camera read noise
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        out = train_iteration(parts, optimizers, batch, step, config, info)
        current = step + 1
        done_here += 1
        need_scalars = current % t.log_every == 0 or current == t.steps or step == 0 or progress is not None
        if need_scalars:
            last = scalars(out)
            skipped += int(last["skipped"])
            if step == 0:
                first = dict(last)
        if info.is_main:
            if current % t.log_every == 0 or current == t.steps:
                for key, value in last.items():
                    writer.add_scalar(f"loss/{key}" if "/" in key else key, value, current)
                append_metrics(run_dir / METRICS, {"step": current, **last})
            if current % t.image_every == 0 or current == t.steps:
                writer.add_image("samples", _sample_grid(out, batch), current)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(
                    d=f"{last['d_ref/adv']:.3f}", g=f"{last['g_ref/adv']:.3f}", cyc=f"{last['g_ref/cyc']:.3f}"
                )
        end_step = current
        if t.max_seconds is not None and current < t.steps and out_of_time(began, t.max_seconds, info):
            stopped_by, last = "max_seconds", scalars(out)
            if info.is_main:
                append_metrics(run_dir / METRICS, {"step": current, **last})
            break
        if current % t.checkpoint_every == 0 and current != t.steps:
            checkpoint(current)
        if stop_after is not None and done_here >= stop_after:
            if progress is not None:
                progress.close()
            if writer is not None:
                writer.close()
            return RunResult(run_dir, {"stopped_at": current})
    elapsed = time.perf_counter() - began
    if progress is not None:
        progress.close()
    checkpoint(end_step)

    sync = None
    if info.distributed:
        flat = torch.cat([p.detach().flatten() for p in parts.generator.parameters()])
        sync = {"world_size": info.world_size, "max_generator_diff": max_difference_across_ranks(info, flat)}
    files: dict[str, Path] = {}
    summary: dict[str, Any] = {}
    if info.is_main:
        provenance = {
            "stage": "II",
            "steps": end_step,
            "seconds_this_call": round(elapsed, 1),
            "device": str(device),
            "weights": "ema (raw stored too)",
            "lens": str(lens_source),
            "heatmap_net": str(net_source),
            "config": config_dict,
        }
        files["generator"] = save_generator_bundle(
            run_dir / GENERATOR_FILE,
            ema["generator"],
            ema["style_encoder"],
            ema["mapping"],
            dataset.domains,
            provenance,
            raw={name: nets[name] for name in EMA},
        )
        summary = {
            "stage": "II",
            "steps": end_step,
            "planned_steps": t.steps,
            "stopped_by": stopped_by,
            "seconds_this_call": round(elapsed, 1),
            "resumed_from": start_step,
            "world_size": info.world_size,
            "device": str(device),
            "amp": str(parts.amp_dtype).replace("torch.", "") if parts.amp_dtype else "off",
            "domains": dataset.domains,
            "train_faces": len(dataset),
            "iterations_per_s_this_call": done_here / elapsed if elapsed > 0 and done_here else None,
            "skipped_nonfinite_updates": skipped,
            "perceptual": perceptual.name if perceptual is not None else None,
            "first_losses": first,
            "last_losses": last,
            "ddp": sync,
        }
        atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
        files.update(
            {
                "lens": run_dir / LENS,
                "heatmap_net": run_dir / NET,
                "config": run_dir / CONFIG,
                "summary": run_dir / SUMMARY,
                "checkpoint": checkpoint_path,
            }
        )
        writer.close()
    barrier(info)
    return RunResult(run_dir, summary, files)


def _sample_grid(out: IterationOutput, batch: dict[str, torch.Tensor], count: int = 4) -> torch.Tensor:
    """Rows: capture y, U's coarse mask, latent-guided x̃, reference r, reference-guided x̃ (the
    private sources are not logged)."""
    import torch.nn.functional as F
    from torchvision.utils import make_grid

    capture = out["_capture"]
    n, size = min(count, capture.shape[0]), capture.shape[-1]
    heat = out["_heat"][:n]
    mask = F.interpolate(heat[:, -2:-1].clamp(0, 1), size=(size, size), mode="nearest").expand(-1, 3, -1, -1)
    rows = [capture[:n], mask, out["_fake_latent"][:n], batch["reference"][:n], out["_fake_ref"][:n]]
    return make_grid(torch.cat([r.detach().float().cpu().clamp(0, 1) for r in rows]), nrow=n, padding=1)
