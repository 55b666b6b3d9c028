"""Adversaries that try to recover identity from captures. Each ``recover``s images in [0, 1]."""
