"""Stage I: learn the lens (Zernike coefficients beta) and the heatmap network U together.

Three modes share one loop (:func:`run_stage1`):

* ``heatmap``: pretrain U on clean scenes x against U*(x) (no camera); reports NME on ``val``.
* ``optics``: the paper's Stage I. y = camera(x); minimise
  ``(1 - ||x - y||^2) + alpha1 ||H - H_f||_2 + alpha2 ||U(y) - U*(x)||_1`` over beta and U.
* ``lowres``: the "Ours-LR" baseline: open optics and a large-pixel sensor, fixed; only U trains
  on ``alpha2 ||U(y) - U*(x)||_1``.

Precision: under CUDA, U runs in bf16 autocast; the camera (pupil phase, matrix Fourier
transform, FFT convolution) and every loss run in float32 with autocast disabled. The pupil phase
``k * phi`` reaches hundreds of radians, which bf16 (8-bit mantissa) would get wrong by whole
radians, and the FFT convolution sums N^2 products whose rounding bf16 cannot carry.

Reproducibility: the samples, augmentation draws and camera noise of step ``s`` are functions of
``(seed, s, rank)``; together with the checkpointed weights, buffers and optimiser states this makes
a resumed run reach the same state as an uninterrupted one.

Time box: ``train.max_seconds`` ends the loop after the step that crosses it; the run then
validates and saves its checkpoint, lens, U and summary as at the last step (``summary.json``:
``steps`` done, ``planned_steps``, ``stopped_by: "max_seconds"``), and a later call with a larger
budget resumes. The learning-rate schedule stays that of ``train.steps``, so a run cut early ends
at a higher rate than planned.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from privlens.faces.heatmaps import heatmap_to_image_coords
from privlens.files import atomic_write_text
from privlens.nets import HeatmapNet, soft_argmax
from privlens.optics.camera import Camera
from privlens.train import tblog
from privlens.train.checkpoint import (
    load_checkpoint,
    load_heatmap_net,
    read_heatmap_net,
    save_checkpoint,
    save_heatmap_net,
)
from privlens.train.config import ConfigError, to_dict, to_yaml
from privlens.train.data import LandmarkFaces, StepBatchSampler, mix_seed
from privlens.train.distributed import (
    DistInfo,
    barrier,
    init_distributed,
    max_difference_across_ranks,
    out_of_time,
    shutdown,
)
from privlens.train.losses import Stage1Loss, heatmap_targets, stage1_loss
from privlens.train.metrics import landmark_nme
from privlens.train.objectives import adversary_psnr, adversary_update, build_adversary, robust_losses
from privlens.train.runs import RunResult, append_metrics, check_data_root, locked_run_folder, trim_metrics
from privlens.train.stage1_config import Stage1Config

Mode = Literal["heatmap", "optics", "lowres"]
MODES: tuple[str, ...] = ("heatmap", "optics", "lowres")

CHECKPOINT = "checkpoint.safetensors"
LENS = "lens.safetensors"
NET = "heatmap_net.safetensors"
CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tb"

# Settings that may change between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = (
    "train.steps",
    "train.max_seconds",
    "train.progress",
    "train.log_every",
    "train.image_every",
    "data.num_workers",
)


class Stage1Model(nn.Module):
    """Camera (optional) followed by U; ``forward(x) -> (y, H or None, [U(y) per stack])``."""

    def __init__(self, camera: Camera | None, net: HeatmapNet, amp_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.camera = camera
        self.net = net
        self.amp_dtype = amp_dtype

    def capture(self, scene: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.camera is None:
            return scene, None
        with torch.autocast(scene.device.type, enabled=False):  # optics in float32, see module doc
            capture, psf = self.camera(scene.float())
        return capture, psf

    def forward(self, scene: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        capture, psf = self.capture(scene)
        enabled = self.amp_dtype is not None
        with torch.autocast(scene.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=enabled):
            predictions = self.net.forward_stacks(capture)
        return capture, psf, predictions


class StepOutput(NamedTuple):
    """What one training step saw and produced (for logging)."""

    losses: Stage1Loss
    capture: torch.Tensor
    psf: torch.Tensor | None
    predictions: list[torch.Tensor]
    target: torch.Tensor
    grads_finite: bool
    adversary_psnr: float | None = None
    lens_pulled_back: int = 0  # halvings of this step's beta update to keep the mask simulable


def train_step(
    model: nn.Module,
    camera: Camera | None,
    optimizers: dict[str, torch.optim.Optimizer],
    reference_psf: torch.Tensor | None,
    config: Stage1Config,
    learn_optics: bool,
    scene: torch.Tensor,
    landmarks: torch.Tensor,
    psf_scale: float = 1.0,
    adversary: nn.Module | None = None,
    adversary_on: bool = True,
) -> StepOutput:
    """One optimisation step on a batch: render U*(x) from the landmarks on the batch's device,
    capture, predict, Eq. 6, backward, step every optimiser (skipped if a gradient is not finite),
    then keep beta inside ``camera.mirror_limit_um``. ``model`` may be wrapped in DDP.
    ``psf_scale`` divides ||H - H_f|| (``loss.psf_norm``, see :func:`psf_scale_of`).
    ``adversary``: the in-loop attacker of ``loss.adversary_weight`` (its optimiser is
    ``optimizers["adversary"]``, stepped on its own loss after the lens and U); ``adversary_on``:
    whether its PSNR enters the lens's loss this step (false during ``loss.adversary_warmup``)."""
    size = config.data.image_size
    capture, psf, predictions = model(scene)
    heat = predictions[-1].shape[-1]  # size // U's stride
    target = heatmap_targets(landmarks, size, heat, config.net.heatmap_sigma, config.net.mask_sigma_fraction)
    losses = stage1_loss(
        scene,
        capture,
        psf if psf is not None else scene.new_zeros(()),
        reference_psf,
        predictions,
        target,
        config.loss.alpha1,
        config.loss.alpha2,
        optics=learn_optics,
        heatmap=config.loss.heatmap,
        foreground_weight=config.loss.foreground_weight,
        coord_weight=config.loss.coord_weight,
        landmarks=landmarks,
        psf_scale=psf_scale,
    )
    if learn_optics and config.loss.objective == "robust":  # attack-aware privacy term
        losses = robust_losses(losses, scene, psf, config.loss)
    attacked = None
    if learn_optics and adversary is not None:
        with torch.set_grad_enabled(adversary_on):  # during the warm-up only logged: no graph
            attacked = adversary_psnr(adversary, capture, scene, psf)
        if adversary_on:
            optics = losses.optics + config.loss.adversary_weight * attacked / 10
            losses = losses._replace(total=losses.total - losses.optics + optics, optics=optics)
    own = {name: o for name, o in optimizers.items() if name != "adversary"}
    for optimizer in own.values():
        optimizer.zero_grad(set_to_none=True)
    losses.total.backward()
    finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    pulled_back = 0
    if finite:
        before = camera.coeffs_um.detach().clone() if learn_optics and camera is not None else None
        for optimizer in own.values():
            optimizer.step()
        if learn_optics and camera is not None and config.camera.mirror_limit_um is not None:
            camera.project_(config.camera.mirror_limit_um)
        if before is not None:
            pulled_back = keep_simulable_(camera, before)
    if learn_optics and adversary is not None:  # the attacker's move, on the captures just seen
        adversary_update(adversary, optimizers["adversary"], capture, scene, psf)
    psnr_value = None if attacked is None else float(attacked.detach())
    return StepOutput(losses, capture, psf, predictions, target, finite, psnr_value, pulled_back)


def keep_simulable_(camera: Camera, before: torch.Tensor, halvings: int = 8) -> int:
    """Pull an optimiser step on beta back towards ``before`` until the camera can simulate the
    mask within its ``max_pupil_samples`` (halving the step up to ``halvings`` times, then undoing
    it). Returns the number of halvings (0: the step stood). Without this, a lens pushed hard
    towards privacy outgrows the simulable pupil sampling and the run stops with
    :class:`~privlens.optics.psf.PupilSamplingError`; with it, the lens stays at that boundary."""
    for pulled in range(halvings + 1):
        if camera.simulable():
            return pulled
        with torch.no_grad():
            camera.coeffs_um.copy_(before + 0.5 * (camera.coeffs_um - before))
    with torch.no_grad():
        camera.coeffs_um.copy_(before)
    return halvings + 1


def lr_factor(schedule: str, step: int, steps: int, final_fraction: float) -> float:
    """Multiplier of every base learning rate at ``step`` (0-based) of ``steps``: 1 for
    ``constant``; for ``cosine`` half a cosine from 1 down to ``final_fraction`` at the last step.
    A function of the step alone, so a resumed run follows the same schedule."""
    if schedule == "constant" or steps <= 1:
        return 1.0
    progress = min(step / (steps - 1), 1.0)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def psf_scale_of(camera: Camera | None, reference_psf: torch.Tensor | None, config: Stage1Config) -> float:
    """The divisor of ||H - H_f||: 1 (``loss.psf_norm: none``, Eq. 4 as printed) or
    ||H_open - H_f||, the distance of the open lens to the reference (``open``)."""
    if config.loss.psf_norm == "none" or camera is None or reference_psf is None:
        return 1.0
    with torch.no_grad():
        open_psf = camera.psf(torch.zeros_like(camera.coeffs_um))
        return float(torch.linalg.vector_norm((open_psf - reference_psf).flatten()).clamp_min(1e-12))


def build_camera(mode: Mode, config: Stage1Config) -> Camera | None:
    """The camera of a mode: none (``heatmap``), the learnable lens (``optics``, starting from
    ``camera.init``) or the fixed low-resolution camera (``lowres``)."""
    from privlens.optics.presets import LENS_PRESETS, make_camera

    c = config.camera
    if mode == "heatmap":
        return None
    settings: dict[str, Any] = {
        "convolution": c.convolution,
        "noise_sigma": c.noise_sigma,
        "sensor_noise": c.sensor_noise,
        "frozen_terms": tuple(c.frozen_terms),
    }
    if c.full_scale_e is not None:
        settings["full_scale_e"] = c.full_scale_e
    try:
        if mode == "lowres":
            camera = make_camera(
                "lowres", config.data.image_size, num_terms=c.num_terms, lowres_size=c.lowres_size, **settings
            )
            camera.coeffs_um.requires_grad_(False)
            return camera
        if c.init in LENS_PRESETS:
            if c.init == "lowres":
                raise ConfigError("camera.init: the lowres sensor is the `train lowres` baseline, not a lens")
            return make_camera(c.init, config.data.image_size, num_terms=c.num_terms, **settings)
        camera = make_camera(c.init, config.data.image_size, **settings)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"camera: {error}") from error
    if camera.config.num_terms != c.num_terms:
        raise ConfigError(
            f"camera.num_terms: {c.num_terms}, but the lens file {c.init} has {camera.config.num_terms} terms"
        )
    return camera


def _pretrained_stride(path: str) -> int:
    try:
        _, arch, _ = read_heatmap_net(path)
    except ValueError as error:
        raise ConfigError(f"net.pretrained: {error}") from error
    return int(arch.get("stride", 4))


def build_net(config: Stage1Config) -> HeatmapNet:
    """U as configured, with the weights of ``net.pretrained`` when given."""
    n = config.net
    if n.pretrained is not None and not Path(n.pretrained).is_file():
        raise ConfigError(f"net.pretrained: weight file not found: {n.pretrained}")
    stride = n.stride
    if stride is None:  # as the pretrained file (files without a stride are FAN's 4)
        stride = 4 if n.pretrained is None else _pretrained_stride(n.pretrained)
    net = HeatmapNet(width=n.width, num_stacks=n.num_stacks, depth=n.depth, stride=stride)
    if n.pretrained is not None:
        try:
            pretrained = load_heatmap_net(n.pretrained, expect=net.arch)
        except ValueError as error:
            raise ConfigError(f"net.pretrained: {error}") from error
        net.load_state_dict(pretrained.state_dict())
    return net


def _amp_dtype(config: Stage1Config, device: torch.device) -> torch.dtype | None:
    if config.train.amp == "off":
        return None
    if config.train.amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


def _check_resumable(saved: dict[str, Any], current: dict[str, Any], mode: str, saved_mode: str) -> None:
    if saved_mode != mode:
        raise ConfigError(
            f"the run folder holds a `train {saved_mode}` run, not `train {mode}`; use another --out"
        )

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    # Keys added to the config after the checkpoint was written count as their defaults there.
    defaults = flat(to_dict(Stage1Config()))
    a, b = {**defaults, **flat(saved)}, flat(current)
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    if differing:
        raise ConfigError(
            f"{differing[0]}: differs from the checkpointed run ({a.get(differing[0])!r} there, "
            f"{b.get(differing[0])!r} now); use another --out or --no-resume"
        )


@torch.no_grad()
def evaluate(
    model: Stage1Model, dataset: LandmarkFaces, config: Stage1Config, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Held-out metrics on clean (noise-free) captures: ``heatmap_l1`` (||U(y) - U*(x)||_1, last
    stack), ``nme`` (soft-argmax landmarks, inter-ocular normalisation) and ``distortion``."""
    was_training = model.training
    model.eval()
    size = config.data.image_size
    totals = {"heatmap_l1": 0.0, "nme": 0.0, "distortion": 0.0}
    count = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        scene = batch["image"].to(device)
        landmarks = batch["landmarks"].to(device)
        capture, _, predictions = model(scene)
        heat = predictions[-1].shape[-1]
        target = heatmap_targets(
            landmarks, size, heat, config.net.heatmap_sigma, config.net.mask_sigma_fraction
        )
        last = predictions[-1].float()
        b = scene.shape[0]
        totals["heatmap_l1"] += float((last - target).abs().mean()) * b
        totals["distortion"] += float((scene - capture.float()).square().mean()) * b
        points = heatmap_to_image_coords(soft_argmax(last[:, :68]), size, heat)
        totals["nme"] += float(landmark_nme(points, landmarks).sum())
        count += b
    model.train(was_training)
    return {k: v / count for k, v in totals.items()}


def _grad_norm(parameters) -> float:
    norms = [p.grad.detach().float().norm() for p in parameters if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def run_stage1(
    mode: Mode, config: Stage1Config, run_dir: str | Path, resume: bool = True, stop_after: int | None = None
) -> RunResult:
    """Train (or resume) a Stage I run in ``run_dir``; see the README for the folder's contents.

    ``stop_after``: end the process's loop after this many steps of this call, as a kill would
    (the last checkpoint stays; no final outputs are written). For tests of resumption.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    root = check_data_root(config)
    info = init_distributed(config.train.device)
    try:
        with locked_run_folder(run_dir, info.is_main):  # one training per run folder
            return _run(mode, config, Path(run_dir), root, info, resume, stop_after)
    finally:
        shutdown(info)


def _run(
    mode: Mode,
    config: Stage1Config,
    run_dir: Path,
    root: Path,
    info: DistInfo,
    resume: bool,
    stop_after: int | None,
) -> RunResult:
    device = info.device
    t = config.train
    size = config.data.image_size
    torch.manual_seed(mix_seed(t.seed, 0x5EED))  # identical initial weights on every rank

    try:
        d = config.data
        train_set = LandmarkFaces(
            root,
            "train",
            size,
            augment=True,
            crop_p=d.crop_p,
            flip_p=d.flip_p,
            rotate_deg=d.rotate_deg,
            scale_jitter=d.scale_jitter,
            shift_fraction=d.shift_fraction,
            colour=d.colour,
            shape_mix_p=d.shape_mix_p,
        )
        val_set = LandmarkFaces(root, "val", size, augment=False, limit=config.data.val_limit)
    except (OSError, ValueError) as error:  # empty split, unreadable landmarks.csv
        raise ConfigError(f"data.root: {error}") from error

    camera = build_camera(mode, config)
    net = build_net(config)
    model = Stage1Model(camera, net, _amp_dtype(config, device)).to(device)
    optimizers: dict[str, torch.optim.Optimizer] = {
        "net": torch.optim.Adam(net.parameters(), lr=config.net.lr, weight_decay=config.net.weight_decay)
    }
    learn_optics = mode == "optics"
    if learn_optics:
        assert camera is not None
        optimizers["camera"] = torch.optim.Adam([camera.coeffs_um], lr=config.camera.lr)
    adversary = None
    if learn_optics and config.loss.adversary_weight > 0:
        adversary = build_adversary(
            config.loss.adversary_frontend, config.loss.adversary_width, config.camera.convolution
        ).to(device)
        optimizers["adversary"] = torch.optim.Adam(adversary.parameters(), lr=config.loss.adversary_lr)
    reference_psf = camera.defocus_psf(config.loss.defocus_um) if learn_optics else None
    psf_scale = psf_scale_of(camera, reference_psf, config) if learn_optics else 1.0
    modules: dict[str, nn.Module] = {"net": net}
    if camera is not None:
        modules["camera"] = camera
    if adversary is not None:
        modules["adversary"] = adversary

    config_dict = to_dict(config)
    start_step, val_history = 0, []
    checkpoint_path = run_dir / CHECKPOINT
    if resume and checkpoint_path.is_file():
        meta = load_checkpoint(checkpoint_path, modules, optimizers)
        _check_resumable(meta["config"], config_dict, mode, meta["mode"])
        start_step, val_history = int(meta["step"]), list(meta["val_history"])
    beta_start = None if camera is None else camera.coeffs_um.detach().cpu().clone()
    initial_beta = beta_start.tolist() if beta_start is not None else None

    wrapped: nn.Module = model
    if info.distributed:
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=True
        )

    writer = None
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG, f"# privlens train {mode}\n" + to_yaml(config))
        writer = tblog.open_writer(run_dir / TENSORBOARD, True, purge_step=start_step)
        trim_metrics(run_dir / METRICS, start_step)

    def validate(step: int) -> None:
        if info.is_main:
            metrics = {"step": step, **evaluate(model, val_set, config, device, t.batch_size)}
            val_history.append(metrics)
            append_metrics(run_dir / METRICS, {"kind": "val", **metrics})
            for key in ("heatmap_l1", "nme", "distortion"):
                writer.add_scalar(f"val/{key}", metrics[key], step)
        barrier(info)

    def checkpoint(step: int) -> None:
        if info.is_main:
            meta = {"step": step, "mode": mode, "config": config_dict, "val_history": val_history}
            save_checkpoint(checkpoint_path, modules, optimizers, meta)
        barrier(info)

    if start_step == 0 and not val_history:
        validate(0)
    sampler = StepBatchSampler(
        len(train_set), t.batch_size, t.steps, t.seed, start_step, info.rank, info.world_size
    )
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=config.data.num_workers)
    progress = None
    if info.is_main and t.progress:
        from tqdm import tqdm

        progress = tqdm(
            total=t.steps, initial=start_step, desc=f"train {mode}", unit="step", dynamic_ncols=True
        )

    model.train()
    last: dict[str, float] = {}
    skipped = 0
    pulled_back = 0  # steps whose beta update was shortened to keep the mask simulable
    began = time.perf_counter()
    done_here = 0
    step = start_step
    end_step, stopped_by = t.steps, None
    base_lrs = {name: [g["lr"] for g in o.param_groups] for name, o in optimizers.items()}
    for step, batch in enumerate(loader, start=start_step):
        torch.manual_seed(mix_seed(t.seed, step, info.rank, 0xA015E))  # camera read noise
        factor = lr_factor(t.lr_schedule, step, t.steps, t.lr_final_fraction)
        for name, optimizer in optimizers.items():
            for group, base in zip(optimizer.param_groups, base_lrs[name], strict=True):
                group["lr"] = base * factor
        scene = batch["image"].to(device, non_blocking=True)
        landmarks = batch["landmarks"].to(device, non_blocking=True)
        out = train_step(
            wrapped,
            camera,
            optimizers,
            reference_psf,
            config,
            learn_optics,
            scene,
            landmarks,
            psf_scale,
            adversary,
            adversary_on=step >= config.loss.adversary_warmup,
        )
        losses, capture, psf, predictions, target = (
            out.losses,
            out.capture,
            out.psf,
            out.predictions,
            out.target,
        )
        skipped += not out.grads_finite
        pulled_back += out.lens_pulled_back > 0
        current = step + 1
        done_here += 1
        last = {
            k: float(getattr(losses, k).detach()) for k in ("total", "distortion", "psf", "heatmap", "optics")
        }
        if losses.coords is not None:
            last["coords"] = float(losses.coords.detach())
        if out.adversary_psnr is not None:
            last["adversary_psnr"] = out.adversary_psnr
        if info.is_main:
            if current % t.log_every == 0 or current == t.steps:
                for key, value in last.items():
                    writer.add_scalar(f"loss/{key}", value, current)
                writer.add_scalar("grad/net_norm", _grad_norm(net.parameters()), current)
                if camera is not None:
                    if learn_optics:
                        writer.add_scalar("grad/beta_norm", _grad_norm([camera.coeffs_um]), current)
                    for j, value in enumerate(camera.coeffs_um.detach().cpu().tolist(), start=1):
                        writer.add_scalar(f"beta/Z{j}", value, current)
                append_metrics(run_dir / METRICS, {"kind": "train", "step": current, **last})
            if current % t.image_every == 0 or current == t.steps:
                if psf is not None:
                    writer.add_image("psf", tblog.psf_image(psf), current)
                writer.add_image(
                    "samples", tblog.sample_grid(scene, capture, predictions[-1], target), current
                )
            if progress is not None:
                progress.update(1)
                progress.set_postfix(
                    loss=f"{last['total']:.4f}",
                    dist=f"{last['distortion']:.4f}",
                    heat=f"{last['heatmap']:.4f}",
                )
        end_step = current
        if t.max_seconds is not None and current < t.steps and out_of_time(began, t.max_seconds, info):
            stopped_by = "max_seconds"
            if info.is_main and current % t.log_every:  # the step's losses, unless logged above
                append_metrics(run_dir / METRICS, {"kind": "train", "step": current, **last})
            break
        if current % t.val_every == 0 and current != t.steps:
            validate(current)
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

    final_step = end_step
    if not val_history or val_history[-1]["step"] != final_step:
        validate(final_step)
    checkpoint(final_step)

    sync = {}
    if info.distributed:
        sync = {
            "world_size": info.world_size,
            "max_beta_diff": max_difference_across_ranks(info, camera.coeffs_um)
            if camera is not None
            else 0.0,
            "max_net_diff": max_difference_across_ranks(
                info, torch.cat([p.detach().flatten() for p in net.parameters()])
            ),
        }
    files: dict[str, Path] = {}
    summary: dict[str, Any] = {}
    if info.is_main:
        provenance = {"stage": "I", "mode": mode, "steps": final_step, "config": config_dict}
        mean_shape = train_set.mean_shape()
        files["net"] = save_heatmap_net(
            net, run_dir / NET, provenance, image_size=size, mean_shape=mean_shape
        )
        if camera is not None:
            from privlens.optics.lensfile import save_lens

            files["lens"] = save_lens(camera, run_dir / LENS, provenance)
        summary = {
            "mode": mode,
            "steps": final_step,
            "planned_steps": t.steps,
            "stopped_by": stopped_by,
            "resumed_from": start_step,
            "world_size": info.world_size,
            "device": str(device),
            "amp": str(model.amp_dtype).replace("torch.", "") if model.amp_dtype else "off",
            "steps_per_s_this_call": done_here / elapsed if elapsed > 0 and done_here else None,
            "skipped_nonfinite_steps": skipped,
            "lens_steps_pulled_back": pulled_back,
            "last_train_losses": last,
            "val_start": val_history[0] if val_history else None,
            "val_end": val_history[-1] if val_history else None,
            "beta_start_um": initial_beta if start_step == 0 else None,
            "beta_end_um": camera.coeffs_um.detach().cpu().tolist() if camera is not None else None,
            "ddp": sync or None,
        }
        atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
        files.update(
            {"config": run_dir / CONFIG, "summary": run_dir / SUMMARY, "checkpoint": checkpoint_path}
        )
        writer.close()
    barrier(info)
    return RunResult(run_dir, summary, files)
