"""Face detection, 68-point landmarks, FFHQ-style alignment and landmark heatmaps. Trains nothing."""

from privlens.faces.align import AlignedFace, align_face, ffhq_quad
from privlens.faces.detect import DETECTORS, Face, best_face, detect_faces
from privlens.faces.heatmaps import (
    COARSE_CHANNELS,
    FINE_CHANNELS,
    face_part_masks,
    heatmaps_to_landmarks,
    render_heatmaps,
)
from privlens.faces.landmarks import LANDMARK_GROUPS, NUM_LANDMARKS, face_landmarks, landmarks68
from privlens.faces.models import FaceModelError

__all__ = [
    "COARSE_CHANNELS",
    "DETECTORS",
    "FINE_CHANNELS",
    "LANDMARK_GROUPS",
    "NUM_LANDMARKS",
    "AlignedFace",
    "Face",
    "FaceModelError",
    "align_face",
    "best_face",
    "detect_faces",
    "face_landmarks",
    "face_part_masks",
    "ffhq_quad",
    "heatmaps_to_landmarks",
    "landmarks68",
    "render_heatmaps",
]
