"""Training: Stage I (heatmap network and learned lens), losses, checkpoints, logging, DDP set-up.

Entry point: :func:`privlens.train.stage1.run_stage1`; configuration:
:mod:`privlens.train.config` (generic loader) and :mod:`privlens.train.stage1_config`.
"""

from privlens.train.stage2_bundle import (
    GeneratorBundle,
    GeneratorBundleError,
    load_generator_bundle,
    save_generator_bundle,
)

__all__ = ["GeneratorBundle", "GeneratorBundleError", "load_generator_bundle", "save_generator_bundle"]
