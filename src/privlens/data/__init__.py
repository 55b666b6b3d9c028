"""Datasets, image I/O and the embedded sample data."""

from privlens.data.images import ImageFileError, list_images, load_image, save_image
from privlens.data.samples import astronaut

__all__ = ["ImageFileError", "astronaut", "list_images", "load_image", "save_image"]
