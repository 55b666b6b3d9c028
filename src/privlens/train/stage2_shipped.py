"""The recipe of the shipped Stage II generator (``generator_64.safetensors``), one command.

    python -m privlens.train.stage2_shipped [--data DIR] [--lens LENS --heatmap U]
        [--work runs/shipped/gan] [--weights DIR] [--max-seconds S] [key=value ...]

1. data: a folder from ``privlens data prepare`` (default: the embedded faces prepared at 64 px
   into ``<work>/../data`` as :func:`privlens.train.shipped.prepare_embedded_faces` does; the
   stable 20 % ``val`` split is never trained on);
2. the frozen camera and U: the shipped lens and U (``privlens.models``) unless ``--lens`` and
   ``--heatmap`` name others (a generator only works behind the camera and U it was trained with);
3. ``privlens train gan`` with ``configs/shipped/stage2_64.yaml`` (time-boxed by
   ``train.max_seconds``, default 240 s; bf16 autocast on CUDA), resumable in ``--work``;
4. the bundle (EMA and raw weights, float16 to keep it small) copied to
   ``<weights>/generator_64.safetensors`` with its provenance JSON (hash, data, steps, seconds,
   machine, commit, recipe, the lens and U it was trained behind).

The four held-out figures of issue 10 need dlib (CPU): ``benchmarks/eval_generator.py``; with
``--evaluate`` they are computed after training and written into the provenance, and
``--evaluate-only`` does that for a bundle trained elsewhere (e.g. on a GPU machine without dlib):

    # on the GPU machine (no dlib there), the shipped lens and U travel with the tree:
    python3 -m privlens.train.stage2_shipped --data runs/shipped/data --work /tmp/gan \
        --weights $OUT --max-seconds 240
    # back here: copy $OUT/generator_64.* into src/privlens/models/weights/, then
    python -m privlens.train.stage2_shipped --data runs/shipped/data --evaluate-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "shipped" / "stage2_64.yaml"
FILE = "generator_64.safetensors"
RECIPE = "python -m privlens.train.stage2_shipped  (configs/shipped/stage2_64.yaml)"


def default_frozen() -> tuple[Path, Path]:
    """The shipped lens and U (their files), or an error saying how to give them."""
    from privlens.models import ModelFileError, shipped_path

    try:
        return shipped_path("lens"), shipped_path("heatmap")
    except ModelFileError as error:
        print(f"error: {error}; or give --lens FILE --heatmap FILE", file=sys.stderr)
        raise SystemExit(2) from error


def train_shipped_generator(
    data: Path,
    lens: Path,
    heatmap: Path,
    work: Path,
    weights: Path,
    overrides: list[str],
    commit: str | None = None,
    config_file: Path = CONFIG,
) -> tuple[Path, dict[str, Any]]:
    """Train (or resume) the generator in ``work`` and write ``weights/generator_64.safetensors``
    plus its provenance; returns the file and the provenance record."""
    from privlens.models import git_commit, machine_description, sha256_of, write_provenance
    from privlens.train.config import load_config
    from privlens.train.stage2 import LENS as LENS_COPY
    from privlens.train.stage2 import NET as NET_COPY
    from privlens.train.stage2 import run_stage2
    from privlens.train.stage2_bundle import load_generator_bundle, save_generator_bundle
    from privlens.train.stage2_config import Stage2Config

    items = [f"data.root={data}", f"stage1.lens={lens}", f"stage1.heatmap_net={heatmap}", *overrides]
    config = load_config(Stage2Config, config_file, items)
    began = time.perf_counter()
    result = run_stage2(config, work, resume=True)
    seconds = time.perf_counter() - began
    ema = load_generator_bundle(work, weights="ema")
    raw = load_generator_bundle(work, weights="raw")
    weights.mkdir(parents=True, exist_ok=True)
    target = weights / FILE
    summary = result.summary
    provenance = {
        "kind": "generator",
        "image_size": ema.image_size,
        "data": f"{data} (prepare.json: {_prepare_note(data)}); train split only, val held out",
        "steps": summary["steps"],
        "seconds": round(seconds, 1),
        "machine": machine_description(),
        "device": summary.get("device"),
        "amp": summary.get("amp"),
        "git_commit": commit or git_commit(REPO),
        "recipe": RECIPE
        if config_file == CONFIG
        else f"python -m privlens.train.stage2_shipped --config {_relative(config_file)} "
        + " ".join(o for o in overrides if not o.startswith("train.max_seconds=")),
        "config": _relative(config_file),
        "overrides": overrides,
        "stopped_by": summary.get("stopped_by"),
        # the run folder's copies: the files the generator was trained behind
        "lens": {"file": Path(lens).name, "sha256": sha256_of(work / LENS_COPY)},
        "heatmap": {"file": Path(heatmap).name, "sha256": sha256_of(work / NET_COPY)},
        "weights": "ema and raw, stored as float16",
        "last_losses": {k: round(v, 4) for k, v in summary.get("last_losses", {}).items()},
    }
    save_generator_bundle(
        target,
        ema.generator,
        ema.style_encoder,
        ema.mapping,
        ema.domains,
        provenance,
        raw={"generator": raw.generator, "style_encoder": raw.style_encoder, "mapping": raw.mapping},
        dtype=torch.float16,
    )
    write_provenance(target, **provenance)
    return target, provenance


def _relative(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _prepare_note(data: Path) -> str:
    path = Path(data) / "prepare.json"
    try:
        return json.dumps(json.loads(path.read_text()), sort_keys=True)
    except (OSError, json.JSONDecodeError):
        return "absent"


def evaluate_into_provenance(target: Path, data: Path, lens: Path, heatmap: Path) -> dict[str, Any]:
    """Compute the four figures (dlib) on ``data/val`` and add them to the provenance JSON, with
    the warp backend's on the same faces (``warp_baseline``, the bar a generator has to clear)."""
    from privlens.anonymize.references import load_references, stack_references
    from privlens.eval.generator import check_generator, check_warp_backend
    from privlens.eval.job import load_sources
    from privlens.models import read_provenance, write_provenance
    from privlens.nets import reads_warps
    from privlens.optics.presets import make_camera
    from privlens.train.checkpoint import load_heatmap_net
    from privlens.train.stage2_bundle import load_generator_bundle

    bundle = load_generator_bundle(target)
    sources, _, _, _ = load_sources(data, bundle.image_size, None)
    camera, net = make_camera(str(lens), bundle.image_size), load_heatmap_net(heatmap)
    with_landmarks = load_references(Path(data) / "train", bundle.image_size).references
    if reads_warps(bundle.generator):  # it reads the references warped: they need landmarks
        references, points = stack_references(with_landmarks)
        check = check_generator(bundle, camera, net, sources, references, reference_landmarks=points)
    else:
        references, _, _, _ = load_sources(Path(data) / "train", bundle.image_size, None)
        check = check_generator(bundle, camera, net, sources, references)
    warp = check_warp_backend(camera, net, sources, with_landmarks)
    record = read_provenance(target)
    record["heldout_check"] = check.to_dict() | {"data": str(data), "sources": "val split"}
    record["warp_baseline"] = warp.to_dict() | {"painter": "warp backend, behind the same lens and U"}
    write_provenance(target, **{k: v for k, v in record.items() if k not in ("file", "sha256", "bytes")})
    return record["heldout_check"]


def main(argv: list[str] | None = None) -> int:
    from privlens.models import WEIGHTS_DIR

    parser = argparse.ArgumentParser(description="Train the shipped Stage II generator (module docstring).")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.add_argument("--data", type=Path, default=None, help="prepared faces (default: embedded)")
    parser.add_argument("--lens", type=Path, default=None, help="lens file (default: the shipped lens)")
    parser.add_argument("--heatmap", type=Path, default=None, help="U file (default: the shipped U)")
    parser.add_argument("--work", type=Path, default=Path("runs/shipped/gan"), help="run folder (resumable)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="where the bundle goes")
    parser.add_argument("--config", type=Path, default=CONFIG, help="recipe (default: stage2_64.yaml)")
    parser.add_argument("--max-seconds", type=float, default=None, help="time box (train.max_seconds)")
    parser.add_argument("--commit", default=None, help="git commit to record (default: git rev-parse)")
    parser.add_argument("--evaluate", action="store_true", help="add the dlib figures to the provenance")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="no training: add the figures of <weights>/generator_64"
    )
    args = parser.parse_args(argv)
    if (args.lens is None) != (args.heatmap is None):
        parser.error("give both --lens and --heatmap, or neither (the shipped pair)")
    lens, heatmap = (args.lens, args.heatmap) if args.lens is not None else default_frozen()
    if args.data is None:
        from privlens.train.shipped import prepare_embedded_faces

        data = prepare_embedded_faces(args.work.parent)
    else:
        data = args.data
    if args.evaluate_only:
        check = evaluate_into_provenance(args.weights / FILE, data, lens, heatmap)
        print(json.dumps(check, indent=2), flush=True)
        return 0
    overrides = list(args.overrides)
    if args.max_seconds is not None:
        overrides.append(f"train.max_seconds={args.max_seconds}")
    from privlens.train.checkpoint import CheckpointError
    from privlens.train.config import ConfigError

    try:
        target, provenance = train_shipped_generator(
            data, lens, heatmap, args.work, args.weights, overrides, args.commit, args.config
        )
    except (ConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"shipped generator: {target} ({provenance['steps']} steps, {provenance['seconds']} s)", flush=True)
    if args.evaluate:
        print(json.dumps(evaluate_into_provenance(target, data, lens, heatmap), indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
