"""Issue 10's four figures for a Stage II generator on held-out faces (see privlens.eval.generator).

    python benchmarks/eval_generator.py --generator RUN_OR_BUNDLE --data DIR [--lens LENS]
        [--heatmap U] [--references DIR] [--n 20] [--out FILE.md] [--weights ema|raw]
    python benchmarks/eval_generator.py --backend warp --data DIR [--lens LENS --heatmap U]
        [--reference-choice cycle|drawn|far] [--seed 0] [--draws 1] [--no-sensor-noise]

* ``--backend warp``: the same figures for the training-free warp backend (references warped
  onto U's landmarks; references without a dlib face are skipped), the baseline a generator has
  to beat; ``--lens``/``--heatmap`` default to the shipped lens and U.

* ``--generator``: a ``generator.safetensors`` or a Stage II run folder. ``--lens`` and
  ``--heatmap`` default to the run folder's ``lens.safetensors`` and ``heatmap_net.safetensors``
  (the camera and U the generator was trained behind).
* ``--data``: a folder from ``privlens data prepare``: its ``val/`` faces are the sources (never
  trained on), its ``train/`` faces the references (``--references`` overrides).
* Captures go through the physical sensor model at the lens file's light (shot and read noise,
  ADC rounding, drawn from ``--seed``); ``--no-sensor-noise`` gives the noise-free capture.
* Writes markdown (and ``.json`` beside it with ``--out``); prints the markdown.

Example (the shipped models on the embedded faces, 64 px): see docs/training.md, Stage II.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator", default=None, type=Path)
    parser.add_argument("--backend", default="gan", choices=("gan", "warp"))
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--lens", default=None)
    parser.add_argument("--heatmap", default=None, type=Path)
    parser.add_argument("--references", default=None, type=Path)
    parser.add_argument("--n", default=None, type=int, help="at most this many sources (default: all)")
    parser.add_argument("--weights", default="ema", choices=("ema", "raw"))
    parser.add_argument("--analysis-px", default=160, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument(
        "--reference-choice",
        default="cycle",
        choices=("cycle", "drawn", "far"),
        help="warp backend: references i and i + 1 (cycle), two drawn from --seed (drawn: anonymize's "
        "default), or the identity-aware choice (far: anonymize --reference-choice far)",
    )
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "--sensor-noise",
        action="store_true",
        default=True,
        help="(default) captures through the physical sensor model at the lens file's light (shot and "
        "read noise, ADC rounding; drawn from --seed), whatever the file's own sensor_noise flag",
    )
    noise.add_argument(
        "--no-sensor-noise", dest="sensor_noise", action="store_false", help="the noise-free capture"
    )
    parser.add_argument(
        "--draws", default=1, type=int, help="with drawn: repeat with seeds --seed ... --seed + draws - 1"
    )
    parser.add_argument("--out", default=None, type=Path)
    args = parser.parse_args(argv)
    if args.backend == "gan" and args.generator is None:
        parser.error("--generator is required (or --backend warp)")
    torch.set_num_threads(1)
    if args.backend == "warp":
        return warp_baseline(args)

    from privlens.data.images import ImageFileError
    from privlens.eval.generator import check_generator, render_check
    from privlens.eval.job import load_sources
    from privlens.nets import reads_warps
    from privlens.train.checkpoint import load_heatmap_net
    from privlens.train.stage2_bundle import GeneratorBundleError, load_generator_bundle

    run = args.generator if args.generator.is_dir() else args.generator.parent
    lens = args.lens or str(run / "lens.safetensors")
    heatmap = args.heatmap or run / "heatmap_net.safetensors"
    try:
        bundle = load_generator_bundle(args.generator, weights=args.weights)
        size = bundle.image_size
        camera = _camera(lens, size, args.sensor_noise)
        net = load_heatmap_net(heatmap)
        sources, _, _, _ = load_sources(args.data, size, args.n)
        pairs = reference_landmarks = None
        if args.reference_choice == "far" or reads_warps(bundle.generator):
            # references with dlib landmarks: a warp-content G reads them warped; `far` chooses by them
            from privlens.anonymize.references import load_references, stack_references
            from privlens.eval.generator import far_pairs

            chosen = load_references(args.references or args.data / "train", size).references
            references, reference_landmarks = stack_references(chosen)
            if args.reference_choice == "far":
                torch.manual_seed(args.seed)
                pairs = far_pairs(camera, net, sources, chosen)
            elif args.reference_choice != "cycle":
                raise ValueError("--reference-choice drawn is for the warp backend")
        elif args.reference_choice == "cycle":
            references, _, _, _ = load_sources(args.references or args.data / "train", size, None)
        else:
            raise ValueError("--reference-choice drawn is for the warp backend")
    except (GeneratorBundleError, ImageFileError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)  # the sensor noise of the captures (with --sensor-noise)
    check = check_generator(
        bundle,
        camera,
        net,
        sources,
        references,
        args.analysis_px,
        seed=args.seed,
        pairs=pairs,
        reference_landmarks=reference_landmarks,
    )
    _write(render_check(check), check, args.out)
    return 0


def warp_baseline(args: argparse.Namespace) -> int:
    from privlens.anonymize.models import heatmap_size
    from privlens.anonymize.references import load_references
    from privlens.data.images import ImageFileError
    from privlens.eval.generator import check_warp_backend, render_check
    from privlens.eval.job import load_sources
    from privlens.models import ModelFileError, shipped_path
    from privlens.train.checkpoint import load_heatmap_net

    try:
        lens = args.lens or str(shipped_path("lens"))
        heatmap = args.heatmap or shipped_path("heatmap")
        net = load_heatmap_net(heatmap)
        size = heatmap_size(Path(heatmap)) or 64  # the size U was trained at
        sources, _, _, _ = load_sources(args.data, size, args.n)
        camera = _camera(lens, size, args.sensor_noise)
        references = load_references(args.references or args.data / "train", size).references
        checks = []
        for seed in range(args.seed, args.seed + max(1, args.draws)):
            torch.manual_seed(args.seed)  # the lens's sensor noise: the same captures for every draw
            checks.append(
                check_warp_backend(
                    camera, net, sources, references, args.analysis_px, args.reference_choice, seed
                )
            )
    except (ModelFileError, ImageFileError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    painter = f"Warp backend, references: {args.reference_choice}, " + (
        "sensor noise" if camera.config.sensor_noise else "noise-free capture"
    )
    if len(checks) > 1:
        for seed, check in enumerate(checks, start=args.seed):
            kept = round(check.identity * check.n_pairs) if check.identity is not None else 0
            print(
                f"draw {seed}: identity > 0.6 for {kept} of {check.n_pairs} pairs, geometry ratio "
                f"{check.geometry:.2f}, detected {check.detected:.2f}"
            )
        shares = [c.identity for c in checks if c.identity is not None]
        print(
            f"{len(checks)} draws: identity share {sum(shares) / len(shares):.3f} on average "
            f"(min {min(shares):.3f}, max {max(shares):.3f}); geometry ratio "
            f"{sum(c.geometry for c in checks) / len(checks):.2f} on average\n"
        )
    _write(render_check(checks[0], painter=painter + f" (seed {args.seed})"), checks[0], args.out)
    return 0


def _camera(lens, size: int, sensor_noise: bool):
    """The camera of ``lens`` at ``size``, with or without the sensor model at the file's light
    (lens files differ in their own flag: Stage I's have it on, ``privlens lens create``'s off)."""
    from privlens.optics.presets import make_camera

    return make_camera(lens, size, sensor_noise=sensor_noise)


def _write(text: str, check, out: Path | None) -> None:
    from privlens.eval.generator import render_check

    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(render_check(check, "json"))


if __name__ == "__main__":
    sys.exit(main())
