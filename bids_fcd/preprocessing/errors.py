"""The error of one participant's preprocessing (a module of its own, so every preprocessing
module can raise it without importing the pipeline)."""

from __future__ import annotations


class PreprocessingError(RuntimeError):
    """A participant's images could not be preprocessed; the message names the file."""
