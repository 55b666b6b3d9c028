"""What U's landmarks give away: rank-1 identification from U's own landmarks, per shipped lens.

    python benchmarks/landmark_leak.py --data runs/shipped/data [--split val] [--seeds 7 8 9] \
        [--out runs/landmark_leak.md]

Anyone holding a capture can run U on it. For every shipped (U, lens) pair this prints U's
inter-ocular NME on the stored captures (physical sensor noise at the lens file's light, one draw
per seed) beside the share of faces whose U landmarks are nearest, in shape space, to their own
photo's dlib landmarks among the evaluated photos (:mod:`privlens.eval.shape_identity`; chance
1 / N; 95 % bootstrap interval over the faces, each face's hit averaged over the draws).

Then, for each pair, the trade-off a U could make: its landmarks pulled towards its training
mean shape, ``alpha * U + (1 - alpha) * mean`` (alpha = 1: U as shipped, 0: the mean shape for
every face; alpha > 1 pushes them away from it, undoing U's own pull towards the average face),
with the NME and the rank-1 of each alpha. Run it only on faces none of the U's
trained on (the shipped U's trained on ``train/``; ``val/`` is held out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from privlens.eval.heatmap import inter_ocular_nme, landmark_leak, predict_landmarks, u_inputs
from privlens.models import load_heatmap_model, shipped_path
from privlens.optics.presets import make_camera
from privlens.train.data import LandmarkFaces

PAIRS = (
    ("clean U, no lens", "heatmap-clean", None),
    ("paper objective", "heatmap", "lens"),
    ("robust", "heatmap-robust", "lens-robust"),
    ("stop 0.07 mm, 14 s (4000 e-)", "heatmap-stop", "lens-stop"),
    ("stop 0.07 mm, 1/60 s (4.9 e-)", "heatmap-stop-video", "lens-stop-video"),
)
ALPHAS = (2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.0)


def leak(predicted: list[np.ndarray], truth: np.ndarray) -> tuple[float, float, float, float]:
    """(NME, rank-1, its interval) of landmark draws against the photos' dlib landmarks."""
    nme = float(np.mean([inter_ocular_nme(points, truth).mean() for points in predicted]))
    rank1 = landmark_leak(predicted, truth)
    return nme, rank1["landmark_rank1"], rank1["landmark_rank1_lo"], rank1["landmark_rank1_hi"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="a folder written by `privlens data prepare`"
    )
    parser.add_argument("--split", default="val", help="faces the U's never trained on (default: val)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="sensor-noise draws")
    parser.add_argument("--out", type=Path, help="also write the tables here (.md)")
    args = parser.parse_args()

    faces = LandmarkFaces(args.data, args.split, 64)
    items = [faces[i] for i in range(len(faces))]
    images = torch.stack([item["image"] for item in items])
    truth = torch.stack([item["landmarks"] for item in items]).numpy().astype(np.float64)
    n = len(truth)
    lines = [
        f"# Rank-1 from U's own landmarks ({args.data} {args.split}, N = {n}, chance {1 / n:.3f}; "
        f"captures with sensor noise, seeds {' '.join(map(str, args.seeds))})",
        "",
        "| lens | U | NME % | rank-1 from U's landmarks [95 % CI] |",
        "|---|---|---:|---:|",
    ]
    curves = []
    for label, u_name, lens_name in PAIRS:
        model = load_heatmap_model(shipped_path(u_name))
        camera = (
            None
            if lens_name is None
            else make_camera(str(shipped_path(lens_name)), 64, sensor_noise=False, noise_sigma=0.0)
        )
        draws = u_inputs(images, camera, args.seeds)[-1][1]
        predicted = [predict_landmarks(model.net, inputs) for inputs in draws]
        nme, rank1, low, high = leak(predicted, truth)
        lines.append(f"| {label} | {u_name} | {100 * nme:.2f} | {rank1:.3f} [{low:.3f}, {high:.3f}] |")
        if model.mean_shape is not None:
            row = [leak([a * p + (1 - a) * model.mean_shape for p in predicted], truth)[:2] for a in ALPHAS]
            curves.append(f"| {label} | " + " | ".join(f"{100 * e:.2f} % / {r:.3f}" for e, r in row) + " |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "U's landmarks pulled towards its training mean shape, alpha * U + (1 - alpha) * mean "
        "(NME % / rank-1):",
        "",
        "| lens | " + " | ".join(f"alpha {a:g}" for a in ALPHAS) + " |",
        "|---|" + "---:|" * len(ALPHAS),
        *curves,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
