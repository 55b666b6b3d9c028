"""Training: Stage I (heatmap network and learned lens), losses, checkpoints, logging, DDP set-up.

Entry point: :func:`privlens.train.stage1.run_stage1`; configuration:
:mod:`privlens.train.config` (generic loader) and :mod:`privlens.train.stage1_config`.
"""
