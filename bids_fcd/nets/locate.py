"""Where model directories are found (no torch import: the CLI checks --model before heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "phantom-default"


class ModelError(ValueError):
    """A model directory is missing, incomplete or corrupt; the message says which file."""


def models_root() -> Path:
    """Where named models live: ``$BIDS_FCD_MODELS`` if set, else the repository's ``models/``."""
    env = os.environ.get("BIDS_FCD_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def resolve_model(name_or_dir: str | None) -> Path:
    """A model directory from a path or a name under :func:`models_root` (None → default)."""
    name = name_or_dir or DEFAULT_MODEL
    cand = Path(name)
    if cand.is_dir():
        return cand
    named = models_root() / name
    if named.is_dir():
        return named
    raise ModelError(
        f"model {name!r} not found: it is neither a directory nor a name under {models_root()}; "
        "pass --model with a directory written by `bids-fcd train`"
    )
