"""Attack speed: Wiener and Richardson–Lucy on batches of 256x256 RGB captures (FFT-based).

    python benchmarks/bench_attacks.py [--device cpu|cuda] [--batch 16] [--repeats 5]

Prints images per second: Wiener with one regularisation, Wiener with 15 regularisations
sharing FFTs (the attacker's search), and Richardson–Lucy at 10 and 50 iterations.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_time, device_name

from privlens.attacks.deconvolution import richardson_lucy, wiener_deconvolve
from privlens.optics import make_camera


def images_per_second(fn, count: int, repeats: int, device: torch.device) -> float:
    return count / best_time(fn, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = device_name(device)
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    camera = make_camera("prototype", 256).to(device).eval()
    scenes = torch.rand(args.batch, 3, 256, 256, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        capture = camera(scenes)
    captures, psf = capture.image, capture.psf
    lambdas = torch.logspace(-7, 0, 15)
    cases = {
        "wiener, 1 lambda": (lambda: wiener_deconvolve(captures, psf, 1e-3), args.batch),
        "wiener, 15 lambdas": (lambda: wiener_deconvolve(captures, psf, lambdas), args.batch * 15),
        "richardson-lucy, 10 iterations": (lambda: richardson_lucy(captures, psf, 10), args.batch),
        "richardson-lucy, 50 iterations": (lambda: richardson_lucy(captures, psf, 50), args.batch),
    }
    print("\n| attack (256x256 RGB) | images/s |\n|---|---|")
    with torch.no_grad():
        for label, (fn, count) in cases.items():
            print(f"| {label} | {images_per_second(fn, count, args.repeats, device):.1f} |")


if __name__ == "__main__":
    main()
