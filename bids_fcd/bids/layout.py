"""BIDS input through pybids: T1w, FLAIR and ``_roi`` lesion masks per participant/session."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bids_fcd.bids.derivatives import participant_prefix

log = logging.getLogger(__name__)

#: ds004199's acquisition labels, in order of preference when a participant has several images.
T1W_ACQ_PREFERENCE = ("iso08", "sag111")
FLAIR_ACQ_PREFERENCE = ("T2sel", "tse3dvfl")


class InputError(ValueError):
    """A participant's inputs are missing or ambiguous; the message names what and the fix."""


@dataclass(frozen=True)
class SubjectInputs:
    """The images of one participant (and session)."""

    subject: str
    session: str | None
    t1w: Path
    flair: Path
    roi: Path | None

    @property
    def prefix(self) -> str:
        """``sub-<label>[_ses-<label>]``."""
        return participant_prefix(self.subject, self.session)


def open_layout(bids_dir: Path, validate: bool, database_dir: Path | None = None):  # untyped: BIDSLayout
    """A pybids ``BIDSLayout``; ``validate=False`` is ``--skip-bids-validation``."""
    from bids import BIDSLayout

    if not (bids_dir / "dataset_description.json").exists():
        raise InputError(f"{bids_dir} has no dataset_description.json; is it the root of a BIDS dataset?")
    return BIDSLayout(str(bids_dir), validate=validate, database_path=str(database_dir) if database_dir else None)


def read_filter_file(path: Path | None) -> dict[str, dict[str, Any]]:
    """The ``--bids-filter-file`` JSON: {"t1w": {...entities}, "flair": {...}} (fMRIPrep style)."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the BIDS filter file ({exc}); it must be a JSON object") from exc
    if not isinstance(data, dict) or set(data) - {"t1w", "flair"}:
        raise InputError(f"{path}: the BIDS filter file may only have the keys 't1w' and 'flair'")
    return data


def _choose(files: list[str], prefs: tuple[str, ...], what: str, who: str) -> Path:
    """Pick one of several candidates: preferred acq label first, then the last in sorted order."""
    def rank(f: str) -> tuple[int, str]:
        name = Path(f).name
        for i, acq in enumerate(prefs):
            if f"_acq-{acq}_" in name:
                return (i, name)
        return (len(prefs), name)

    files = sorted(files)
    best = min(rank(f)[0] for f in files)
    chosen = [f for f in files if rank(f)[0] == best][-1]
    if len(files) > 1:
        log.warning("%s: %d %s images (%s); using %s (rule: acq preference %s, then the last run)", who,
                    len(files), what, ", ".join(Path(f).name for f in files), Path(chosen).name, "/".join(prefs))
    return Path(chosen)


def find_roi(flair: Path) -> Path | None:
    """The ``_roi`` lesion mask of a FLAIR (ds004199: ``<FLAIR name>_roi.nii.gz``), or None.

    BIDS validation ignores these files (``.bidsignore``), so they are found beside the FLAIR.
    """
    name = flair.name.split(".nii")[0]
    for cand in (flair.with_name(f"{name}_roi.nii.gz"), flair.with_name(f"{name}_roi.nii")):
        if cand.exists():
            return cand
    return None


def subject_sessions(layout, subject: str, sessions: tuple[str, ...]) -> list[str | None]:
    """Sessions of a subject to process (``[None]`` for a dataset without sessions)."""
    have = layout.get_sessions(subject=subject)
    if not have:
        return [None]
    if sessions:
        return [s for s in have if s in sessions]
    return sorted(have)


def find_inputs(layout, subject: str, session: str | None, filters: dict[str, dict[str, Any]]) -> SubjectInputs:
    """T1w, FLAIR and lesion mask of one participant/session; InputError when one is missing."""
    who = f"sub-{subject}" + (f" ses-{session}" if session else "")
    base: dict[str, Any] = {"subject": subject, "datatype": "anat", "extension": [".nii", ".nii.gz"],
                            "return_type": "filename"}
    if session:
        base["session"] = session
    found = {}
    for key, suffix, prefs in (("t1w", "T1w", T1W_ACQ_PREFERENCE), ("flair", "FLAIR", FLAIR_ACQ_PREFERENCE)):
        query = {**base, "suffix": suffix, **filters.get(key, {})}
        files = [f for f in layout.get(**query) if "_roi" not in Path(f).name]
        if not files:
            raise InputError(f"{who}: no {suffix} image found in {layout.root}/sub-{subject}/"
                             f"{'ses-' + session + '/' if session else ''}anat; both T1w and FLAIR are required")
        found[key] = _choose(files, prefs, suffix, who)
    return SubjectInputs(subject, session, found["t1w"], found["flair"], find_roi(found["flair"]))
