"""Datasets, image I/O and the embedded sample data."""

from privlens.data.datasets import FFHQ, CelebAHQ, DatasetLayoutError, FaceFolder, VideoFrames
from privlens.data.images import ImageFileError, list_images, load_image, save_image
from privlens.data.prepare import PrepareReport, prepare_faces
from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces

__all__ = [
    "FFHQ",
    "CelebAHQ",
    "DatasetLayoutError",
    "FaceFolder",
    "ImageFileError",
    "PrepareReport",
    "VideoFrames",
    "astronaut",
    "lfw_faces",
    "lfw_non_faces",
    "list_images",
    "load_image",
    "prepare_faces",
    "save_image",
]
