"""participants.tsv: read tolerant of a byte-order mark; lobe labels parsed to soft targets."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.config import LOBES

log = logging.getLogger(__name__)
#: lobe entries that mean "no lesion lobe"
NO_LOBE = ("", "n/a", "na", "none")
#: participants.tsv ``group`` codes of healthy controls (case-insensitive): ds004199 writes ``hc``;
#: other datasets write ``control``, ``controls`` or ``healthy``. Used everywhere a control is
#: recognised (reference, calibration, false-positive figures, the group page).
CONTROL_GROUPS = ("hc", "control", "controls", "healthy", "healthy control", "healthy_control")


def is_control(group: object) -> bool:
    """True for a participants.tsv ``group`` value in :data:`CONTROL_GROUPS` (case and spaces ignored)."""
    return str(group or "").strip().lower() in CONTROL_GROUPS


def read_participants(bids_dir: Path) -> dict[str, dict[str, str]]:
    """{label (no ``sub-``): row} from ``participants.tsv``; {} when the file is absent.

    The file is decoded as ``utf-8-sig`` so ds004199's leading byte-order mark is dropped.
    """
    path = Path(bids_dir) / "participants.tsv"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if rows and "participant_id" not in rows[0]:
        raise ValueError(f"{path}: the first column must be participant_id")
    out = {}
    for row in rows:
        pid = (row.get("participant_id") or "").strip()
        out[pid[4:] if pid.startswith("sub-") else pid] = {k: (v or "").strip() for k, v in row.items() if k}
    unknown = sorted({p.strip() for r in out.values() for p in r.get("lobe", "").replace(";", ",").split(",")
                      if p.strip() not in LOBES[1:] and p.strip().lower() not in NO_LOBE})
    if unknown:
        log.warning("%s: unknown lobe code(s) %s in the lobe column (known: %s); they count as no lobe", path,
                    ", ".join(unknown), ", ".join(LOBES[1:]))
    return out


def lobe_target(lobe_field: str | None) -> np.ndarray:
    """Soft target over ``LOBES`` for a participants.tsv ``lobe`` entry.

    ``FL`` → one-hot on FL; ``TL,PL`` → 0.5 on TL and 0.5 on PL (a soft label, not a new class);
    ``n/a``/empty/unknown → healthy. Returns (6,) float32 summing to 1.
    """
    names = [p.strip() for p in (lobe_field or "").replace(";", ",").split(",") if p.strip() in LOBES[1:]]
    out = np.zeros(len(LOBES), np.float32)
    if not names:
        out[0] = 1.0
        return out
    for n in names:
        out[LOBES.index(n)] += 1.0 / len(names)
    return out


def training_subjects(bids_dir: Path, labels: list[str], layout: Any) -> list[str]:
    """Given labels, or participants.tsv ``split == train``, or every subject of ``layout`` (a pybids
    ``BIDSLayout``) when there is no split."""
    if labels:
        return labels
    rows = read_participants(bids_dir)
    if rows and any("split" in r for r in rows.values()):
        chosen = sorted(k for k, r in rows.items() if r.get("split") == "train")
        if chosen:
            return chosen
    return sorted(layout.get_subjects())
