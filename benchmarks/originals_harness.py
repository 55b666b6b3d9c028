"""Timing harness for the ORIGINAL code the speed targets were set against (ours; theirs is imported).

The authors' code is never copied into this repository: ``benchmarks/originals_harness_setup.sh``
exports it from the fetched mirrors into the git-ignored ``.originals/`` folder (or
``$PRIVLENS_ORIGINALS``), and this module imports it from there, for timing only:

* the authors' camera, ``Face-DeId/Camera/Optics.py`` of carlosh93/privacy-preserving-vision
  (``Camera(device, N=256, zernike_terms=p)``; its forward recomputes the PSF and convolves
  circularly with ``rfftn``). Their ``Utils.py`` imports ``poppy`` only to build the Zernike basis
  once in ``__init__``; where poppy is not installed a stand-in module supplies the same Noll basis
  from :mod:`privlens.optics.zernike` (values only, no effect on the timed forward/backward).
* the original StarGAN v2 (clovaai/stargan-v2): ``core.model.build_model`` (FAN with random
  weights: ``wing.ckpt`` is not available offline, which changes no timing), and one training
  iteration exactly as the body of ``Solver.train`` runs it (2 D steps, 2 G steps, EMA), calling
  their ``compute_d_loss``, ``compute_g_loss`` and ``moving_average``; reference-guided inference
  as their ``utils.translate_using_reference`` does it (FAN heatmaps, S on the reference, G).

Every function returns plain dicts of numbers so ``bench_gpu.py`` can put them in one table.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ORIGINALS = Path(os.environ.get("PRIVLENS_ORIGINALS", ROOT / ".originals"))
CAMERA_DIR = ORIGINALS / "privacy-preserving-vision" / "Face-DeId"
STARGAN_DIR = ORIGINALS / "stargan-v2"


class OriginalsMissingError(RuntimeError):
    """The authors' code is not in ``.originals/`` (run benchmarks/originals_harness_setup.sh)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _install_poppy_standin() -> bool:
    """Register a minimal ``poppy.zernike.zernike_basis`` if poppy is absent; True if it did."""
    if "poppy" in sys.modules:  # the real one, or the stand-in from an earlier call
        return getattr(sys.modules["poppy"], "privlens_standin", False)
    if importlib.util.find_spec("poppy") is not None:
        return False
    from privlens.optics.zernike import zernike_basis

    def basis(nterms: int = 15, npix: int = 512, outside: float = np.nan, **_: object) -> np.ndarray:
        values = zernike_basis(nterms, npix).numpy()
        centres = (np.arange(npix) + 0.5) / npix * 2 - 1
        rho = np.hypot(*np.meshgrid(centres, centres))
        values[:, rho > 1] = outside
        return values

    poppy = types.ModuleType("poppy")
    poppy.privlens_standin = True
    zernike = types.ModuleType("poppy.zernike")
    zernike.zernike_basis = basis
    poppy.zernike = zernike
    sys.modules["poppy"] = poppy
    sys.modules["poppy.zernike"] = zernike
    return True


def _import_from(folder: Path, module: str):
    if not folder.is_dir():
        raise OriginalsMissingError(f"{folder} not found: run benchmarks/originals_harness_setup.sh first")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(module)


# --------------------------------------------------------------------------- the authors' camera
def authors_camera(terms: int, device: torch.device, size: int = 256) -> tuple[torch.nn.Module, bool]:
    """The authors' ``Camera`` with ``terms`` Zernike terms on ``device``; and whether poppy was
    replaced by the stand-in."""
    standin = _install_poppy_standin()
    optics = _import_from(CAMERA_DIR, "Camera.Optics")
    torch.manual_seed(0)
    with contextlib.redirect_stdout(None):
        camera = optics.Camera(device=str(device), N=size, zernike_terms=terms)
    camera.zernike_volume = camera.zernike_volume.to(device)
    return camera.to(device), standin


def time_authors_camera(
    device: torch.device,
    terms: int = 15,
    size: int = 256,
    forward_batch: int = 256,
    backward_batch: int = 8,
    repeats: int = 20,
    warmup: int = 3,
) -> dict[str, float | int | bool | str]:
    """Forward throughput (no grad, PSF recomputed per call, as their forward does) and
    forward+backward milliseconds of the authors' camera."""
    camera, standin = authors_camera(terms, device, size)
    g = torch.Generator().manual_seed(0)
    big = torch.rand(forward_batch, 3, size, size, generator=g).to(device)
    small = torch.rand(backward_batch, 3, size, size, generator=g).to(device)

    @torch.no_grad()
    def forward() -> None:
        camera(big)

    def step() -> None:
        camera.zero_grad(set_to_none=True)
        camera(small).mean().backward()

    fwd = _median_seconds(forward, device, repeats, warmup)
    fwd_bwd = _median_seconds(step, device, repeats, warmup)
    return {
        "code": "carlosh93/privacy-preserving-vision Face-DeId/Camera/Optics.py",
        "terms": terms,
        "size": size,
        "forward_batch": forward_batch,
        "forward_images_per_s": forward_batch / fwd,
        "forward_ms": fwd * 1e3,
        "fwd_bwd_batch": backward_batch,
        "fwd_bwd_ms": fwd_bwd * 1e3,
        "poppy_standin": standin,
    }


# --------------------------------------------------------------------------- StarGAN v2
def stargan_args(size: int = 256, num_domains: int = 2, w_hpf: float = 1.0):
    munch = importlib.import_module("munch")
    return munch.Munch(
        img_size=size,
        style_dim=64,
        latent_dim=16,
        hidden_dim=512,
        num_domains=num_domains,
        w_hpf=w_hpf,
        wing_path=None,
        lambda_reg=1.0,
        lambda_sty=1.0,
        lambda_ds=1.0,
        lambda_cyc=1.0,
        lr=1e-4,
        f_lr=1e-6,
        beta1=0.0,
        beta2=0.99,
        weight_decay=1e-4,
    )


def build_stargan(device: torch.device, size: int = 256, w_hpf: float = 1.0):
    """Their networks and Adam optimisers, initialised as ``Solver.__init__`` does (``w_hpf`` 1:
    the CelebA-HQ setting with FAN masks; 0 leaves FAN out, only for quick CPU smoke runs)."""
    solver = _import_from(STARGAN_DIR, "core.solver")
    model = importlib.import_module("core.model")
    utils = importlib.import_module("core.utils")
    args = stargan_args(size, w_hpf=w_hpf)
    torch.manual_seed(0)
    nets, nets_ema = model.build_model(args)
    for name, net in nets.items():
        net.to(device)
        if name != "fan":
            net.apply(utils.he_init)
    for net in nets_ema.values():
        net.to(device)
    for name in ("generator", "mapping_network", "style_encoder"):  # ema = copy of the initial nets
        nets_ema[name].load_state_dict(nets[name].state_dict())
    optims = {
        name: torch.optim.Adam(
            nets[name].parameters(),
            lr=args.f_lr if name == "mapping_network" else args.lr,
            betas=[args.beta1, args.beta2],
            weight_decay=args.weight_decay,
        )
        for name in nets
        if name != "fan"
    }
    return solver, args, nets, nets_ema, optims


def _stargan_inputs(device: torch.device, batch: int, size: int, latent_dim: int, num_domains: int = 2):
    g = torch.Generator().manual_seed(0)
    return {
        "x_real": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
        "y_org": torch.randint(num_domains, (batch,), generator=g).to(device),
        "x_ref": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
        "x_ref2": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
        "y_trg": torch.randint(num_domains, (batch,), generator=g).to(device),
        "z_trg": torch.randn(batch, latent_dim, generator=g).to(device),
        "z_trg2": torch.randn(batch, latent_dim, generator=g).to(device),
    }


def time_stargan_training(
    device: torch.device,
    size: int = 256,
    batch: int = 8,
    iters: int = 5,
    warmup: int = 2,
    bf16: bool = False,
    w_hpf: float = 1.0,
) -> dict[str, float | int | str | None]:
    """Iterations/s of the original training iteration (the body of ``Solver.train``)."""
    solver, args, nets, nets_ema, optims = build_stargan(device, size, w_hpf)
    x = _stargan_inputs(device, batch, size, args.latent_dim)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def reset() -> None:
        for optim in optims.values():
            optim.zero_grad()

    def iteration() -> None:
        x_real, y_org, y_trg = x["x_real"].clone(), x["y_org"], x["y_trg"]
        with amp:
            masks = nets.fan.get_heatmap(x_real) if args.w_hpf > 0 else None
            d_loss, _ = solver.compute_d_loss(nets, args, x_real, y_org, y_trg, z_trg=x["z_trg"], masks=masks)
        reset()
        d_loss.backward()
        optims["discriminator"].step()
        with amp:
            d_loss, _ = solver.compute_d_loss(nets, args, x_real, y_org, y_trg, x_ref=x["x_ref"], masks=masks)
        reset()
        d_loss.backward()
        optims["discriminator"].step()
        with amp:
            g_loss, _ = solver.compute_g_loss(
                nets, args, x_real, y_org, y_trg, z_trgs=[x["z_trg"], x["z_trg2"]], masks=masks
            )
        reset()
        g_loss.backward()
        optims["generator"].step()
        optims["mapping_network"].step()
        optims["style_encoder"].step()
        with amp:
            g_loss, _ = solver.compute_g_loss(
                nets, args, x_real, y_org, y_trg, x_refs=[x["x_ref"], x["x_ref2"]], masks=masks
            )
        reset()
        g_loss.backward()
        optims["generator"].step()
        solver.moving_average(nets.generator, nets_ema.generator, beta=0.999)
        solver.moving_average(nets.mapping_network, nets_ema.mapping_network, beta=0.999)
        solver.moving_average(nets.style_encoder, nets_ema.style_encoder, beta=0.999)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        iteration()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        iteration()
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "code": "clovaai/stargan-v2 core/model.py + core/solver.py losses (FAN random init)",
        "precision": "bf16 autocast" if bf16 else "fp32",
        "size": size,
        "batch": batch,
        "iterations_per_s": iters / elapsed,
        "iters": iters,
        "w_hpf": w_hpf,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None,
    }


def time_stargan_inference(
    device: torch.device,
    size: int = 256,
    batch: int = 64,
    repeats: int = 5,
    warmup: int = 2,
    bf16: bool = False,
) -> dict[str, float | int | str]:
    """Images/s of reference-guided synthesis with the EMA networks: FAN heatmaps of the source,
    S on the reference, G (as ``core.utils.translate_using_reference``)."""
    _, args, _, nets_ema, _ = build_stargan(device, size)
    x = _stargan_inputs(device, batch, size, args.latent_dim)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    @torch.no_grad()
    def run() -> None:
        with amp:
            masks = nets_ema.fan.get_heatmap(x["x_real"])
            style = nets_ema.style_encoder(x["x_ref"], x["y_trg"])
            nets_ema.generator(x["x_real"], style, masks=masks)

    seconds = _median_seconds(run, device, repeats, warmup)
    return {
        "code": "clovaai/stargan-v2 FAN + S + G (reference-guided, FAN random init)",
        "precision": "bf16 autocast" if bf16 else "fp32",
        "size": size,
        "batch": batch,
        "images_per_s": batch / seconds,
    }
