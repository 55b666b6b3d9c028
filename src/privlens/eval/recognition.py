"""Face-recognition figures of an attack: rank-1 identification, TAR at fixed FAR, bootstrap CIs.

Pure functions on embeddings (numpy arrays, one row per face, l2 distances); no model is loaded.

Conventions.

* *Gallery*: the clean originals of the N evaluated identities, one embedding each. *Probes*: the
  attacker's recoveries of the same faces, probe ``i`` belongs to gallery identity ``i``.
  Rank-1 identification = share of probes whose nearest gallery entry is their own identity;
  chance is ``1 / N``.
* *Verification*: a pair (probe, gallery entry) is accepted when its distance is *below* a
  threshold. The threshold is calibrated on the attacker's own faces (never the evaluated ones):
  the largest value that accepts at most ``FAR x n`` of their ``n`` impostor pairs. TAR = share of
  genuine evaluated pairs (probe ``i``, gallery ``i``) accepted at that threshold.
* Every figure carries its N; 95 % confidence intervals come from a percentile bootstrap over the
  evaluated faces (seeded, so tables are reproducible).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FARS = (1e-2, 1e-3)


def distance_matrix(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``[N, M]`` l2 distances between probe rows ``[N, D]`` and gallery rows ``[M, D]``."""
    probes, gallery = np.asarray(probes, np.float64), np.asarray(gallery, np.float64)
    if probes.ndim != 2 or gallery.ndim != 2 or probes.shape[1] != gallery.shape[1]:
        raise ValueError(f"need [N, D] and [M, D] embeddings, got {probes.shape} and {gallery.shape}")
    return np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=-1)


def rank1_hits(distances: np.ndarray) -> np.ndarray:
    """``[N]`` booleans: probe ``i``'s nearest gallery entry is entry ``i`` (ties count as misses)."""
    distances = np.asarray(distances, np.float64)
    n = distances.shape[0]
    if distances.ndim != 2 or distances.shape[1] != n:
        raise ValueError(f"need a square probe x gallery matrix, got {distances.shape}")
    own = np.diagonal(distances)
    others = distances + np.diag(np.full(n, np.inf))
    return own < others.min(axis=1)


def impostor_distances(distances: np.ndarray) -> np.ndarray:
    """The off-diagonal entries of a square probe x gallery matrix (pairs of different people)."""
    distances = np.asarray(distances, np.float64)
    return distances[~np.eye(distances.shape[0], dtype=bool)]


def threshold_at_far(impostors: np.ndarray, far: float) -> float:
    """The largest threshold ``t`` with at most ``floor(far * n)`` of ``n`` impostors ``< t``.

    With ``far * n < 1`` it is the smallest impostor distance (no impostor accepted): the FAR
    actually resolved is then ``< 1 / n``, which callers report as ``impostor_pairs``.
    """
    values = np.sort(np.asarray(impostors, np.float64).ravel())
    if values.size == 0:
        raise ValueError("no impostor pairs to calibrate a threshold on")
    if not 0 < far < 1:
        raise ValueError(f"FAR must lie in (0, 1), got {far}")
    return float(values[int(np.floor(far * values.size))])


def bootstrap_ci(
    values: np.ndarray, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-face ``values`` (resampling faces)."""
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class Figure:
    """A mean over ``n`` faces with its bootstrap 95 % interval."""

    value: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray, seed: int = 0) -> Figure:
        values = np.asarray(values, np.float64).ravel()
        value = float(values.mean()) if values.size else float("nan")
        return cls(value, *bootstrap_ci(values, seed=seed), int(values.size))

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (N={self.n})"


@dataclass
class RecognitionResult:
    """What an attack leaks, on N evaluated faces (see the module docstring)."""

    n: int
    chance: float
    rank1: Figure
    tar: dict[float, Figure]
    thresholds: dict[float, float]
    impostor_pairs: int
    identity_distance: Figure
    reidentified: Figure
    hits: np.ndarray | None = None  # per probe: its own identity is nearest (rank-1)
    genuine: np.ndarray | None = None  # per probe: its distance to its own identity

    def row(self) -> dict[str, float | int]:
        """Flat table columns: value, CI bounds and N of every figure."""
        out: dict[str, float | int] = {"faces": self.n, "chance_rank1": self.chance}
        named = {"rank1": self.rank1, "id_distance": self.identity_distance, "reid": self.reidentified}
        named.update({f"tar@far{far:g}": fig for far, fig in self.tar.items()})
        for name, fig in named.items():
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = fig.value, fig.low, fig.high
        out["impostor_pairs"] = self.impostor_pairs
        return out


def recognition_figures(
    gallery: np.ndarray,
    probes: np.ndarray,
    calibration_gallery: np.ndarray,
    calibration_probes: np.ndarray,
    fars: Sequence[float] = FARS,
    same_person: float = 0.6,
    seed: int = 0,
) -> RecognitionResult:
    """Rank-1, TAR@FAR, mean identity distance and re-identification share of one attack.

    ``gallery``/``probes``: ``[N, D]`` embeddings of the evaluated originals and their recoveries
    (row ``i`` is one face); ``calibration_*``: the same for the attacker's own faces (recovered by
    the same attack), whose impostor pairs set the verification thresholds. ``same_person``: the
    fixed dlib threshold of "re-identified".
    """
    gallery, probes = np.asarray(gallery, np.float64), np.asarray(probes, np.float64)
    if gallery.shape != probes.shape or gallery.shape[0] < 2:
        raise ValueError(f"need matching [N >= 2, D] gallery and probes, got {gallery.shape}, {probes.shape}")
    labels = np.arange(gallery.shape[0])
    return gallery_figures(
        probes, labels, gallery, labels, calibration_gallery, calibration_probes, fars, same_person, seed
    )


def identity_distances(
    probes: np.ndarray, gallery: np.ndarray, gallery_labels: Sequence
) -> tuple[np.ndarray, list]:
    """``([N, K] distances, the K identities)``: each probe's distance to each identity of the
    gallery, the nearest of that identity's photos (``gallery`` ``[M, D]``, one label per row;
    identities in order of first appearance)."""
    gallery = np.asarray(gallery, np.float64)
    if len(gallery_labels) != gallery.shape[0]:
        raise ValueError(f"{len(gallery_labels)} labels for {gallery.shape[0]} gallery photos")
    identities = list(dict.fromkeys(gallery_labels))
    photos = distance_matrix(probes, gallery)
    labels = np.asarray(gallery_labels, dtype=object)
    return np.stack([photos[:, labels == k].min(axis=1) for k in identities], axis=1), identities


def gallery_figures(
    probes: np.ndarray,
    probe_labels: Sequence,
    gallery: np.ndarray,
    gallery_labels: Sequence,
    calibration_gallery: np.ndarray,
    calibration_probes: np.ndarray,
    fars: Sequence[float] = FARS,
    same_person: float = 0.6,
    seed: int = 0,
) -> RecognitionResult:
    """:func:`recognition_figures` against a gallery of identities: ``gallery`` ``[M, D]`` holds
    one or more photos per identity (``gallery_labels``), probe ``i`` shows ``probe_labels[i]``,
    which must be in the gallery. A probe's distance to an identity is that to its nearest photo;
    rank-1 = the probe's own identity is strictly nearest (chance ``1 / K`` for K identities); the
    genuine distance (TAR, mean distance, re-identified) is that to its own identity. ``hits`` of
    the result holds the per-probe rank-1 outcome."""
    probes = np.asarray(probes, np.float64)
    if len(probe_labels) != probes.shape[0]:
        raise ValueError(f"{len(probe_labels)} labels for {probes.shape[0]} probes")
    distances, identities = identity_distances(probes, gallery, gallery_labels)
    if len(identities) < 2:
        raise ValueError(f"need a gallery of at least 2 identities, got {len(identities)}")
    missing = sorted({str(label) for label in probe_labels} - {str(k) for k in identities})
    if missing:
        raise ValueError(f"evaluated identities without a gallery photo: {', '.join(missing)}")
    own = np.array([identities.index(label) for label in probe_labels])
    rows = np.arange(probes.shape[0])
    genuine = distances[rows, own]
    others = distances.copy()
    others[rows, own] = np.inf
    hits = genuine < others.min(axis=1)
    impostors = impostor_distances(distance_matrix(calibration_probes, calibration_gallery))
    thresholds = {far: threshold_at_far(impostors, far) for far in fars}
    return RecognitionResult(
        n=probes.shape[0],
        chance=1.0 / len(identities),
        rank1=Figure.of(hits, seed),
        tar={far: Figure.of(genuine < t, seed) for far, t in thresholds.items()},
        thresholds=thresholds,
        impostor_pairs=int(impostors.size),
        identity_distance=Figure.of(genuine, seed),
        reidentified=Figure.of(genuine < same_person, seed),
        hits=hits,
        genuine=genuine,
    )
