"""Where model directories are found (no torch import: the CLI checks --model before heavy imports).

The shipped models are package data (``bids_fcd/models/<name>/``), so a source checkout, an editable
install and an installed wheel (the Docker image's too) all find them in the same place;
``$BIDS_FCD_MODELS`` (the image sets ``/opt/bids-fcd/models``, empty, for a mounted folder of models)
is searched first.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "phantom-default"


class ModelError(ValueError):
    """A model directory is missing, incomplete or corrupt; the message says which file."""


def packaged_models() -> Path:
    """The package's own ``bids_fcd/models/`` (the shipped model; package data of the wheel)."""
    return Path(__file__).resolve().parents[1] / "models"


def models_root(models_dir: str | None = None) -> Path:
    """Where named models live first: ``models_dir`` (``$BIDS_FCD_MODELS``, read by the CLI into
    :class:`~bids_fcd.config.Environment`) if given, else the package's own :func:`packaged_models`."""
    return Path(models_dir) if models_dir else packaged_models()


def resolve_model(name_or_dir: str | None, models_dir: str | None = None) -> Path:
    """A model directory from a path, or a name under :func:`models_root` and then under the
    package's :func:`packaged_models` (None → default), so a folder of one's own models set with
    ``$BIDS_FCD_MODELS`` does not hide the shipped one."""
    name = name_or_dir or DEFAULT_MODEL
    cand = Path(name)
    if cand.is_dir():
        return cand
    roots = list(dict.fromkeys([models_root(models_dir), packaged_models()]))
    for root in roots:
        if (root / name).is_dir():
            return root / name
    raise ModelError(
        f"model {name!r} not found: it is neither a directory nor a name under {' or '.join(map(str, roots))}; "
        "pass --model with a directory written by `bids-fcd train` (or set BIDS_FCD_MODELS to the folder of models)"
    )
