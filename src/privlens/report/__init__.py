"""Figures and reports. Computes no metrics itself."""
