"""The inference pipeline: scene -> camera -> (heatmap -> generator), with file I/O.

* :mod:`~privlens.anonymize.capture`: captures of image files.
* :mod:`~privlens.anonymize.warp`: the training-free backend (:func:`warp_reference`).
* :mod:`~privlens.anonymize.pipeline`: camera -> U -> warp or Stage II generator
  (:class:`Anonymizer`).
* :mod:`~privlens.anonymize.frames`: every face of a full frame found, painted and blended back
  (:class:`FramePipeline`, :class:`ModelPainter`, :class:`FaceFinder`), with
  :mod:`~privlens.anonymize.blend` (masks, colour matching, inverse warp, pixelation);
* :mod:`~privlens.anonymize.stream` / :mod:`~privlens.anonymize.track`: videos and webcams, faces
  tracked with one identity per track (:class:`FrameStream`);
* :mod:`~privlens.anonymize.jobs`: images, folders and videos in, files out (:class:`AnonymizeJob`).
"""

from privlens.anonymize.capture import CaptureReport, capture_files
from privlens.anonymize.frames import FaceFinder, FaceRecord, FramePipeline, ModelPainter
from privlens.anonymize.jobs import AnonymizeJob, AnonymizeReport
from privlens.anonymize.models import ModelPaths, resolve_models
from privlens.anonymize.pipeline import (
    AnonymizedBatch,
    AnonymizeError,
    Anonymizer,
    GanBackend,
    WarpBackend,
    heatmap_landmarks,
)
from privlens.anonymize.references import Reference, Slot, StylePlanner, load_references
from privlens.anonymize.stream import FrameStream
from privlens.anonymize.warp import fit_similarity, warp_map, warp_reference

__all__ = [
    "AnonymizeError",
    "AnonymizeJob",
    "AnonymizeReport",
    "AnonymizedBatch",
    "Anonymizer",
    "CaptureReport",
    "FaceFinder",
    "FaceRecord",
    "FramePipeline",
    "FrameStream",
    "GanBackend",
    "ModelPainter",
    "ModelPaths",
    "Reference",
    "Slot",
    "StylePlanner",
    "WarpBackend",
    "capture_files",
    "fit_similarity",
    "heatmap_landmarks",
    "load_references",
    "resolve_models",
    "warp_map",
    "warp_reference",
]
