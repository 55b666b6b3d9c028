"""Fréchet distance between Gaussians fitted to feature sets, and the offline stand-in FD-dlib.

``FD-dlib`` is the Fréchet distance between the distributions of dlib's 128-d face embeddings of
two image sets. It works offline and is reported under its own name: it is **not** FID (which uses
Inception features, :mod:`privlens.eval.fid`) and its values are not comparable with FID values.
"""

from __future__ import annotations

import numpy as np

FD_DLIB = "FD-dlib"


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased) of ``[N, D]`` features, ``N >= 2``."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors [N, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``.

    The matrix square roots are taken by symmetric eigendecomposition, so singular covariances
    (fewer samples than dimensions) stay real and exact; the result is clipped at 0.
    """
    root1 = _psd_sqrt(np.asarray(sigma1, np.float64))
    middle = root1 @ np.asarray(sigma2, np.float64) @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * cross
    return float(max(value, 0.0))


def fd_between(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two ``[N, D]`` feature sets.

    With fewer samples than dimensions it works on the samples themselves: writing the
    covariances as ``S1 = A A^T`` and ``S2 = B B^T`` (centred features / sqrt(N - 1)), the trace
    term ``tr((S1^1/2 S2 S1^1/2)^1/2)`` equals the nuclear norm of ``A^T B`` (same value, cost
    ``O(N^2 D)`` instead of ``O(D^3)``).
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [N, D] feature sets with the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu_a, mu_b = gaussian_stats(a)[0], gaussian_stats(b)[0]  # also checks N >= 2
    factor_a = (a - mu_a) / np.sqrt(len(a) - 1)
    factor_b = (b - mu_b) / np.sqrt(len(b) - 1)
    cross = np.linalg.svd(factor_a @ factor_b.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    value = diff @ diff + np.square(factor_a).sum() + np.square(factor_b).sum() - 2 * cross
    return float(max(value, 0.0))


def fd_dlib(embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> float:
    """FD-dlib: :func:`fd_between` on dlib face embeddings (``[N, 128]`` each, N >= 2)."""
    return fd_between(embeddings_a, embeddings_b)
