"""Network definitions only: no file reading, no configuration parsing, no training."""

from privlens.nets.heatmap import CoordConv, HeatmapNet, Hourglass, ResidualBlock, add_coords
from privlens.nets.softargmax import soft_argmax
from privlens.nets.stargan import Discriminator, Generator, MappingNetwork, StyleEncoder, reads_warps

__all__ = [
    "CoordConv",
    "Discriminator",
    "Generator",
    "HeatmapNet",
    "Hourglass",
    "MappingNetwork",
    "ResidualBlock",
    "StyleEncoder",
    "add_coords",
    "reads_warps",
    "soft_argmax",
]
