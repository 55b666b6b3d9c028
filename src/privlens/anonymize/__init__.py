"""The inference pipeline: scene -> camera -> (heatmap -> generator), with file I/O."""

from privlens.anonymize.capture import CaptureReport, capture_files

__all__ = ["CaptureReport", "capture_files"]
