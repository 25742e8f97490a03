"""Derivative names, sidecars and the derivative dataset description.

:func:`derivative_path` is the one function that turns BIDS entities into a file name; nothing
else in the package builds derivative names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bids_fcd import CODE_URL, __version__

SPACE = "MNI152NLin2009aSym"
#: Entity order in derivative names (BIDS: sub, ses, from, to, mode, space, stat, desc).
ENTITY_ORDER = ("sub", "ses", "from", "to", "mode", "space", "stat", "desc")

#: Non-standard suffixes that BIDS validation should ignore in the derivative dataset.
BIDSIGNORE = ("*_statmap.nii.gz", "*_statmap.json", "*_table.tsv", "*_table.json", "*_probabilities.tsv",
              "*_probabilities.json", "*_xfm.mat", "*_xfm.nii.gz", "*_xfm.json", "*.html", "log/")


def derivative_path(root: Path, subject: str, session: str | None, suffix: str, extension: str,
                    datatype: str = "anat", **entities: str | None) -> Path:
    """``root/sub-<s>/[ses-<t>/]<datatype>/sub-<s>[_ses-<t>][_<key>-<value>…]_<suffix><extension>``.

    Args:
        entities: any of ``from, to, mode, space, stat, desc`` (``from_`` for the keyword).
    """
    ents: dict[str, str | None] = {"sub": subject, "ses": session}
    for key, value in entities.items():
        key = key.rstrip("_")
        if key not in ENTITY_ORDER:
            raise ValueError(f"unknown BIDS entity {key!r}")
        ents[key] = value
    parts = [f"{k}-{ents[k]}" for k in ENTITY_ORDER if ents.get(k)]
    folder = Path(root) / f"sub-{subject}"
    if session:
        folder = folder / f"ses-{session}"
    return folder / datatype / ("_".join(parts) + f"_{suffix}{extension}")


def sidecar_path(path: Path) -> Path:
    """The JSON sidecar beside a derivative (``.nii.gz``/``.tsv``/``.mat`` → ``.json``)."""
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv", ".mat", ".html"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    raise ValueError(f"no sidecar rule for {name}")


def bids_uri(path: Path, dataset_root: Path, name: str = "raw") -> str:
    """``bids:<name>:<path relative to the dataset root>``."""
    return f"bids:{name}:{Path(os.path.relpath(path, dataset_root)).as_posix()}"


def in_container() -> dict[str, str] | None:
    """GeneratedBy.Container when running inside Docker (``/.dockerenv``), else None."""
    if Path("/.dockerenv").exists():
        return {"Type": "docker", "Tag": f"bids-fcd:{__version__}"}
    return None


def dataset_description(bids_dir: Path) -> dict[str, Any]:
    """The derivative dataset's ``dataset_description.json`` content."""
    gen: dict[str, Any] = {"Name": "bids-fcd", "Version": __version__, "CodeURL": CODE_URL}
    container = in_container()
    if container:
        gen["Container"] = container
    src: dict[str, Any] = {"URL": Path(bids_dir).resolve().as_uri()}
    try:
        raw = json.loads((Path(bids_dir) / "dataset_description.json").read_text())
        if raw.get("DatasetDOI"):
            src["DOI"] = raw["DatasetDOI"]
    except (OSError, json.JSONDecodeError):
        pass
    return {
        "Name": "bids-fcd derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [gen],
        "SourceDatasets": [src],
        "DatasetLinks": {"raw": Path(bids_dir).resolve().as_uri()},
    }


def write_dataset_files(out_dir: Path, bids_dir: Path) -> None:
    """Write (or refresh) ``dataset_description.json`` and ``.bidsignore`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "dataset_description.json", dataset_description(bids_dir))
    (out_dir / ".bidsignore").write_text("\n".join(BIDSIGNORE) + "\n")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Indented JSON, written through a temporary file so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
