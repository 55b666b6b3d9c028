"""How far apart issue 10's identity and geometry targets are on a face set, for ideal painters.

    python benchmarks/generator_ceiling.py --data runs/shipped/data [--alphas 1 0.85 0.7 0.55 0.4]

For the held-out faces (``val/``) of a prepared folder, with dlib at 160 px as in
:mod:`privlens.eval.generator`:

* the identity distances between *distinct real people* (all pairs of held-out faces, and each
  held-out face against every reference of ``train/``): how often two different people are
  already > 0.6 apart on these crops;
* the four figures for a painter that warps reference ``i`` onto ``alpha x`` the source's own dlib
  landmarks ``+ (1 - alpha) x`` the mean shape (``alpha = 1``: the exact geometry, which no
  inference-time painter has). Sources without a dlib face get the mean shape.
* with ``--far``, the same at ``alpha = 1`` with the identity-aware reference choice of
  ``privlens anonymize --reference-choice far`` (:mod:`privlens.anonymize.choice`; about 0.2 s of
  dlib per reference and face on the 2-core VM), and ``--draws N`` seeded random reference
  pairs at ``alpha = 1`` (what the default seeded choice gives: mean, min and max).

Prints a Markdown table; no files. About a minute on one CPU thread for 20 faces.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--alphas", nargs="+", type=float, default=[1.0, 0.85, 0.7, 0.55, 0.4])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--analysis-px", type=int, default=160)
    parser.add_argument("--far", action="store_true", help="add the far reference choice at alpha 1")
    parser.add_argument("--draws", type=int, default=0, help="seeded random reference pairs at alpha 1")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from privlens.anonymize.references import load_references, rescale_points
    from privlens.eval.generator import _dlib_side, _upsample, reference_pairs, score_outputs, warp_onto
    from privlens.eval.job import load_sources

    sources, _, _, _ = load_sources(args.data, args.size, None)
    references = load_references(args.data / "train", args.size).references
    sides = [_dlib_side(image) for image in _upsample(sources, args.analysis_px)]
    found = [i for i, side in enumerate(sides) if side[0] is not None]
    embeddings = np.stack([sides[i][1] for i in found])
    pairs = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)[np.triu_indices(len(found), 1)]
    reference_sides = [
        _dlib_side(image) for image in _upsample(torch.stack([r.image for r in references]), args.analysis_px)
    ]
    reference_embeddings = np.stack([side[1] for side in reference_sides if side[1] is not None])
    cross = np.linalg.norm(embeddings[:, None] - reference_embeddings[None], axis=-1).ravel()
    print(
        f"distinct people, held-out pairs: {(pairs > 0.6).mean():.3f} > 0.6 "
        f"(mean {pairs.mean():.3f}, N = {len(pairs)})"
    )
    print(
        f"held-out vs references: {(cross > 0.6).mean():.3f} > 0.6 "
        f"(mean {cross.mean():.3f}, N = {len(cross)})\n"
    )

    landmarks = [
        rescale_points(side[0], args.analysis_px, args.size) if side[0] is not None else None
        for side in sides
    ]
    mean_shape = np.mean([points for points in landmarks if points is not None], axis=0)
    print(
        "| alpha (x source + (1 - alpha) x mean shape) | detected | identity > 0.6 (mean) "
        "| NME ratio | ref. L1 | N pairs |"
    )
    print("|---|---|---|---|---|---|")
    exact = [points if points is not None else mean_shape for points in landmarks]
    cycled = reference_pairs(exact, references, args.size, "cycle")
    for alpha in args.alphas:
        targets = [alpha * points + (1 - alpha) * mean_shape for points in exact]
        outs = warp_onto(references, cycled, targets, args.size)
        print(_row(f"{alpha:g}", score_outputs(sources, *outs, len(references), args.analysis_px)))
    extra = [("far", 0, "1, far reference choice")] if args.far else []
    extra += [("drawn", seed, f"1, references drawn with seed {seed}") for seed in range(args.draws)]
    for choice, seed, label in extra:
        pairs = reference_pairs(exact, references, args.size, choice, seed)
        outs = warp_onto(references, pairs, exact, args.size)
        print(_row(label, score_outputs(sources, *outs, len(references), args.analysis_px)))
    return 0


def _row(label: str, check) -> str:
    return (
        f"| {label} | {check.detected:.2f} | {check.identity:.2f} ({check.identity_mean:.2f}) "
        f"| {check.geometry:.2f} | {check.reference_l1:.2f} | {check.n_pairs} |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
