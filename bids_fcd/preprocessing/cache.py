"""The preprocessing cache's record: the key a folder was made for, with which tools, and the
sha256 of every file in it.

A cache folder (``WORK/<participant>/<key[:16]>``) is used only when its record (``DONE``, written
last) names the same key and the same ANTs and deepbet versions, and every file still has the
sha256 it had when written: a truncated, damaged or foreign folder is recomputed, never used.
Folders made before records held checksums are read through once (every NIfTI decompressed to
its end, so a truncated one fails) and then given their checksums.

Each writer fills a folder of its own (``<key[:16]>.<pid>-<host>.partial``:
:func:`partial_folder`) and renames it into place when complete (:func:`publish_folder`), so two
processes computing one participant at once (a training and a participant-level run sharing a work
directory) never write into one folder, and a reader never sees half of one.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_fcd import __version__
from bids_fcd.io import sha256_file, write_json
from bids_fcd.ownership import owner_tag, remove_stale

log = logging.getLogger(__name__)

#: The record's file name inside a cache folder (written last).
RECORD = "DONE"
#: The packages whose version changes preprocessing results (a cache made with others is recomputed).
TOOLS = ("antspyx", "deepbet")


def tool_versions() -> dict[str, str]:
    """{package: installed version} for :data:`TOOLS` (``"unknown"`` when not installed)."""
    out = {}
    for name in TOOLS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def write_record(folder: Path, key: str, inputs: dict[str, str], names: list[str], tools: dict[str, str] | None) -> None:
    """Write ``folder/DONE``: the key, bids-fcd's version, the tools' versions (:func:`tool_versions`;
    None: unknown, never compared), the inputs, and the sha256 of the files ``names`` in ``folder``."""
    write_json(folder / RECORD, {"key": key, "software_version": __version__, "tools": tools, "inputs": inputs,
                                 "files": {name: sha256_file(folder / name) for name in sorted(names)}})


def nifti_complete(path: Path) -> bool:
    """True when ``path`` is a NIfTI whose data reads to the end (gzip checks its length and CRC there)."""
    try:
        np.asanyarray(nib.load(path).dataobj)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - nibabel, gzip and zlib raise many types for broken files
        return False
    return True


def _transform_complete(path: Path) -> bool:
    """True when ``path`` is an ANTs ``.mat`` transform (MATLAB v4) that reads."""
    from scipy.io import loadmat

    try:
        loadmat(path)
    except Exception:  # noqa: BLE001 - scipy raises many types for broken files
        return False
    return True


def cache_problem(folder: Path, key: str, expected: list[str]) -> str | None:
    """Why the cache folder ``folder`` must not be used for ``key``, or None when it can be.

    Args:
        expected: the names of the files a complete folder holds.
    """
    record_path = folder / RECORD
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as exc:
        return f"the cache record {record_path} cannot be read ({exc})"
    if not isinstance(record, dict):
        return f"the cache record {record_path} is not a JSON object"
    if "files" not in record:
        return _adopt_unchecked(folder, key, record, expected)
    if record.get("key") != key:
        return f"{folder} was made for other inputs or settings (its record names another key)"
    tools, current = record.get("tools"), tool_versions()
    if tools is not None and tools != current:
        return (f"{folder} was made with {_versions(tools)}, this run has {_versions(current)} (their results "
                "differ)")
    files = record["files"]
    missing = [name for name in expected if name not in files]
    if missing:
        return f"the cache record {record_path} lists no {', '.join(missing)}"
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if sha256_file(path) != digest:
            return f"{path} does not match its sha256 (truncated or changed since it was written)"
    return None


def _versions(tools: object) -> str:
    return ", ".join(f"{k} {v}" for k, v in tools.items()) if isinstance(tools, dict) else repr(tools)


def _adopt_unchecked(folder: Path, key: str, record: dict, expected: list[str]) -> str | None:
    """A record without checksums (written before records held them): every expected file must read
    to its end; then the record gets their checksums (tools unknown)."""
    for name in expected:
        path = folder / name
        readable = nifti_complete(path) if name.endswith((".nii", ".nii.gz")) else _transform_complete(path)
        if not path.is_file() or not readable:
            return f"{path} is missing or does not read to its end (truncated?)"
    inputs = {k: str(v) for k, v in record.items() if k in ("t1w", "flair", "roi")}
    write_record(folder, key, inputs, expected, tools=None)
    log.info("preprocessing: %s read through and given checksums", folder)
    return None


def partial_folder(folder: Path) -> Path:
    """A new, empty folder of this process beside ``folder`` to fill (what killed runs of this host
    left beside it is removed first)."""
    remove_stale(folder.parent, f"{folder.name}.*")
    tmp = folder.with_name(f"{folder.name}.{owner_tag()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def publish_folder(tmp: Path, folder: Path, key: str, expected: list[str]) -> None:
    """Rename the complete folder ``tmp`` (its record written) to ``folder``.

    When another process published a usable ``folder`` for ``key`` first, that one is kept and
    ``tmp`` removed; an unusable one (damaged, other settings) is moved aside and removed, never
    written into.
    """
    for _ in range(5):
        try:
            os.rename(tmp, folder)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if cache_problem(folder, key, expected) is None:
            log.info("preprocessing: %s was completed by another process meanwhile; using it", folder)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        aside = folder.with_name(f"{folder.name}.{owner_tag()}.old")
        try:
            os.rename(folder, aside)
        except FileNotFoundError:  # another process moved it aside already
            continue
        shutil.rmtree(aside, ignore_errors=True)
    raise OSError(errno.EBUSY, f"could not move {tmp} to {folder}: other processes keep replacing it; rerun", str(folder))
