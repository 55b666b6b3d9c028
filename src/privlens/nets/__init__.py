"""Network definitions only: no file reading, no configuration parsing, no training."""

from privlens.nets.heatmap import CoordConv, HeatmapNet, Hourglass, ResidualBlock, add_coords
from privlens.nets.softargmax import soft_argmax

__all__ = ["CoordConv", "HeatmapNet", "Hourglass", "ResidualBlock", "add_coords", "soft_argmax"]
