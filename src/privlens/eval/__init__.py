"""Metrics and the paper's evaluation protocol. Never changes models."""

from privlens.eval.quality import psnr

__all__ = ["psnr"]
