"""Stage II training speed: StarGAN v2 iterations per second of the real training iteration.

    python benchmarks/bench_stage2.py [--device cpu|cuda] [--size 256] [--batch 8] [--iters 5]
        [--variants fp32,channels_last,bf16,bf16+channels_last,compile] [--lpips real|random-backbone|off]
        [--base-width N] [--max-width 512] [--u-width 256] [--threads N]

One iteration is what StarGAN v2 counts: 2 D steps (latent- and reference-guided, R1 on the
references), 2 G steps, the EMA update of G, F and S; here it also runs the frozen camera and U
(captures, heatmaps, and m̂ = U(camera(x̃)) for the cycle loss), LPIPS and the expression loss.
It times :func:`privlens.train.stage2.train_iteration` on synthetic faces and landmarks (no data
set, no data loading) with paper-scale networks (StarGAN v2 widths at 256 px, U of width 256)
unless told otherwise. Each variant starts from the same weights:

* ``fp32``: float32 (TF32 matmuls allowed on CUDA);
* ``channels_last``: NHWC memory format for the networks and images;
* ``bf16`` / ``bf16+channels_last``: bf16 autocast for G, S, F, D and U (camera and losses fp32);
* ``compile``: ``torch.compile`` of G, S and F (D stays eager: R1 needs a double backward, which
  compiled graphs do not support), channels_last, bf16 on CUDA.

LPIPS: ``real`` needs torchvision's ImageNet backbone (``$PRIVLENS_LPIPS_BACKBONE`` or the cache)
and stops if it is unavailable; ``random-backbone`` is the named stand-in (the same cost);
``off`` leaves the term out. Prints a Markdown table and one JSON line per variant.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from timing import cpu_name

from privlens.nets import HeatmapNet
from privlens.optics.presets import make_camera
from privlens.train import losses_stage2 as L
from privlens.train import stage2
from privlens.train.config import load_config
from privlens.train.stage2_config import Stage2Config

VARIANTS = ("fp32", "channels_last", "bf16", "bf16+channels_last", "compile")


def synthetic_batch(
    size: int, batch: int, device: torch.device, num_domains: int = 2
) -> dict[str, torch.Tensor]:
    """Smooth random faces-sized images and a plausible 68-point layout jittered per sample."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(3 * batch, 3, 8, 8, generator=g)
    images = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(0, 1)
    angles = torch.linspace(0, 2 * torch.pi, 69)[:68]
    ring = torch.stack([angles.cos(), angles.sin()], dim=-1) * size * 0.3 + size / 2
    landmarks = ring + torch.randn(batch, 68, 2, generator=g) * size * 0.01
    return {
        "image": images[:batch].to(device),
        "landmarks": landmarks.to(device),
        "domain": torch.randint(num_domains, (batch,), generator=g).to(device),
        "reference": images[batch : 2 * batch].to(device),
        "reference2": images[2 * batch :].to(device),
        "target": torch.randint(num_domains, (batch,), generator=g).to(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", default="fp32,channels_last,bf16,bf16+channels_last,compile")
    parser.add_argument("--lpips", default="random-backbone", choices=["real", "random-backbone", "off"])
    parser.add_argument("--base-width", type=int, default=None, help="default 2**14 // size (64 at 256 px)")
    parser.add_argument("--max-width", type=int, default=512)
    parser.add_argument("--mapping-hidden", type=int, default=512)
    parser.add_argument("--u-width", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")

    overrides = [
        f"data.image_size={args.size}",
        f"model.max_width={args.max_width}",
        f"model.mapping_hidden={args.mapping_hidden}",
        f"loss.lambda_lpips={0.0 if args.lpips == 'off' else 1.0}",
        f"loss.lpips_substitute={'random-backbone' if args.lpips == 'random-backbone' else 'none'}",
        f"train.batch_size={args.batch}",
    ]
    if args.base_width is not None:
        overrides.append(f"model.base_width={args.base_width}")
    config = load_config(Stage2Config, None, overrides)
    torch.manual_seed(0)
    camera = make_camera("defocus", args.size).eval().requires_grad_(False).to(device)
    depth = 4 if args.size >= 64 else 2
    net = HeatmapNet(width=args.u_width, depth=depth).eval().requires_grad_(False).to(device)
    initial = stage2.build_networks(config, 2, (68, 69))
    perceptual = None
    if args.lpips != "off":
        lo = config.loss
        perceptual = L.build_perceptual_loss(lo.lpips_net, lo.lpips_weights, lo.lpips_substitute).to(device)
    batch = synthetic_batch(args.size, args.batch, device)

    rows = []
    for variant in variants:
        cl = "channels_last" in variant or variant == "compile"
        bf16 = variant.startswith("bf16") or (variant == "compile" and device.type == "cuda")
        memory = torch.channels_last if cl else torch.contiguous_format
        nets = {k: copy.deepcopy(v).to(device).to(memory_format=memory) for k, v in initial.items()}
        ema = {k: copy.deepcopy(nets[k]).eval().requires_grad_(False) for k in stage2.EMA}
        net.to(memory_format=memory)
        parts = stage2.Stage2Parts(
            camera,
            net,
            **nets,
            ema=ema,
            perceptual=perceptual,
            amp_dtype=torch.bfloat16 if bf16 else None,
            channels_last=cl,
        )
        optimizers = stage2.build_optimizers(parts, config)
        if variant == "compile":
            for name in ("generator", "style_encoder", "mapping"):
                setattr(parts, name, torch.compile(getattr(parts, name)))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for step in range(args.warmup):
            stage2.scalars(stage2.train_iteration(parts, optimizers, batch, step, config))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        for step in range(args.iters):
            out = stage2.train_iteration(parts, optimizers, batch, args.warmup + step, config)
        stage2.scalars(out)  # waits for the device
        elapsed = time.perf_counter() - began
        row = {
            "variant": variant,
            "iterations_per_s": args.iters / elapsed,
            "s_per_iteration": elapsed / args.iters,
            "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 1e9
            if device.type == "cuda"
            else None,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
            "size": args.size,
            "batch": args.batch,
            "base_width": nets["generator"].base_width,
            "max_width": args.max_width,
            "u_width": args.u_width,
            "lpips": perceptual.name if perceptual is not None else "off",
            "torch": torch.__version__,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| variant | device | size | batch | it/s | s/it | peak GB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_memory_gb']:.1f}" if r["peak_memory_gb"] is not None else "–"
        print(
            f"| {r['variant']} | {r['device']} ({r['threads']} threads) | {r['size']} | {r['batch']} | "
            f"{r['iterations_per_s']:.3f} | {r['s_per_iteration']:.2f} | {peak} |"
        )


if __name__ == "__main__":
    main()
