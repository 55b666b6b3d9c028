"""Cross-validated attack figures: deal the faces into folds and pool the folds' counts.

One held-out split of the embedded faces gives N = 19, where one face moves a figure by five
points. A lens that no face trained (a preset, an aperture stop) can instead be attacked once per
fold, each fold evaluated by an attacker that owns every other face, so that every face is
evaluated exactly once (`benchmarks/attack_folds.py` runs `privlens attack` per fold).

Pooling sums counts, never averages rates: each fold's rank-1 hits (against its own gallery,
chance 1 / its faces), re-identified faces (distance < 0.6) and accepts at the fold's own
TAR@FAR thresholds, over the faces each was measured on, with an exact (Clopper-Pearson) 95 %
interval over all N faces.

With the per-face results of every fold (``faces.csv``), :func:`union_over_attacks` also counts
the faces that *any* of the attacks identifies: the attacker's several guesses per face, the
pessimistic reading of "the strongest attack" (its chance lies between 1 / n and k / n for k
attacks and a gallery of n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import beta


def deal_folds(names: Sequence[str], folds: int, seed: int) -> list[list[str]]:
    """``folds`` disjoint, sorted lists covering ``names``: a seeded permutation of the sorted
    names dealt round-robin, so fold sizes differ by at most one and the deal does not depend on
    the order the names came in."""
    if len(set(names)) != len(names):
        raise ValueError("face names must be unique to be dealt into folds")
    if not 2 <= folds <= len(names):
        raise ValueError(f"need 2 <= folds <= {len(names)} (the number of faces), got {folds}")
    order = np.random.default_rng(seed).permutation(np.array(sorted(names), dtype=object))
    return [sorted(order[k::folds].tolist()) for k in range(folds)]


def clopper_pearson(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate ``hits / n`` (``(nan, nan)`` for ``n = 0``)."""
    if not 0 <= hits <= n:
        raise ValueError(f"need 0 <= hits <= n, got {hits} of {n}")
    if n == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    lo = 0.0 if hits == 0 else float(beta.ppf(tail, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(beta.ppf(1 - tail, hits + 1, n - hits))
    return lo, hi


def _count(rate: float, n: int) -> int:
    """The whole count behind a rate of ``n`` (rates in the attack tables are counts / n)."""
    return int(round(rate * n))


def pool_fold_rows(fold_rows: Sequence[Sequence[dict]]) -> list[dict]:
    """One row per (lens, attack) over the folds' `privlens attack` rows (``attacks.json``).

    Uses each row's ``faces`` (dlib faces evaluated), ``measured_faces``, ``rank1``,
    ``chance_rank1``, ``reidentified``, ``tar@far0.01``, ``tar@far0.001``,
    ``identity_distance`` and ``psnr``. Returns counts, rates over all folds, exact intervals,
    the chance rate (the faces' mean of 1 / gallery size), the distance averaged over faces and
    the folds' mean PSNR, in the order the pairs first appear.
    """
    pooled: dict[tuple[str, str], dict] = {}
    for rows in fold_rows:
        for row in rows:
            key = (row["lens"], row["attack"])
            entry = pooled.setdefault(
                key,
                dict(folds=0, faces=0, measured=0, rank1=0, chance=0.0, reid=0, tar2=0, tar3=0,
                     distance=0.0, psnr=[]),
            )  # fmt: skip
            faces, measured = int(row["faces"]), int(row["measured_faces"])
            entry["folds"] += 1
            entry["faces"] += faces
            entry["measured"] += measured
            entry["rank1"] += _count(row["rank1"], faces)
            entry["chance"] += row["chance_rank1"] * faces
            entry["reid"] += _count(row["reidentified"], measured)
            entry["tar2"] += _count(row["tar@far0.01"], faces)
            entry["tar3"] += _count(row["tar@far0.001"], faces)
            entry["distance"] += row["identity_distance"] * measured
            entry["psnr"].append(row["psnr"])
    out = []
    for (lens, attack), e in pooled.items():
        n, m = e["faces"], e["measured"]
        out.append(
            {
                "lens": lens,
                "attack": attack,
                "folds": e["folds"],
                "faces": n,
                "psnr_mean": float(np.mean(e["psnr"])),
                "chance_rank1": e["chance"] / n if n else float("nan"),
                "rank1_hits": e["rank1"],
                "rank1": e["rank1"] / n if n else float("nan"),
                "rank1_ci": clopper_pearson(e["rank1"], n),
                "tar@far0.01": e["tar2"] / n if n else float("nan"),
                "tar@far0.001": e["tar3"] / n if n else float("nan"),
                "reidentified_hits": e["reid"],
                "measured_faces": m,
                "reidentified": e["reid"] / m if m else float("nan"),
                "reid_ci": clopper_pearson(e["reid"], m),
                "identity_distance": e["distance"] / m if m else float("nan"),
            }
        )
    return out


def render_pooled(pooled: Sequence[dict], folds: Sequence[Sequence[str]], seed: int, arguments: str) -> str:
    """A Markdown table of :func:`pool_fold_rows` with the folds' sizes and the attack's arguments."""
    sizes = ", ".join(str(len(f)) for f in folds)
    lines = [
        f"Cross-validated attack: {len(folds)} folds (sizes {sizes}; fold seed {seed}), each fold "
        "evaluated by an attacker that owns every other face; N = the dlib faces evaluated.",
        f"`privlens attack` arguments: `{arguments or '(none)'}`",
        "",
        "| lens | attack | N | PSNR dB (folds' mean) | rank-1 [95 % CI] | chance | TAR@FAR 1e-2 "
        "| TAR@FAR 1e-3 | re-id < 0.6 [95 % CI] | mean distance |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in pooled:
        (r_lo, r_hi), (i_lo, i_hi) = row["rank1_ci"], row["reid_ci"]
        lines.append(
            f"| {row['lens']} | {row['attack']} | {row['faces']} | {row['psnr_mean']:.1f} | "
            f"{row['rank1_hits']}/{row['faces']} = {row['rank1']:.3f} [{r_lo:.3f}, {r_hi:.3f}] | "
            f"{row['chance_rank1']:.3f} | {row['tar@far0.01']:.3f} | {row['tar@far0.001']:.3f} | "
            f"{row['reidentified_hits']}/{row['measured_faces']} = {row['reidentified']:.3f} "
            f"[{i_lo:.3f}, {i_hi:.3f}] | {row['identity_distance']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def union_over_attacks(face_rows: Sequence[dict], attacks: Sequence[str]) -> dict:
    """Faces identified (rank-1) or re-identified (distance < 0.6) by at least one of ``attacks``.

    ``face_rows``: per-face rows of every fold (``fold``, ``face``, ``attack``, ``rank1_hit``,
    ``reidentified``; ``faces.csv`` of `privlens attack` plus the fold), each face evaluated in one
    fold against that fold's gallery of its ``n`` faces with a dlib face. A face counts where
    every one of ``attacks`` measured it. Chance: with one attack 1 / n; with k attacks between
    1 / n (every attack guesses the same identity) and min(1, k / n) (all different), averaged
    over the faces. Returns counts, rates and exact 95 % intervals.
    """
    attacks = list(dict.fromkeys(attacks))
    if not attacks:
        raise ValueError("no attacks to take the union of")
    by_face: dict[tuple[str, str], dict[str, dict]] = {}
    for row in face_rows:
        if row["attack"] in attacks:
            by_face.setdefault((str(row["fold"]), row["face"]), {})[row["attack"]] = row
    gallery: dict[str, int] = {}
    identified, reidentified = [], []
    for (fold, _), rows in sorted(by_face.items()):
        if set(rows) != set(attacks):
            missing = ", ".join(sorted(set(attacks) - set(rows)))
            raise ValueError(f"fold {fold} has no per-face result of {missing}")
        hits = [float(r["rank1_hit"]) for r in rows.values()]
        if any(np.isnan(hits)):
            continue  # no dlib face in the original: not measured by any attack
        gallery[fold] = gallery.get(fold, 0) + 1
        identified.append((fold, any(hit > 0.5 for hit in hits)))
        reidentified.append(any(float(r["reidentified"]) > 0.5 for r in rows.values()))
    n, k = len(identified), len(attacks)
    hits = sum(hit for _, hit in identified)
    again = sum(reidentified)
    sizes = np.array([gallery[fold] for fold, _ in identified], dtype=np.float64)
    return {
        "attacks": attacks,
        "faces": n,
        "rank1_hits": hits,
        "rank1": hits / n if n else float("nan"),
        "rank1_ci": clopper_pearson(hits, n),
        "chance_low": float(np.mean(1 / sizes)) if n else float("nan"),
        "chance_high": float(np.mean(np.minimum(1.0, k / sizes))) if n else float("nan"),
        "reidentified_hits": again,
        "reidentified": again / n if n else float("nan"),
        "reid_ci": clopper_pearson(again, n),
    }


def render_union(union: dict) -> str:
    """One Markdown line for :func:`union_over_attacks`."""
    (r_lo, r_hi), (i_lo, i_hi) = union["rank1_ci"], union["reid_ci"]
    return (
        f"Any of {len(union['attacks'])} attacks ({', '.join(union['attacks'])}), N = {union['faces']}: "
        f"rank-1 {union['rank1_hits']}/{union['faces']} = {union['rank1']:.3f} [{r_lo:.3f}, {r_hi:.3f}] "
        f"(chance {union['chance_low']:.3f} to {union['chance_high']:.3f}); re-identified "
        f"{union['reidentified_hits']}/{union['faces']} = {union['reidentified']:.3f} "
        f"[{i_lo:.3f}, {i_hi:.3f}]\n"
    )
