"""Errors of model files (a ``ValueError`` each, so callers that catch ``ValueError`` keep working)."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model file is missing, corrupt, of another kind, or does not fit what it is used with."""


class ModelHashError(ModelFileError):
    """A shipped model file's SHA-256 differs from the one its provenance records."""


class ModelSizeError(ModelFileError):
    """Two models trained at different image sizes were asked to work together."""
