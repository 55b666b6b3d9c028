"""Stage I training speed: optimisation steps per second of the real training step.

    python benchmarks/bench_stage1.py [--device cpu|cuda] [--batch 16] [--size 256] [--steps 5]
                                      [--width 256] [--amp auto|bf16|off] [--mode optics|lowres|heatmap]

Times :func:`privlens.train.stage1.train_step` (U*(x) rendering, camera forward with the PSF
recomputed, the paper-scale heatmap network U forward and backward, Eq. 6, both Adam steps) on
synthetic scenes and landmarks, so no data set is needed. Data loading is not included. Prints
one Markdown table row and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from timing import cpu_name

from privlens.train.config import load_config
from privlens.train.stage1 import Stage1Model, _amp_dtype, build_camera, build_net, train_step
from privlens.train.stage1_config import Stage1Config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"])
    parser.add_argument("--mode", default="optics", choices=["optics", "lowres", "heatmap"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = [
        f"data.image_size={args.size}",
        f"net.width={args.width}",
        f"train.batch_size={args.batch}",
        f"train.amp='{args.amp}'",  # quoted: YAML reads a bare off as false
        f"train.device={args.device}",
    ]
    config = load_config(Stage1Config, None, overrides)
    torch.manual_seed(0)
    camera = build_camera(args.mode, config)
    net = build_net(config)
    model = Stage1Model(camera, net, _amp_dtype(config, device)).to(device).train()
    optimizers = {"net": torch.optim.Adam(net.parameters(), lr=config.net.lr)}
    learn_optics = args.mode == "optics"
    if learn_optics:
        optimizers["camera"] = torch.optim.Adam([camera.coeffs_um], lr=config.camera.lr)
    reference = camera.defocus_psf(config.loss.defocus_um) if learn_optics else None
    scene = torch.rand(args.batch, 3, args.size, args.size, device=device)
    landmarks = torch.rand(args.batch, 68, 2, device=device) * (args.size - 1)

    def step() -> None:
        train_step(model, camera, optimizers, reference, config, learn_optics, scene, landmarks)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_name()}, {torch.get_num_threads()} threads"
    )
    amp = str(model.amp_dtype).replace("torch.", "") if model.amp_dtype else "off"
    params = sum(p.numel() for p in net.parameters())
    print("| machine | mode | batch | size | U width (params) | amp | steps/s | s/step (median of N) |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {machine} | {args.mode} | {args.batch} | {args.size} | {args.width} ({params / 1e6:.2f} M) "
        f"| {amp} | {1 / median:.3f} | {median:.3f} (N={args.steps}) |"
    )
    print(
        json.dumps(
            {
                "machine": machine,
                "mode": args.mode,
                "batch": args.batch,
                "size": args.size,
                "width": args.width,
                "amp": amp,
                "steps_per_s": 1 / median,
                "times_s": times,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
