"""Metrics and the paper's evaluation protocol. Never changes models.

Network-based metrics whose weights do not ship with a package (FaceNet DIS, FID, LPIPS) load
them from a local file or the library's download, and otherwise raise
:class:`MetricUnavailableError`; they are reported unavailable, never faked. ``FD-dlib`` is an
offline stand-in carrying its own name, not FID.
"""

from privlens.eval.frechet import FD_DLIB, fd_dlib, frechet_distance
from privlens.eval.geometry import box_error, detection_rate, face_geometry, landmark_error
from privlens.eval.identity import IDENTITY_BACKENDS, identity_distance, identity_distances, make_embedder
from privlens.eval.pairs import EvalOptions, PairsReport, evaluate_pairs, render_report
from privlens.eval.quality import psnr
from privlens.eval.weights import MetricUnavailableError, WeightsFileError

__all__ = [
    "FD_DLIB",
    "IDENTITY_BACKENDS",
    "EvalOptions",
    "MetricUnavailableError",
    "PairsReport",
    "WeightsFileError",
    "box_error",
    "detection_rate",
    "evaluate_pairs",
    "face_geometry",
    "fd_dlib",
    "frechet_distance",
    "identity_distance",
    "identity_distances",
    "landmark_error",
    "make_embedder",
    "psnr",
    "render_report",
]
