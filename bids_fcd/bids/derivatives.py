"""Derivative names, sidecars and the derivative dataset description.

:func:`derivative_path` is the one function that turns BIDS entities into a file name; nothing
else in the package builds derivative names. :data:`SIDECARS` and :data:`COLUMNS` are the tables
sidecar contents come from (design.md §6.11). Every file is written through a temporary name in
the same folder and renamed (:func:`bids_fcd.io.atomic_path`), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bids_fcd import CODE_URL, __version__
from bids_fcd.config import Environment
from bids_fcd.io import atomic_path as atomic_path  # re-exported: the reports write through it
from bids_fcd.io import write_json, write_text

SPACE = "MNI152NLin2009aSym"
#: Entity order in derivative names (BIDS: sub, ses, from, to, mode, space, res, stat, desc).
ENTITY_ORDER = ("sub", "ses", "from", "to", "mode", "space", "res", "stat", "desc")
#: The template's native resolution (mm); a grid at another spacing gets a ``res-`` entity.
TEMPLATE_NATIVE_MM = 1.0

#: Non-standard suffixes that BIDS validation should ignore in the derivative dataset.
BIDSIGNORE = ("*_statmap.nii.gz", "*_statmap.json", "*_table.tsv", "*_table.json", "*_probabilities.tsv",
              "*_probabilities.json", "*_xfm.mat", "*_xfm.nii.gz", "*_xfm.json", "*.html", "figures/", "log/", "assets/",
              "group_*")


#: Sidecar contents per derivative kind; ``{name}`` fields are filled by :func:`sidecar`.
SIDECARS: dict[str, dict[str, Any]] = {
    "preproc_T1w": {"Description": "T1w: N4 bias correction, {registration} registration to {space}, "
                                   "skull-stripped, brain percentiles {percentiles} mapped to -1 and 0.6 (no upper "
                                   "clipping)", "SkullStripped": True},
    "preproc_FLAIR": {"Description": "FLAIR: N4 bias correction, rigid to the T1w, {registration} registration to "
                                     "{space}, skull-stripped, brain percentiles {percentiles} mapped to -1 and 0.6",
                      "SkullStripped": True},
    "brain_mask": {"Description": "deepbet brain mask of the T1w", "Type": "Brain"},
    "pseudohealthy_FLAIR": {"Description": "Pseudo-healthy FLAIR: {encoding} encoding to L, healthy-guided DDIM to "
                                           "0, masked histogram matching to the real FLAIR", "SkullStripped": True},
    "anomaly_statmap": {"Description": "{anomaly} in the brain mask, smoothed", "SkullStripped": True},
    "anomaly_statmap_T1w": {"Description": "The anomaly map ({anomaly}) resampled to the T1w (linear, inverse "
                                           "template transforms)", "SkullStripped": True},
    "z_statmap": {"SkullStripped": True},
    "z_statmap_T1w": {"Description": "The z-map resampled to the T1w (linear, inverse template transforms); "
                                     "cluster forming used the template-space map", "SkullStripped": True},
    "clusters_dseg": {"Description": "Clusters of z > threshold, labelled by rank (1 = highest peak z); labels in "
                                     "the dseg.tsv beside it"},
    "clusters_dseg_T1w": {"Description": "The clusters resampled to the T1w (nearest label, inverse template "
                                         "transforms); labels as in the template-space dseg"},
    "clusters_table": {"Description": "One row per cluster, ranked by peak z; coordinates in {space} mm"},
    "clusters_table_T1w": {"Description": "One row per cluster of the T1w-space clusters, same indices as the "
                                          "template-space table; coordinates in the T1w image's scanner mm (its "
                                          "qform/sform)"},
    "lobes_probabilities": {"Description": "Lobe classifier C(c | FLAIR, t=0) aggregated over slices: max over "
                                           "slices per lobe, min over slices for healthy, normalised to sum to 1"},
    "xfm_affine": {"Description": "ANTs affine transform {frm} -> {to}"},
    "xfm_warp": {"Description": "ANTs SyN displacement field, applied before the affine of the same name "
                                "(antsApplyTransforms order: warp, then .mat)"},
}

_COORD = {"Units": "mm"}
#: TSV column descriptions per table kind (BIDS: every column documented in the sidecar).
COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    "clusters_table": {
        "index": {"Description": "Cluster rank (1 = highest peak z); the label in the clusters dseg"},
        "hemisphere": {"Description": "Hemisphere of the peak", "Levels": "L, R"},
        "lobe": {"Description": "Cortical lobe of the peak (atlas of the template); FL frontal, TL temporal, PL "
                                "parietal, OL occipital, IL insula"},
        "size_mm3": {"Description": "Cluster volume", "Units": "mm^3"},
        "peak_z": {"Description": "Highest z-statistic in the cluster"},
        "peak_x": {"Description": "x of the peak (template RAS)", **_COORD},
        "peak_y": {"Description": "y of the peak (template RAS)", **_COORD},
        "peak_z_mm": {"Description": "z coordinate of the peak (template RAS); peak_z is the z-statistic", **_COORD},
        "center_x": {"Description": "x of the centre of mass (template RAS)", **_COORD},
        "center_y": {"Description": "y of the centre of mass (template RAS)", **_COORD},
        "center_z": {"Description": "z of the centre of mass (template RAS)", **_COORD},
    },
    "clusters_table_T1w": {
        "index": {"Description": "Cluster rank, as in the template-space table"},
        "size_mm3": {"Description": "Volume of the resampled cluster in the T1w", "Units": "mm^3"},
        "peak_z": {"Description": "Highest z-statistic of the T1w-space z-map in the cluster"},
        "peak_x": {"Description": "x of the peak (T1w scanner RAS)", **_COORD},
        "peak_y": {"Description": "y of the peak (T1w scanner RAS)", **_COORD},
        "peak_z_mm": {"Description": "z coordinate of the peak (T1w scanner RAS)", **_COORD},
        "center_x": {"Description": "x of the centre of mass (T1w scanner RAS)", **_COORD},
        "center_y": {"Description": "y of the centre of mass (T1w scanner RAS)", **_COORD},
        "center_z": {"Description": "z of the centre of mass (T1w scanner RAS)", **_COORD},
    },
    "clusters_lookup": {
        "index": {"Description": "Label value in the dseg image"},
        "name": {"Description": "Label name"},
    },
    "lobes_probabilities": {
        "lobe": {"Description": "Class of the lobe classifier", "Levels": "healthy, FL, TL, PL, OL, IL"},
        "probability": {"Description": "Participant-level probability of the class"},
    },
}


def sidecar(kind: str, **values: Any) -> dict[str, Any]:
    """The sidecar of a derivative kind (:data:`SIDECARS`), ``{name}`` fields filled from ``values``,
    with the TSV column descriptions of :data:`COLUMNS` for table kinds."""
    out: dict[str, Any] = {}
    for key, val in SIDECARS[kind].items():
        out[key] = val.format(**values) if isinstance(val, str) else val
    out.update(COLUMNS.get(kind, {}))
    return out


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


def res_label(spacing_mm: float) -> str | None:
    """The ``res-`` label of a grid: None at the template's native resolution, else the spacing in mm."""
    return None if abs(spacing_mm - TEMPLATE_NATIVE_MM) < 1e-6 else f"{spacing_mm:g}".replace(".", "p")


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


def in_container(env: Environment) -> dict[str, str] | None:
    """GeneratedBy.Container when running in the bids-fcd image, else None.

    The image sets ``BIDS_FCD_CONTAINER`` (``docker``) and ``BIDS_FCD_IMAGE`` (read into ``env``); a
    ``/.dockerenv`` alone says nothing, since a virtual environment inside any container would then
    claim to be the bids-fcd image.
    """
    if env.container:
        return {"Type": env.container, "Tag": env.image or f"bids-fcd:{__version__}"}
    return None


def dataset_description(bids_dir: Path, env: Environment | None = None) -> dict[str, Any]:
    """The derivative dataset's ``dataset_description.json`` content (``env``: the container, if any)."""
    gen: dict[str, Any] = {"Name": "bids-fcd", "Version": __version__, "CodeURL": CODE_URL}
    container = in_container(env or Environment())
    if container:
        gen["Container"] = container
    try:
        raw = json.loads((Path(bids_dir) / "dataset_description.json").read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raw = {}
    # A DOI where the raw dataset has one; otherwise the BIDS URI of the raw dataset's root
    # (never a path of this machine, which would mean nothing elsewhere).
    doi = str(raw.get("DatasetDOI") or "").strip()
    src: dict[str, Any] = {"DOI": doi, "URL": "https://doi.org/" + doi.removeprefix("doi:")} if doi else {
        "URL": "bids:raw:"}
    if raw.get("Name"):
        src["Name"] = raw["Name"]
    out: dict[str, Any] = {
        "Name": "bids-fcd derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [gen],
        "SourceDatasets": [src],
    }
    if doi:
        out["DatasetLinks"] = {"raw": src["URL"]}
    return out


def write_dataset_files(out_dir: Path, bids_dir: Path, env: Environment | None = None) -> None:
    """Write (or refresh) ``dataset_description.json`` and ``.bidsignore`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "dataset_description.json", dataset_description(bids_dir, env))
    write_text(out_dir / ".bidsignore", "\n".join(BIDSIGNORE) + "\n")
