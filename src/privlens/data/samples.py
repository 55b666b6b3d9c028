"""Embedded sample data shipped inside scikit-image: nothing is downloaded.

* ``astronaut()``: NASA portrait of Eileen Collins (512 x 512 RGB, public domain).
* ``lfw_faces()`` / ``lfw_non_faces()``: the 100 faces and 100 non-face patches of
  ``skimage.data.lfw_subset()`` (25 x 25 grey crops from Labeled Faces in the Wild, University of
  Massachusetts Amherst; see the README for the licence note). The faces are tight crops that no
  detector finds as they are: privlens upsamples them (bicubic, to ``face_px``) and pads them with
  their edge values (``pad_px`` on each side). At the defaults (100 px face, 150 px image) dlib's
  HOG detector finds 94 of the 100 faces and its CNN detector 99.
"""

from __future__ import annotations

import numpy as np
import torch

from privlens.data.images import array_to_tensor, square_resize

LFW_FACE_PX = 100
LFW_PAD_PX = 25


def astronaut(size: int | None = 256) -> torch.Tensor:
    """The astronaut photo as float RGB ``[3, size, size]`` in [0, 1] (512 px when ``size=None``)."""
    from skimage import data

    image = array_to_tensor(data.astronaut())
    return image if size is None else square_resize(image, size)


def _lfw_subset() -> np.ndarray:
    from skimage import data

    crops = data.lfw_subset()  # [200, 25, 25]: 100 faces, then 100 non-faces
    if crops.dtype == np.uint8:  # documented as uint8; scikit-image 0.26 returns float64 in [0, 1]
        return crops.astype(np.float64) / 255.0
    return crops.astype(np.float64)


def _upsample_pad(crops: np.ndarray, face_px: int, pad_px: int) -> torch.Tensor:
    import cv2

    if face_px < 1 or pad_px < 0:
        raise ValueError(f"face_px must be positive and pad_px non-negative, got {face_px}, {pad_px}")
    images = []
    for crop in crops:
        big = cv2.resize(crop.astype(np.float32), (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        big = np.pad(np.clip(big, 0.0, 1.0), pad_px, mode="edge")
        images.append(array_to_tensor(big))
    return torch.stack(images)


def lfw_faces(face_px: int = LFW_FACE_PX, pad_px: int = LFW_PAD_PX) -> torch.Tensor:
    """The 100 LFW faces as grey-as-RGB ``[100, 3, face_px + 2 pad_px, ...]`` floats in [0, 1]."""
    return _upsample_pad(_lfw_subset()[:100], face_px, pad_px)


def lfw_non_faces(face_px: int = LFW_FACE_PX, pad_px: int = LFW_PAD_PX) -> torch.Tensor:
    """The 100 LFW non-face patches, prepared exactly like :func:`lfw_faces` (face-less inputs)."""
    return _upsample_pad(_lfw_subset()[100:], face_px, pad_px)
