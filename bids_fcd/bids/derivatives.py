"""Derivative names, the registry of participant outputs, sidecars and the dataset description.

:func:`derivative_path` is the one function that turns BIDS entities into a file name; nothing
else in the package builds derivative names. :data:`OUTPUTS` is the one list of what a participant
run writes (role → entities, suffix, extension, sidecar kind): the writer, the group level's
reader, the report's figure paths, staging's manifest and crash records and the stored file list
of the tests (:func:`expected_outputs`) all come from it. :data:`SIDECARS` and :data:`COLUMNS` are
the tables sidecar contents come from (docs/architecture.md). Every file is written through a temporary name in
the same folder and renamed (:func:`bids_fcd.io.atomic_path`), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bids_fcd import CODE_URL, __version__
from bids_fcd.config import LOBES, Environment, lobe_legend
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
        "lobe": {"Description": f"Cortical lobe of the peak (atlas of the template); {lobe_legend()}"},
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
        "lobe": {"Description": "Class of the lobe classifier", "Levels": ", ".join(LOBES)},
        "probability": {"Description": "Participant-level probability of the class"},
    },
}


# ------------------------------------------------------------------- the registry of outputs

#: When a participant output exists: ``always``; ``warp`` only with a deformable registration;
#: ``failure`` only after a failed run (the crash record).
When = Literal["always", "warp", "failure"]


@dataclass(frozen=True)
class Output:
    """One participant-level output file.

    Attributes:
        suffix, extension: the BIDS suffix and extension (``suffix == ""``: the report page,
            ``OUTPUT_DIR/<prefix><extension>``).
        datatype: the folder under ``sub-<label>/[ses-<s>/]`` (``anat``, ``figures``, ``log``).
        entities: (key, value) pairs in any order; :data:`ENTITY_ORDER` orders them in the name.
        on_grid: a template-space image on the model grid: gets ``res-<mm>`` (:func:`res_label`).
        sidecar: the :data:`SIDECARS` kind of its JSON sidecar; None: no sidecar of its own.
        when: see :data:`When`.
    """

    suffix: str
    extension: str
    datatype: str = "anat"
    entities: tuple[tuple[str, str], ...] = ()
    on_grid: bool = False
    sidecar: str | None = None
    when: When = "always"


def _o(suffix: str, extension: str, sidecar: str | None = None, *, datatype: str = "anat", on_grid: bool = False,
       when: When = "always", **entities: str) -> Output:
    return Output(suffix, extension, datatype, tuple((k.rstrip("_"), v) for k, v in entities.items()), on_grid,
                  sidecar, when)


#: Every participant-level output by role. Roles are the names the writer, the group level and
#: the report use; a new output is added here and nowhere else.
OUTPUTS: dict[str, Output] = {
    "preproc_T1w": _o("T1w", ".nii.gz", "preproc_T1w", on_grid=True, space=SPACE, desc="preproc"),
    "preproc_FLAIR": _o("FLAIR", ".nii.gz", "preproc_FLAIR", on_grid=True, space=SPACE, desc="preproc"),
    "brain_mask": _o("mask", ".nii.gz", "brain_mask", on_grid=True, space=SPACE, desc="brain"),
    "pseudohealthy_FLAIR": _o("FLAIR", ".nii.gz", "pseudohealthy_FLAIR", on_grid=True, space=SPACE, desc="pseudohealthy"),
    "anomaly_statmap": _o("statmap", ".nii.gz", "anomaly_statmap", on_grid=True, space=SPACE, desc="anomaly"),
    "z_statmap": _o("statmap", ".nii.gz", "z_statmap", on_grid=True, space=SPACE, stat="z", desc="anomaly"),
    "clusters_dseg": _o("dseg", ".nii.gz", "clusters_dseg", on_grid=True, space=SPACE, desc="clusters"),
    "clusters_lookup": _o("dseg", ".tsv", on_grid=True, space=SPACE, desc="clusters"),  # shares the dseg's sidecar
    "clusters_table": _o("table", ".tsv", "clusters_table", space=SPACE, desc="clusters"),
    "anomaly_statmap_T1w": _o("statmap", ".nii.gz", "anomaly_statmap_T1w", space="T1w", desc="anomaly"),
    "z_statmap_T1w": _o("statmap", ".nii.gz", "z_statmap_T1w", space="T1w", stat="z", desc="anomaly"),
    "clusters_dseg_T1w": _o("dseg", ".nii.gz", "clusters_dseg_T1w", space="T1w", desc="clusters"),
    "clusters_lookup_T1w": _o("dseg", ".tsv", space="T1w", desc="clusters"),
    "clusters_table_T1w": _o("table", ".tsv", "clusters_table_T1w", space="T1w", desc="clusters"),
    "lobes_probabilities": _o("probabilities", ".tsv", "lobes_probabilities", desc="lobes"),
    "xfm_T1w_to_template": _o("xfm", ".mat", "xfm_affine", from_="T1w", to=SPACE, mode="image"),
    "xfm_T1w_to_template_warp": _o("xfm", ".nii.gz", "xfm_warp", when="warp", from_="T1w", to=SPACE, mode="image",
                                   desc="warp"),
    "xfm_FLAIR_to_T1w": _o("xfm", ".mat", "xfm_affine", from_="FLAIR", to="T1w", mode="image"),
    "report": _o("", ".html"),
    "report_pdf": _o("report", ".pdf", datatype="figures"),
    "figure_clusters": _o("FLAIR", ".png", datatype="figures", desc="clusters"),
    "figure_glassbrain": _o("statmap", ".png", datatype="figures", desc="glassbrain"),
    "figure_lobes": _o("probabilities", ".svg", datatype="figures", desc="lobes"),
    "figure_registration": _o("T1w", ".svg", datatype="figures", desc="registration"),
    "figure_brainmask": _o("FLAIR", ".svg", datatype="figures", desc="brainmask"),
    "config": _o("config", ".json", datatype="log"),
    "manifest": _o("manifest", ".json", datatype="log"),
    "crash": _o("crash", ".json", datatype="log", when="failure"),
}
#: Dataset-level files of a participant run (the viewer's ``assets/`` are listed by the reports).
DATASET_FILES = (".bidsignore", "dataset_description.json")


def participant_prefix(subject: str, session: str | None) -> str:
    """``sub-<label>[_ses-<s>]``, the start of every participant file name."""
    return f"sub-{subject}" + (f"_ses-{session}" if session else "")


def output_path(root: Path, subject: str, session: str | None, role: str, res: str | None = None) -> Path:
    """The path of one registered output (:data:`OUTPUTS`) of a participant.

    Args:
        res: the model grid's ``res-`` label (:func:`res_label`), used by ``on_grid`` outputs.
    """
    try:
        o = OUTPUTS[role]
    except KeyError:
        raise ValueError(f"unknown output role {role!r}; the roles are {', '.join(OUTPUTS)}") from None
    if not o.suffix:
        return Path(root) / (participant_prefix(subject, session) + o.extension)
    ents: dict[str, str | None] = dict(o.entities)
    if o.on_grid:
        ents["res"] = res
    return derivative_path(root, subject, session, o.suffix, o.extension, datatype=o.datatype,
                           **{("from_" if k == "from" else k): v for k, v in ents.items()})


def output_paths(root: Path, subject: str, session: str | None, roles: tuple[str, ...] | list[str],
                 res: str | None = None) -> dict[str, Path]:
    """:func:`output_path` for several roles, by role."""
    return {r: output_path(root, subject, session, r, res) for r in roles}


def expected_outputs(subject: str, session: str | None, res: str | None, *, warp: bool = True) -> list[str]:
    """Every file a successful participant run writes for one participant, relative to OUTPUT_DIR
    (POSIX), sorted: the registered outputs, their JSON sidecars, nothing else.

    Args:
        warp: the registration was deformable (writes the warp field).
    """
    out: list[str] = []
    for role, o in OUTPUTS.items():
        if o.when == "failure" or (o.when == "warp" and not warp):
            continue
        p = output_path(Path("."), subject, session, role, res)
        out.append(p.as_posix())
        if o.sidecar is not None:
            out.append(sidecar_path(p).as_posix())
    return sorted(out)


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
