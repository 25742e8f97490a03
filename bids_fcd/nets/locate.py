"""Where model directories are found (no torch import: the CLI checks --model before heavy imports).

The shipped models are package data (``bids_fcd/models/<name>/``), so a source checkout, an editable
install and an installed wheel all find them in the same place; ``$BIDS_FCD_MODELS`` (the image sets
``/opt/bids-fcd/models``) points elsewhere.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "phantom-default"


class ModelError(ValueError):
    """A model directory is missing, incomplete or corrupt; the message says which file."""


def models_root(models_dir: str | None = None) -> Path:
    """Where named models live: ``models_dir`` (``$BIDS_FCD_MODELS``, read by the CLI into
    :class:`~bids_fcd.config.Environment`) if given, else the package's own ``bids_fcd/models/``."""
    return Path(models_dir) if models_dir else Path(__file__).resolve().parents[1] / "models"


def resolve_model(name_or_dir: str | None, models_dir: str | None = None) -> Path:
    """A model directory from a path or a name under :func:`models_root` (None → default)."""
    name = name_or_dir or DEFAULT_MODEL
    cand = Path(name)
    if cand.is_dir():
        return cand
    root = models_root(models_dir)
    named = root / name
    if named.is_dir():
        return named
    raise ModelError(
        f"model {name!r} not found: it is neither a directory nor a name under {root}; "
        "pass --model with a directory written by `bids-fcd train` (or set BIDS_FCD_MODELS to the folder of models)"
    )
