"""Model files for inference and the default models shipped with privlens.

* :mod:`privlens.models.heatmap`: U's file format (weights, architecture, training size, mean shape);
* :mod:`privlens.models.provenance`: the JSON record beside each model file, with its SHA-256;
* :mod:`privlens.models.registry`: the shipped defaults (``privlens/models/weights/``), loading
  by kind, and the size check between models that must work together.

Usage::

    from privlens.models import load_shipped, check_same_size, image_size_of
    u = load_shipped("heatmap")          # HeatmapModel: .net, .image_size, .mean_shape
    camera = load_shipped("lens")        # Camera
    check_same_size(heatmap=u.image_size, generator=image_size_of(bundle))
"""

from privlens.models.errors import ModelFileError, ModelHashError, ModelSizeError
from privlens.models.heatmap import (
    HeatmapModel,
    load_heatmap_model,
    load_heatmap_net,
    read_heatmap_net,
    save_heatmap_net,
)
from privlens.models.provenance import (
    git_commit,
    machine_description,
    read_provenance,
    sha256_of,
    verify_file,
    write_provenance,
)
from privlens.models.registry import (
    SHIPPED,
    WEIGHTS_DIR,
    ShippedModel,
    check_same_size,
    image_size_of,
    load_model,
    load_shipped,
    register,
    register_loader,
    shipped,
    shipped_path,
    shipped_provenance,
)

__all__ = [
    "SHIPPED",
    "WEIGHTS_DIR",
    "HeatmapModel",
    "ModelFileError",
    "ModelHashError",
    "ModelSizeError",
    "ShippedModel",
    "check_same_size",
    "git_commit",
    "image_size_of",
    "load_heatmap_model",
    "load_heatmap_net",
    "load_model",
    "load_shipped",
    "machine_description",
    "read_heatmap_net",
    "read_provenance",
    "register",
    "register_loader",
    "save_heatmap_net",
    "sha256_of",
    "shipped",
    "shipped_path",
    "shipped_provenance",
    "verify_file",
    "write_provenance",
]
