"""privlens: hardware-level face de-identification with learned privacy-preserving optics."""

__version__ = "0.1.0"
