"""Camera speed: forward+backward with the PSF recomputed every step, as in Stage I training.

    python benchmarks/bench_camera.py [--device cpu|cuda] [--repeats 30] [--threads N]

Measures, for a batch of 8 RGB 256x256 images: p = 15 and p = 300 Zernike terms, circular and
linear convolution; on CUDA also forward throughput at batch 256 (p = 15, circular). Prints a
Markdown table (median milliseconds per iteration, and the interquartile range).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import device_name, run_times

from privlens.optics import Camera, CameraConfig


def camera_step(camera: Camera, images: torch.Tensor):
    def step() -> None:
        camera.zero_grad(set_to_none=True)
        capture = camera(images).image
        capture.mean().backward()

    return step


def camera_forward(camera: Camera, images: torch.Tensor):
    @torch.no_grad()
    def forward() -> None:
        camera(images)

    return forward


def describe(times: list[float]) -> tuple[float, float, float]:
    quartiles = statistics.quantiles(times, n=4)
    return statistics.median(times) * 1e3, quartiles[0] * 1e3, quartiles[2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = device_name(device)
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print()
    print("| case | batch | median ms | IQR ms |")
    print("|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 256, 256, generator=generator).to(device)
    for terms in (15, 300):
        for mode in ("circular", "linear"):
            config = CameraConfig(num_terms=terms, convolution=mode)
            coeffs = 0.05 * torch.randn(terms, generator=generator)
            camera = Camera(config, coeffs).to(device).train()
            median, low, high = describe(
                run_times(camera_step(camera, images), device, args.repeats, warmup=5)
            )
            print(f"| fwd+bwd p={terms} {mode} | 8 | {median:.2f} | {low:.2f}-{high:.2f} |")
    if device.type == "cuda":
        big = torch.rand(256, 3, 256, 256, device=device)
        camera = Camera(CameraConfig(convolution="circular"), 0.05 * torch.randn(15)).to(device).eval()
        median, low, high = describe(run_times(camera_forward(camera, big), device, args.repeats, warmup=5))
        print(f"| fwd p=15 circular | 256 | {median:.2f} | {low:.2f}-{high:.2f} |")
        print(f"\nforward throughput, batch 256: {256 / (median / 1e3):,.0f} images/s")


if __name__ == "__main__":
    main()
