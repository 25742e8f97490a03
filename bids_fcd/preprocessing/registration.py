"""ANTs registration whose transforms are written where ANTs can write them, and checked.

ANTs picks how to write a transform from its *whole* path: when the path holds ``.h5``, ``.hdf5``,
``.hdf4``, ``.mat``, ``.txt`` or ``.xfm`` anywhere (a folder name such as ``study.h5/`` too) it
writes the SyN displacement fields as ITK transform files, fails with an ITK error, and leaves
only the affine; antspyx then returns no warp, or raises ``IndexError``. antspyx also finds the
files by globbing the output prefix, so ``[``, ``]``, ``*`` or ``?`` in it find nothing.
Registration therefore writes into a fresh folder (:func:`ants_scratch`) whose whole path holds
none of these, and :func:`register` checks that every expected file was written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bids_fcd.preprocessing.errors import PreprocessingError

log = logging.getLogger(__name__)

#: Substrings of a path that make ANTs write a displacement field as an ITK transform file (it searches
#: the whole path, case-sensitively; matched here case-insensitively to be safe).
ANTS_TRANSFORM_MARKERS = (".h5", ".hdf5", ".hdf4", ".mat", ".txt", ".xfm")
#: Characters that break antspyx's glob for the files it wrote.
GLOB_CHARACTERS = ("[", "]", "*", "?")
#: Folders tried, after Python's temporary directory, for ANTs' outputs.
FALLBACK_TEMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")
#: The scratch folder's name prefix; ``tempfile`` adds letters, digits and ``_`` only (no dots).
SCRATCH_PREFIX = "antsreg_"


def ants_unsafe_part(path: str | Path) -> str | None:
    """The part of ``path`` that would make ANTs mis-write its transforms or antspyx miss them, or None."""
    text = str(path)
    lower = text.lower()
    for marker in ANTS_TRANSFORM_MARKERS:
        if marker in lower:
            return marker
    return next((c for c in GLOB_CHARACTERS if c in text), None)


def _scratch_base() -> Path:
    """Python's temporary directory when ANTs can write under it, else the first such system folder."""
    tried = [tempfile.gettempdir(), *FALLBACK_TEMP_DIRS]
    for base in tried:
        if ants_unsafe_part(base) is None and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            if base != tried[0]:
                log.info("ANTs writes its transforms under %s: the temporary directory %s contains %r, which ANTs "
                         "takes for a transform file extension", base, tried[0], ants_unsafe_part(tried[0]))
            return Path(base)
    raise PreprocessingError(
        f"no writable temporary folder whose path ANTs can write transforms under (tried {', '.join(tried)}; a path "
        f"must not contain {', '.join(ANTS_TRANSFORM_MARKERS + GLOB_CHARACTERS)}): set TMPDIR to such a folder")


@contextmanager
def ants_scratch() -> Iterator[Path]:
    """A new empty folder for ANTs' outputs, removed afterwards; its whole path is safe for ANTs.

    It is made in Python's temporary directory (a run's private one inside the work directory) when
    that path is safe, else in a system temporary folder; so a work directory such as
    ``/data/study.h5/work`` still works.
    """
    path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=_scratch_base()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Transforms:
    """The files of one registration, moving → fixed (ANTs names, beside ``outprefix``).

    Attributes:
        affine: ANTs ``GenericAffine.mat`` (rigid or affine).
        warp: the SyN displacement field (moving → fixed, applied after the affine), or None.
        inverse_warp: its inverse (fixed → moving, applied before the inverted affine), or None.
    """

    affine: Path
    warp: Path | None
    inverse_warp: Path | None


def expected_transforms(outprefix: Path, transform: str) -> Transforms:
    """The files ANTs writes for ``type_of_transform`` ``transform`` (Rigid, Affine or SyN) at ``outprefix``."""
    prefix = str(outprefix)
    if transform == "SyN":
        return Transforms(Path(prefix + "0GenericAffine.mat"), Path(prefix + "1Warp.nii.gz"),
                          Path(prefix + "1InverseWarp.nii.gz"))
    if transform in ("Rigid", "Affine"):
        return Transforms(Path(prefix + "0GenericAffine.mat"), None, None)
    raise ValueError(f"unsupported registration {transform!r}; use 'Rigid', 'Affine' or 'SyN'")


def register(fixed, moving, transform: str, outprefix: Path, what: str) -> Transforms:  # untyped: ants images
    """Register ``moving`` to ``fixed`` with ANTs and return its checked transform files.

    Args:
        transform: ``Rigid``, ``Affine`` or ``SyN`` (antspyx's ``type_of_transform``).
        outprefix: where ANTs writes, e.g. ``<ants_scratch()>/t1w_to_template_``.
        what: names the participant's file and the step, e.g. ``"sub-01_T1w.nii.gz: T1w → template"``.
    Raises:
        PreprocessingError: when ANTs did not write every expected transform file.
    """
    import ants

    expected = expected_transforms(outprefix, transform)
    unsafe = ants_unsafe_part(outprefix)
    hint = (f"its path contains {unsafe!r}, which ANTs takes for a transform file extension: set TMPDIR to a "
            "folder without it" if unsafe is not None else
            f"check the free space and permissions of {outprefix.parent} (ANTs printed the reason above)")
    try:
        ants.registration(fixed=fixed, moving=moving, type_of_transform=transform, outprefix=str(outprefix))
    except IndexError as exc:  # antspyx indexes the list of warps it found, empty when ANTs wrote none
        raise PreprocessingError(f"{what}: ANTs {transform} registration wrote no displacement field under "
                                 f"{outprefix.parent}; {hint}") from exc
    missing = [p.name for p in (expected.affine, expected.warp, expected.inverse_warp)
               if p is not None and (not p.is_file() or p.stat().st_size == 0)]
    if missing:
        raise PreprocessingError(f"{what}: ANTs {transform} registration did not write {', '.join(missing)} under "
                                 f"{outprefix.parent}; {hint}")
    return expected
