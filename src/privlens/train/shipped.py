"""The recipe of the default models shipped in ``privlens/models/weights`` (``make models``).

Steps, each resumable (a run folder under ``--work`` keeps its checkpoint):

1. ``data``: the embedded faces (scikit-image's 100 LFW faces and the astronaut) written as PNGs
   and prepared at 64 px with ``privlens data prepare`` (dlib landmarks, FFHQ-style alignment,
   a stable 20 % of the files in ``val``: these faces are never trained on);
2. ``heatmap``: U on clean faces with ``configs/shipped/stage1_heatmap.yaml`` ->
   ``heatmap_clean_64.safetensors``;
3. ``lens``: Stage I (Eqs. 4-6) from that U with ``configs/shipped/stage1_optics.yaml`` ->
   ``lens_64.safetensors`` and the U trained with it, ``heatmap_64.safetensors`` (the U to use
   on this lens's captures); also ``defocus_same_distortion.safetensors`` in ``--work``: the
   defocus lens whose held-out captures are as distorted, the baseline of the attack figures.

Every shipped file gets a provenance JSON (:mod:`privlens.models.provenance`) with its SHA-256,
the data, steps, training seconds, machine, git commit, the recipe and held-out figures.

Usage: ``python -m privlens.train.shipped [--work runs/shipped] [--only heatmap|lens]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from privlens.models import (
    WEIGHTS_DIR,
    git_commit,
    load_heatmap_model,
    machine_description,
    read_provenance,
    write_provenance,
)

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "shipped"
SIZE = 64
DATA_NOTE = (
    "embedded faces: scikit-image lfw_subset (100 LFW faces, 25 px grey, upsampled and edge-padded) "
    "+ astronaut, prepared at 64 px (dlib landmarks, FFHQ-style alignment); train split only, "
    "the stable-hash val split (20 %) held out"
)
NOISE_FREE = {"sensor_noise": False, "noise_sigma": 0.0}  # evaluation captures: the lens alone
RECIPE = "make models  (python -m privlens.train.shipped; configs/shipped/stage1_*.yaml)"


def prepare_embedded_faces(dst: Path, size: int = SIZE) -> Path:
    """Write the embedded faces as PNGs under ``dst/source`` and prepare them into ``dst/data``."""
    from privlens.data.images import save_image
    from privlens.data.prepare import prepare_faces
    from privlens.data.samples import astronaut, lfw_faces

    source = dst / "source"
    for i, face in enumerate(lfw_faces()):
        if not (source / f"lfw{i:03d}.png").exists():
            save_image(face, source / f"lfw{i:03d}.png")
    if not (source / "astronaut.png").exists():
        save_image(astronaut(None), source / "astronaut.png")
    prepare_faces(source, dst / "data", size=size, val_fraction=0.2, progress=False)
    return dst / "data"


def _train(mode: str, config_name: str, data: Path, out: Path, *overrides: str) -> tuple[Any, float]:
    from privlens.train.config import load_config
    from privlens.train.stage1 import run_stage1
    from privlens.train.stage1_config import Stage1Config

    config = load_config(Stage1Config, CONFIGS / config_name, [f"data.root={data}", *overrides])
    seconds_file = out / "seconds.json"
    before = json.loads(seconds_file.read_text())["seconds"] if seconds_file.is_file() else 0.0
    began = time.perf_counter()
    result = run_stage1(mode, config, out, resume=True)  # type: ignore[arg-type]
    seconds = before + time.perf_counter() - began
    seconds_file.write_text(json.dumps({"seconds": seconds}))
    return result, seconds


def _heldout(data: Path, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    from privlens.train.data import LandmarkFaces

    faces = LandmarkFaces(data, "val", size)
    items = [faces[i] for i in range(len(faces))]
    return torch.stack([i["image"] for i in items]), torch.stack([i["landmarks"] for i in items])


def _common(config_name: str, steps: int, seconds: float) -> dict[str, Any]:
    return {
        "image_size": SIZE,
        "data": DATA_NOTE,
        "steps": steps,
        "seconds": round(seconds, 1),
        "machine": machine_description(),
        "git_commit": git_commit(REPO),
        "recipe": RECIPE,
        "config": f"configs/shipped/{config_name}",
    }


def _u_metrics(path: Path, data: Path, camera: torch.nn.Module | None = None) -> dict[str, Any]:
    """Held-out NME of the U file at ``path`` (clean, and through ``camera`` when given)."""
    from privlens.eval.heatmap import evaluate_heatmap

    model = load_heatmap_model(path)
    images, landmarks = _heldout(data)
    rows = evaluate_heatmap(model.net, images, landmarks, model.mean_shape, camera).rows
    metrics: dict[str, Any] = {
        "heldout_faces": rows[0].n,
        "nme_train_mean_shape": round(rows[0].nme_train_mean, 5) if rows[0].nme_train_mean else None,
        "nme_own_mean_shape": round(rows[0].nme_own_mean, 5),
    }
    for row in rows:
        metrics[f"nme_u_{row.condition}"] = round(row.nme_u, 5)
        metrics[f"u_over_own_mean_shape_{row.condition}"] = round(row.ratio_own_mean, 4)
    return metrics


def ship_heatmap(data: Path, work: Path, weights: Path = WEIGHTS_DIR) -> Path:
    """Pretrain (or resume) U on clean faces; ship it as ``heatmap_clean_64`` with provenance."""
    result, seconds = _train("heatmap", "stage1_heatmap.yaml", data, work / "heatmap")
    target = weights / "heatmap_clean_64.safetensors"
    shutil.copyfile(result.run_dir / "heatmap_net.safetensors", target)
    common = _common("stage1_heatmap.yaml", result.summary["steps"], seconds)
    write_provenance(target, kind="heatmap", metrics=_u_metrics(target, data), **common)
    return target


def capture_distortion(camera: torch.nn.Module, images: torch.Tensor) -> float:
    """``||x - y||^2`` (mean squared difference per pixel and channel) of noise-free captures."""
    camera.eval()
    with torch.no_grad():
        return float((camera(images)[0] - images).square().mean())


def matching_defocus(images: torch.Tensor, distortion: float, size: int = SIZE) -> float:
    """The defocus (Noll 4, um RMS) whose noise-free captures of ``images`` have ``distortion``
    (bisection on [0, 4] um; distortion grows with defocus there)."""
    from privlens.optics.presets import make_camera

    low, high = 0.0, 4.0
    for _ in range(20):
        middle = (low + high) / 2
        if capture_distortion(make_camera("defocus", size, defocus_um=middle), images) < distortion:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _start_coeffs(run_dir: Path) -> torch.Tensor:
    """The lens a Stage I run started from (``camera.init`` of its saved config)."""
    from privlens.train.config import load_config
    from privlens.train.stage1 import build_camera
    from privlens.train.stage1_config import Stage1Config

    camera = build_camera("optics", load_config(Stage1Config, run_dir / "config.yaml"))
    return camera.coeffs_um.detach()


def ship_lens(data: Path, work: Path, weights: Path = WEIGHTS_DIR) -> Path:
    """Train (or resume) the lens from the shipped U and copy it into ``weights``."""
    from privlens.optics.lensfile import read_lens, save_lens
    from privlens.optics.presets import make_camera

    u = weights / "heatmap_clean_64.safetensors"
    result, seconds = _train("optics", "stage1_optics.yaml", data, work / "lens", f"net.pretrained={u}")
    target = weights / "lens_64.safetensors"
    shutil.copyfile(result.run_dir / "lens.safetensors", target)
    coeffs, config, _ = read_lens(target)
    summary = result.summary
    camera = make_camera(target, SIZE, **NOISE_FREE)
    with torch.no_grad():
        reference = camera.defocus_psf(0.5)
        psf = camera.psf()
        start = camera.psf(_start_coeffs(result.run_dir).to(coeffs))
        open_psf = camera.psf(torch.zeros_like(coeffs))
    distance = {
        "to_defocus_H_f": float(torch.linalg.vector_norm(psf - reference)),
        "to_start": float(torch.linalg.vector_norm(psf - start)),
        "open_to_H_f": float(torch.linalg.vector_norm(open_psf - reference)),
    }
    images, _ = _heldout(data)
    distortion = capture_distortion(camera, images)
    defocus = matching_defocus(images, distortion)
    save_lens(make_camera("defocus", SIZE, defocus_um=defocus), work / "defocus_same_distortion.safetensors")
    metrics = {
        "heldout_distortion_noise_free": round(distortion, 6),
        "defocus_um_of_same_distortion": round(defocus, 4),
        "heldout_distortion_with_sensor_noise": summary["val_end"]["distortion"],
        "heldout_nme_through_lens": summary["val_end"]["nme"],
        "psf_distance": {k: round(v, 5) for k, v in distance.items()},
        "beta_um": np.round(coeffs.numpy(), 4).tolist(),
    }
    common = _common("stage1_optics.yaml", summary["steps"], seconds)
    write_provenance(target, kind="lens", metrics=metrics, **common)
    # U trained together with this lens: the one to use on its captures.
    paired = weights / "heatmap_64.safetensors"
    shutil.copyfile(result.run_dir / "heatmap_net.safetensors", paired)
    pretrain = read_provenance(u)
    common.update(steps=summary["steps"] + pretrain["steps"], seconds=round(seconds + pretrain["seconds"], 1))
    common["started_from"] = f"heatmap_clean_64.safetensors ({pretrain['steps']} steps on clean faces)"
    write_provenance(paired, kind="heatmap", metrics=_u_metrics(paired, data, camera), **common)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the shipped default models (see module docstring).")
    parser.add_argument("--work", type=Path, default=Path("runs/shipped"), help="Run folders (resumable).")
    parser.add_argument("--data", type=Path, default=None, help="A prepared face folder (default: embedded).")
    parser.add_argument("--only", choices=("heatmap", "lens"), default=None, help="Train one model only.")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="Where the shipped files go.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny nets: one thread is fastest on shared CPUs
    data = args.data or prepare_embedded_faces(args.work)
    if args.only in (None, "heatmap"):
        print(f"shipped U (clean): {ship_heatmap(data, args.work, args.weights)}", flush=True)
    if args.only in (None, "lens"):
        print(f"shipped lens and its U: {ship_lens(data, args.work, args.weights)}", flush=True)


if __name__ == "__main__":
    main()
