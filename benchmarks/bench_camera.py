"""Camera speed: Stage I's training step, forward throughput, and the authors' camera beside them.

    python benchmarks/bench_camera.py [--device cpu|cuda] [--repeats 15] [--threads N] [--quick]

Cases (RGB 256x256 images, PSF recomputed every call as in training, unless "cached"):

* forward+backward at batch 8, p = 15 and p = 300 Zernike terms, circular and linear convolution;
* forward only (no grad) at batch 64, p = 15, circular and linear: with the PSF recomputed every
  call, and through ``camera(images)``, which for a fixed lens reuses its PSF and OTF (the camera's
  own cache, as in evaluation and anonymisation);
* the authors' released camera (``Face-DeId/Camera/Optics.py`` of carlosh93/privacy-preserving-vision,
  forward+backward at batch 8, p = 15), imported from the git-ignored ``.originals/`` folder that
  ``benchmarks/originals_harness_setup.sh`` fills; skipped with a note when it is absent.

The cases run interleaved, round after round, so a busy machine slows them alike; the table
gives the median and interquartile range in milliseconds and the ratios the targets name.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from timing import device_name, synchronise

from privlens.optics import Camera, CameraConfig
from privlens.optics.zernike import noll_to_nm


def camera_step(camera: torch.nn.Module, images: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        camera.zero_grad(set_to_none=True)
        out = camera(images)
        (out.image if hasattr(out, "image") else out).mean().backward()

    return step


def camera_forward(camera: Camera, images: torch.Tensor) -> Callable[[], None]:
    """Forward with the PSF computed from the coefficients every call (explicit coefficients
    bypass the camera's fixed-lens cache)."""

    @torch.no_grad()
    def forward() -> None:
        camera.image(images, camera.psf(camera.coeffs_um.detach().clone()))

    return forward


def cached_forward(camera: Camera, images: torch.Tensor) -> Callable[[], None]:
    """A fixed lens: ``camera(images)`` reuses its PSF and its spectrum after the first call."""

    @torch.no_grad()
    def forward() -> None:
        camera(images)

    return forward


def authors_step(device: torch.device, images: torch.Tensor) -> Callable[[], None] | str:
    try:
        from originals_harness import authors_camera
    except ImportError as error:  # the harness is optional
        return f"harness unavailable ({error})"
    try:
        camera, _ = authors_camera(15, device)
    except Exception as error:  # noqa: BLE001 - any import problem of third-party code
        return f"not available ({error}); run benchmarks/originals_harness_setup.sh"
    return camera_step(camera.train(), images)


def smooth_mask_weights(terms: int) -> torch.Tensor:
    """1 up to radial order 4, then ``(5 / (n + 1))^4``: a smooth mask. Equal weights on 300 terms
    tilt the wavefront so steeply at the rim that no sampling below an FFT of 23,040 is alias-free."""
    orders = torch.tensor([noll_to_nm(j)[0] for j in range(1, terms + 1)], dtype=torch.float32)
    return torch.clamp((5 / (orders + 1)) ** 4, max=1.0)


def interleaved(
    cases: dict[str, Callable[[], None]], device: torch.device, repeats: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up (and sampling caches)
        fn()
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            synchronise(device)
            start = time.perf_counter()
            fn()
            synchronise(device)
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="skip p = 300 and the batch-64 cases")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device: {device} ({device_name(device)}), torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    generator = torch.Generator().manual_seed(0)
    small = torch.rand(8, 3, 256, 256, generator=generator).to(device)
    big = torch.rand(64, 3, 256, 256, generator=generator).to(device)
    cases: dict[str, Callable[[], None]] = {}
    notes = []
    authors = authors_step(device, small)
    if isinstance(authors, str):
        notes.append(f"authors' camera: {authors}")
    else:
        cases["authors fwd+bwd p=15"] = authors
    for terms in (15,) if args.quick else (15, 300):
        for mode in ("circular", "linear"):
            coeffs = 0.05 * torch.randn(terms, generator=generator) * smooth_mask_weights(terms)
            camera = Camera(CameraConfig(num_terms=terms, convolution=mode), coeffs).to(device).train()
            cases[f"fwd+bwd p={terms} {mode}"] = camera_step(camera, small)
            if hasattr(camera, "sampling_report"):
                notes.append(f"p={terms} {mode}: FFT {camera.sampling_report().used}")
    if not args.quick:
        for mode in ("circular", "linear"):
            camera = Camera(CameraConfig(convolution=mode), 0.05 * torch.randn(15, generator=generator))
            camera = camera.to(device).eval()
            cases[f"fwd p=15 {mode}"] = camera_forward(camera, big)
            cases[f"fwd p=15 {mode}, fixed PSF"] = cached_forward(camera, big)
    times = interleaved(cases, device, args.repeats)
    print()
    print("| case | batch | median ms | IQR ms |")
    print("|---|---|---|---|")
    median = {}
    for name, values in times.items():
        q = statistics.quantiles(values, n=4)
        median[name] = statistics.median(values)
        batch = 64 if name.startswith("fwd p") else 8
        print(f"| {name} | {batch} | {median[name] * 1e3:.1f} | {q[0] * 1e3:.1f}-{q[2] * 1e3:.1f} |")
    print()
    if "authors fwd+bwd p=15" in median:
        ratio = median["authors fwd+bwd p=15"] / median["fwd+bwd p=15 circular"]
        print(f"authors' camera / ours, fwd+bwd p=15 circular: {ratio:.2f}x (target >= 1.5x)")
    if "fwd p=15 linear" in median:
        ratio = median["fwd p=15 linear"] / median["fwd p=15 circular"]
        print(f"linear / circular, forward batch 64: {ratio:.2f}x (target <= 2x)")
        ratio = median["fwd p=15 linear, fixed PSF"] / median["fwd p=15 circular, fixed PSF"]
        print(f"linear / circular, forward batch 64, fixed PSF: {ratio:.2f}x")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
