"""Atomic file writes and sha256, used by every writer of the package.

A file is written under a temporary name beside its destination and renamed over it when complete
(:func:`atomic_path`), so a crash or a kill never leaves half a file, and two processes writing the
same file never mix bytes: the last rename wins and either version is whole. Nothing here imports
the rest of the package (the lowest layer: ``[tool.importlinter]`` in pyproject.toml).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nibabel as nib
    import numpy as np

#: Extensions kept at the end of a temporary name, so tools that look at the suffix (nibabel) still can.
_KEPT_EXTENSIONS = (".nii.gz", ".nii", ".tsv", ".json", ".mat", ".html", ".svg", ".png", ".npy", ".pt", ".md")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; on success rename it to ``path``, on error remove it.

    The temporary name (``.<stem>.<random>.tmp<ext>``) is unique per call; the parent folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    ext = next((e for e in _KEPT_EXTENSIONS if name.endswith(e)), "")
    tmp = path.with_name(f".{name[: len(name) - len(ext)]}.{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    """Indented JSON with a final newline, written atomically."""
    write_text(path, json.dumps(data, indent=indent) + "\n")


def write_tsv(path: Path, rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...]) -> None:
    """A tab-separated table with a header, ``\\n`` line ends (BIDS), written atomically; ``rows``
    are dicts by column (missing keys stay empty)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), delimiter="\t", lineterminator="\n", restval="")
        w.writeheader()
        w.writerows(rows)


def write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    """Save a NIfTI image atomically (the temporary name keeps ``.nii.gz``, so it is compressed alike)."""
    import nibabel as nib

    with atomic_path(path) as tmp:
        nib.save(img, tmp)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Save an array as ``.npy`` atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        np.save(tmp, array)


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (contents only, like :func:`shutil.copyfile`)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
