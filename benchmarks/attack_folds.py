"""Cross-validated privacy figures: every face evaluated once, by an attacker that never saw it.

    python benchmarks/attack_folds.py --data runs/shipped/data --lens LENS --folds 5 \
        --out runs/folds [--jobs 2] [--seed 0] -- --only tikhonov+inversion

`privlens attack` evaluates one held-out set (20 faces on the embedded data, N = 19 with a dlib
face), and at N = 19 one face moves a figure by 5 points. A lens that no face trained (a preset,
an aperture stop) can be evaluated on *every* face instead: the faces of ``train/`` and ``val/``
of a prepared folder are pooled, dealt into ``--folds`` folds by a seeded permutation of their
sorted names, and for each fold `privlens attack --no-presets` runs with that fold as the
evaluated faces and every other face as the attacker's own (so each attacker owns about
``(K - 1) / K`` of the faces, as many as the single split gives it). Do not use it for a lens
or U trained on some of these faces: that fold would be evaluated on its own training faces.

Each fold's rank-1 is against its own gallery (chance 1 / its dlib faces), and its TAR@FAR
thresholds come from its own attacker; the pooled table sums the folds' counts
(:mod:`privlens.attacks.folds`: hits / faces, a Clopper-Pearson 95 % interval over all N).
Arguments after ``--`` go to every `privlens attack` call unchanged (e.g. ``--only``,
``--full-scale-e``). Folds whose output already holds ``attacks.json`` are reused, so an
interrupted run resumes. Writes ``OUT/folds.md`` and ``OUT/folds.json``; when every fold wrote
its per-face results (``faces.csv``), also ``OUT/faces.csv`` (every fold's, with a ``fold``
column) and, in ``folds.md``, the faces that *any* of the attacks run identifies
(:func:`privlens.attacks.folds.union_over_attacks`).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from privlens.attacks.folds import deal_folds, pool_fold_rows, render_pooled, render_union, union_over_attacks
from privlens.data.images import ImageFileError, list_images
from privlens.report.tables import to_csv


def prepare_fold(root: Path, fold: list[str], everyone: dict[str, Path]) -> tuple[Path, Path]:
    """``root/eval`` and ``root/attacker`` as folders of symbolic links to the face files."""
    evaluated, attacker = root / "eval", root / "attacker"
    for folder in (evaluated, attacker):
        folder.mkdir(parents=True, exist_ok=True)
    chosen = set(fold)
    present = {link.name for link in evaluated.iterdir()}
    if present and present != chosen:
        raise SystemExit(f"{evaluated} holds another fold's faces; choose another --out")
    for name, path in everyone.items():
        link = (evaluated if name in chosen else attacker) / name
        if not link.exists():
            link.symlink_to(path.resolve())
    return evaluated, attacker


def run_fold(root: Path, lens: str, count: int, extra: list[str], seed: int) -> list[dict]:
    """`privlens attack` on one fold (or its earlier result, if run with the same arguments)."""
    result = root / "attack" / "attacks.json"
    asked = {"lens": lens, "seed": seed, "arguments": extra}
    recorded = root / "arguments.json"
    if result.is_file() and (not recorded.is_file() or json.loads(recorded.read_text()) != asked):
        raise SystemExit(f"{root} holds an attack run with other arguments; choose another --out")
    if not result.is_file():
        recorded.write_text(json.dumps(asked))
        command = [
            sys.executable, "-m", "privlens.cli", "attack", "--no-presets", "--lens", lens,
            "--data", str(root / "eval"), "--attacker-data", str(root / "attacker"),
            "--evaluation-count", str(count), "--seed", str(seed), "--out", str(root / "attack"), *extra,
        ]  # fmt: skip
        with open(root / "attack.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads(result.read_text())["rows"]


def fold_face_rows(roots: list[Path]) -> list[dict] | None:
    """Every fold's ``faces.csv`` rows with their ``fold``, or None if a fold has none (a run
    made before `privlens attack` wrote per-face results)."""
    rows = []
    for k, root in enumerate(roots):
        path = root / "attack" / "faces.csv"
        if not path.is_file():
            return None
        with open(path, newline="") as handle:
            rows.extend({"fold": k, **row} for row in csv.DictReader(handle))
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, type=Path, help="a prepared folder with train/ and val/")
    parser.add_argument("--lens", required=True, help="a lens file or preset no face trained")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="the fold permutation and the attacker's seed")
    parser.add_argument("--jobs", type=int, default=1, help="folds attacked at once")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        everyone = {path.name: path for split in ("train", "val") for path in list_images(args.data / split)}
    except ImageFileError as error:
        raise SystemExit(f"--data {args.data}: {error}") from error
    folds = deal_folds(list(everyone), args.folds, args.seed)
    roots = [args.out / "folds" / str(k) for k in range(len(folds))]
    for root, fold in zip(roots, folds, strict=True):
        prepare_fold(root, fold, everyone)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as workers:
        fold_rows = list(
            workers.map(
                lambda root, fold: run_fold(root, args.lens, len(fold), extra, args.seed), roots, folds
            )
        )
    pooled = pool_fold_rows(fold_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "folds.json").write_text(
        json.dumps({"folds": folds, "seed": args.seed, "arguments": extra, "pooled": pooled,
                    "per_fold": fold_rows}, indent=1)
    )  # fmt: skip
    text = render_pooled(pooled, folds, args.seed, " ".join(extra))
    faces = fold_face_rows(roots)
    if faces:
        (args.out / "faces.csv").write_text(to_csv(faces))
        attacks = list(dict.fromkeys(row["attack"] for row in faces))
        text += "\n" + render_union(union_over_attacks(faces, attacks))
    (args.out / "folds.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
