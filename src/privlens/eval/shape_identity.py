"""Which photo do a face's landmarks point to? Rank-1 identification from 68-point geometry.

Anyone holding a capture can run U on it (U ships beside the lens, and its landmarks are the
heatmap the pipeline hands on). The landmarks record the face's shape, pose and expression, so
they can be matched against the landmarks of a gallery of photos. When the gallery holds the very
photos that were captured (the protocol of ``privlens attack``: probe ``i`` is a capture of
gallery photo ``i``), landmarks that meet U's purpose also single out the photo.

Shape space (Kendall): every ``[68, 2]`` shape is centred, scaled to unit Frobenius norm and
rotated onto a reference shape (orthogonal Procrustes, proper rotations only, so a mirrored pose
stays a different pose). The reference is the gallery's mean shape after the same centring and
scaling. Distances are l2 in that space: position, scale and in-plane rotation of the face box
carry no weight, only the shape of the point set.

Valid only on faces U never trained on: a network that has fitted a face's landmarks recognises
that face by them.
"""

from __future__ import annotations

import numpy as np

from privlens.eval.recognition import distance_matrix, rank1_hits


def _centred_unit(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"need [N, 68, 2] landmarks, got {points.shape}")
    centred = points - points.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=(1, 2), keepdims=True)
    if np.any(norms < 1e-9):
        raise ValueError("a landmark set with all 68 points in one place has no shape")
    return centred / norms


def shape_space(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``[N, 136]`` shape vectors of ``[N, 68, 2]`` landmark sets, rotated onto ``reference``
    (``[68, 2]``, normalised here); see the module docstring."""
    shapes = _centred_unit(points)
    target = _centred_unit(np.asarray(reference, np.float64)[None])[0]
    out = np.empty_like(shapes)
    for index, shape in enumerate(shapes):
        u, _, vt = np.linalg.svd(shape.T @ target)
        sign = np.sign(np.linalg.det(u @ vt)) or 1.0
        rotation = u @ np.diag([1.0, sign]) @ vt
        out[index] = shape @ rotation
    return out.reshape(len(out), -1)


def shape_embeddings(probes: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(probe vectors [N, 136], gallery vectors [M, 136])``: probe and gallery landmark sets
    (``[N, 68, 2]``, ``[M, 68, 2]``) in one shape space, both rotated onto the gallery's mean
    shape; l2 distances between the rows are the shape distances."""
    reference = _centred_unit(gallery).mean(axis=0)
    return shape_space(probes, reference), shape_space(gallery, reference)


def shape_distances(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``[N, M]`` shape-space distances of probe landmark sets ``[N, 68, 2]`` to gallery sets
    ``[M, 68, 2]`` (:func:`shape_embeddings`)."""
    return distance_matrix(*shape_embeddings(probes, gallery))


def landmark_rank1_hits(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``[N]`` booleans: probe ``i``'s landmarks are nearest (shape space) to gallery set ``i``
    of the ``N`` (ties count as misses); chance is ``1 / N``."""
    probes, gallery = np.asarray(probes), np.asarray(gallery)
    if probes.shape != gallery.shape or len(gallery) < 2:
        raise ValueError(
            f"need N >= 2 probes and gallery sets of the same shape, got {probes.shape}, {gallery.shape}"
        )
    return rank1_hits(shape_distances(probes, gallery))


EXPANSIONS = (1.0, 0.8, 1.2, 1.5, 2.0)
"""Candidate ``alpha`` of :func:`expand_from_mean`, the first (1: as read) winning ties."""


def expand_from_mean(points: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * points + (1 - alpha) * their mean shape`` for ``[N, 68, 2]`` landmark sets:
    ``alpha > 1`` undoes a landmark reader's pull towards the average face, ``< 1`` adds to it."""
    points = np.asarray(points, np.float64)
    return alpha * points + (1.0 - alpha) * points.mean(axis=0, keepdims=True)


def genuine_ranks(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``[N]``: how many gallery sets lie strictly nearer to probe ``i`` than its own set ``i``
    (0: identified at rank 1)."""
    distances = shape_distances(probes, gallery)
    return (distances < np.diagonal(distances)[:, None]).sum(axis=1)


def choose_expansion(
    probes: np.ndarray, gallery: np.ndarray, alphas: tuple[float, ...] = EXPANSIONS
) -> tuple[float, dict[float, float]]:
    """The ``alpha`` whose expanded probes put their own gallery set nearest on average (the
    lowest mean genuine rank, smoother than rank-1 on a few faces), and that mean rank for every
    candidate: how an attacker tunes the ``landmarks`` attack on faces of its own."""
    table = {float(a): float(genuine_ranks(expand_from_mean(probes, a), gallery).mean()) for a in alphas}
    best = min(table.values())
    return next(a for a in table if table[a] == best), table
