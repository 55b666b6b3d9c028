"""Anonymisation speed: images/s of camera -> U -> S -> G, and of the training-free warp backend.

    python benchmarks/bench_anonymize.py [--device cpu|cuda] [--size 256] [--batch 64 ...]
        [--variants fp32 channels_last bf16 channels_last+bf16 compile] [--repeats 5]

Networks are freshly initialised at paper size (U: FAN-style hourglass, width 256, depth 4; G, S:
StarGAN v2 widths at ``--size``, w_hpf 1; 2 domains): speed does not depend on the weights. The
camera is the prototype lens; it runs in float32 outside autocast (as in training), U, S and G
run in each variant's precision and memory format. Per batch: one reference image per scene
through S (reference-guided, as StarGAN v2's inference), G on (capture, U(capture), style).

The warp backend (U -> soft-argmax landmarks -> piecewise-affine warp of one reference, NumPy /
OpenCV on the CPU) is timed for ``--warp-batch`` images.

Target (issue 6): >= 1,000 images/s for camera -> U -> S -> G at 256 px on one H100.

Full frames (issue 11), ``--full-frame``: a 1920x1080 JPEG with 5 faces end to end (read, detect,
landmarks, align, camera, U, backend, check, blend, write), and a 1280x720 clip with 2 moving
faces through the video path (detection every ``--detect-every`` frames, tracking, streaming
read and write), with the time split by stage. Models: the shipped defaults when this
installation has them (``privlens.models``), else stand-ins of the same architecture (U width 32,
depth 4; prototype lens; 64 px), untrained (speed does not depend on the weights; an untrained U
makes the check reject every face, which then goes through the pixelation path instead of the
blend: both are timed). ``--gan`` adds a 64 px Stage II generator stand-in as the backend.

Targets (issue 11, this 2-core CPU): photo <= 3 s, video >= 5 frames/s.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch
from timing import best_time

from privlens.anonymize.pipeline import heatmap_landmarks
from privlens.anonymize.warp import warp_reference
from privlens.nets import Generator, HeatmapNet, StyleEncoder
from privlens.optics import make_camera

VARIANTS = ("fp32", "channels_last", "bf16", "channels_last+bf16", "compile")


def pipeline(size: int, device: torch.device, variant: str):
    camera = make_camera("prototype", size).to(device).eval()
    with torch.no_grad():
        psf = camera.psf()
    u = HeatmapNet(width=256, depth=4).to(device).eval()
    s = StyleEncoder(size, num_domains=2).to(device).eval()
    g = Generator(size).to(device).eval()
    if "channels_last" in variant:
        for net in (u, s, g):
            net.to(memory_format=torch.channels_last)
    if variant == "compile":
        u, s, g = (torch.compile(net) for net in (u, s, g))
    amp = "bf16" in variant
    memory = torch.channels_last if "channels_last" in variant else torch.contiguous_format

    @torch.no_grad()
    def run(scenes: torch.Tensor, references: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        captures = camera.image(scenes, psf).contiguous(memory_format=memory)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            heatmaps = u(captures)
            styles = s(references.contiguous(memory_format=memory), domains)
            return g(captures, heatmaps, styles)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS[:4]), choices=VARIANTS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warp-batch", type=int, default=16, help="images for the warp timing (0: skip)")
    parser.add_argument("--full-frame", action="store_true", help="time the full-frame pipeline instead")
    parser.add_argument("--gan", action="store_true", help="full frame: a 64 px generator stand-in")
    parser.add_argument("--frames", type=int, default=60, help="full frame: clip length")
    parser.add_argument("--detect-every", type=int, default=5, help="full frame: video detection period")
    parser.add_argument("--no-check", action="store_true", help="full frame: skip the result check")
    args = parser.parse_args()
    if args.full_frame:
        from bench_frames import full_frame

        full_frame(args)
        return
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    rng = torch.Generator().manual_seed(0)
    print(f"\n| camera -> U -> S -> G, {args.size} px | batch | images/s |\n|---|---|---|")
    for variant in args.variants:
        run = pipeline(args.size, device, variant)
        for batch in args.batch:
            scenes = torch.rand(batch, 3, args.size, args.size, generator=rng).to(device)
            references = torch.rand(batch, 3, args.size, args.size, generator=rng).to(device)
            domains = torch.randint(0, 2, (batch,), generator=rng).to(device)
            seconds = best_time(lambda: run(scenes, references, domains), args.repeats, device)  # noqa: B023
            print(f"| {variant} | {batch} | {batch / seconds:.2f} |", flush=True)
    if args.warp_batch:
        camera = make_camera("prototype", args.size).to(device).eval()
        u = HeatmapNet(width=256, depth=4).to(device).eval()
        reference = torch.rand(3, args.size, args.size, generator=rng)
        points = np.random.default_rng(0).uniform(0.3, 0.7, (68, 2)) * args.size
        scenes = torch.rand(args.warp_batch, 3, args.size, args.size, generator=rng).to(device)

        @torch.no_grad()
        def warp_all() -> None:
            captures = camera(scenes).image
            landmarks = heatmap_landmarks(u(captures), args.size).cpu()
            for target in landmarks:
                warp_reference(reference, points, target)

        @torch.no_grad()
        def warp_only() -> None:
            for target in np.random.default_rng(1).uniform(0.3, 0.7, (args.warp_batch, 68, 2)) * args.size:
                warp_reference(reference, points, target)

        full = best_time(warp_all, args.repeats, device)
        alone = best_time(warp_only, args.repeats, device)
        print(f"\n| warp backend, {args.size} px, fp32 | images/s |\n|---|---|")
        rate = args.warp_batch / full
        print(f"| camera -> U -> landmarks -> warp (batch {args.warp_batch}) | {rate:.2f} |")
        print(f"| warp alone (one CPU thread, NumPy + OpenCV) | {args.warp_batch / alone:.2f} |")


if __name__ == "__main__":
    main()
