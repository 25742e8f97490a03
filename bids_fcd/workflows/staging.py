"""Staging, manifests and crash records of one participant, and the run's private temporary directory.

Outputs are written under ``OUTPUT_DIR/.staging/<prefix>.<pid>-<host>`` and moved into place together
(:func:`publish`); a manifest (sha256 of every file, and of the settings that made them) is written
last, so a rerun skips participants whose manifest verifies (:func:`outputs_complete`). A failure
leaves a crash record (:func:`write_crash`) under ``sub-<label>/log/``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bids_fcd import __version__
from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import SubjectInputs
from bids_fcd.config import RunConfig, to_dict
from bids_fcd.io import sha256_bytes, sha256_file, write_json
from bids_fcd.nets.checkpoint import LoadedModel
from bids_fcd.nets.reference import LoadedReference
from bids_fcd.ownership import owner_tag, remove_stale

log = logging.getLogger(__name__)


def manifest_path(out_dir: Path, inp: SubjectInputs) -> Path:
    """``sub-<label>/[ses-<s>/]log/<prefix>_manifest.json``: sha256 of every output, written last."""
    return deriv.output_path(out_dir, inp.subject, inp.session, "manifest")


def crash_path(out_dir: Path, inp: SubjectInputs | tuple[str, str | None]) -> Path:
    """``sub-<label>/[ses-<s>/]log/<prefix>_crash.json``: why the last run of this participant failed."""
    subject, session = (inp.subject, inp.session) if isinstance(inp, SubjectInputs) else inp
    return deriv.output_path(out_dir, subject, session, "crash")


def settings_key(cfg: RunConfig, model: LoadedModel, ref: LoadedReference | None, inp: SubjectInputs) -> str:
    """sha256 of everything that changes a participant's outputs: inputs, settings, model, reference."""
    run = {k: v for k, v in to_dict(cfg).items() if k not in ("participant_label", "session_label", "overwrite",
                                                              "output_dir", "work_dir", "env")}
    blob = json.dumps([run, model.sha256, ref.sha256 if ref is not None else None,
                       [sha256_file(p) if p is not None else None for p in (inp.t1w, inp.flair, inp.roi)],
                       __version__], sort_keys=True)
    return sha256_bytes(blob.encode())


def outputs_complete(out_dir: Path, inp: SubjectInputs, key: str) -> bool:
    """True when the manifest exists, was made with the same settings, and every file matches it."""
    path = manifest_path(out_dir, inp)
    try:
        man = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if man.get("settings_sha256") != key:
        log.info("%s: outputs exist but were made with other inputs or settings; recomputing", inp.prefix)
        return False
    for rel, digest in man.get("files", {}).items():
        f = out_dir / rel
        if not f.is_file() or sha256_file(f) != digest:
            log.info("%s: %s is missing or changed since the last run; recomputing", inp.prefix, rel)
            return False
    return True


def write_crash(out_dir: Path, who: SubjectInputs | tuple[str, str | None], message: str, tb: str = "") -> None:
    """The crash record (JSON) of a failed participant: the one-line message and the traceback; never raises."""
    subject, session = (who.subject, who.session) if isinstance(who, SubjectInputs) else who
    prefix = deriv.participant_prefix(subject, session)
    try:
        write_json(crash_path(out_dir, (subject, session)), {
            "participant": prefix, "message": one_line(message), "traceback": tb, "software_version": __version__,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
    except OSError as exc:
        log.error("%s: could not write the crash record: %s", prefix, exc)


def one_line(message: str) -> str:
    """A message on one line (tools such as ANTs raise multi-line errors)."""
    return " ".join(message.split())


@contextmanager
def private_tmp(work: Path) -> Iterator[Path]:
    """A temporary directory of this process inside the work directory, used by Python's ``tempfile``
    (and so by antspyx) and by child processes (``TMPDIR``) while the block runs, removed after.

    Nothing is left in the system temporary directory, and two runs sharing a work directory
    use different folders. The name, ``tmp.<pid>-<host>_<letters, digits, _>``
    (:func:`~bids_fcd.ownership.owner_tag`: runs on other machines sharing the work directory keep
    theirs), has no dot after the pid, so it never looks like a transform file extension to ANTs
    (``tmp.123.h5x`` would: :mod:`bids_fcd.preprocessing.registration`).
    """
    work.mkdir(parents=True, exist_ok=True)
    remove_stale(work, "tmp.*")
    path = Path(tempfile.mkdtemp(prefix=f"tmp.{owner_tag()}_", dir=work))
    old_dir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(path)
    os.environ["TMPDIR"] = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = old_dir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(path, ignore_errors=True)


def publish(stage: Path, out_dir: Path, written: list[Path]) -> dict[str, str]:
    """Move the staged files into ``out_dir`` (rename, same file system) and return {relpath: sha256}."""
    staged = sorted(set(written))
    files = {p.relative_to(stage).as_posix(): sha256_file(p) for p in staged}
    for p in staged:
        dst = out_dir / p.relative_to(stage)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dst)
    return files


def unpublish(out_dir: Path, files: dict[str, str]) -> None:
    """Remove the files :func:`publish` moved into ``out_dir`` (their manifest could not be written)."""
    for rel in files:
        (out_dir / rel).unlink(missing_ok=True)
