"""Atomic file writes and sha256, used by every writer of the package.

A file is written under a temporary name beside its destination and renamed over it when complete
(:func:`atomic_path`), so a crash or a kill never leaves half a file, and two processes writing the
same file never mix bytes: the last rename wins and either version is whole. A write refused for
want of space is recognised (:func:`disk_full`) and described (:func:`disk_full_message`). Nothing here imports
the rest of the package (the lowest layer: ``[tool.importlinter]`` in pyproject.toml).
"""

from __future__ import annotations

import csv
import errno
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


#: errno values of a write refused for want of space: the disk is full, or the user's quota is used up.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> OSError | None:
    """The ``ENOSPC``/``EDQUOT`` error behind ``exc`` (itself, or its cause or context), or None."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def disk_full_message(err: OSError, where: Path) -> str:
    """One line: the disk (or quota) is full, which file or folder was being written, the space left
    there, and what to do."""
    target = Path(err.filename) if err.filename else where
    what = "the disk quota is used up" if err.errno == errno.EDQUOT else "the disk is full"
    try:
        free = f"{shutil.disk_usage(where if where.exists() else where.parent).free / 2**20:.0f} MiB free"
    except OSError:
        free = "free space unknown"
    return (f"{what} writing {target} (the file system of {where}, {free} now); free space there or write to "
            "another disk, then rerun the same command (complete participants are skipped)")
