"""Embedded sample data shipped inside scikit-image: nothing is downloaded.

* ``astronaut()``: NASA portrait of Eileen Collins (512 x 512 RGB, public domain).
"""

from __future__ import annotations

import torch

from privlens.data.images import array_to_tensor, square_resize


def astronaut(size: int | None = 256) -> torch.Tensor:
    """The astronaut photo as float RGB ``[3, size, size]`` in [0, 1] (512 px when ``size=None``)."""
    from skimage import data

    image = array_to_tensor(data.astronaut())
    return image if size is None else square_resize(image, size)
