"""The normative reference as an artefact beside the model format: file names, save, load, its place in a model.

A reference directory holds ``reference.nii.gz`` (4D float32 on the model grid: coverage, then
mean and SD of each named map) and ``reference.json`` (how it was built: the controls, their
number and ages, the sampler and post-processing settings it is valid for, the cluster setting
calibrated on it, the sha256 of the networks it was built with). A model keeps its own in
``<model>/reference/``, listed in the model's SHA256SUMS (:func:`bids_fcd.nets.checkpoint.write_sums`).
``bids-fcd reference`` (:mod:`bids_fcd.workflows.reference`) builds one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_fcd.config import PostConfig, SamplerConfig, from_dict, to_dict
from bids_fcd.io import sha256_file, write_json, write_nifti
from bids_fcd.nets.locate import ModelError
from bids_fcd.postprocessing.normative import NormativeReference, ReferenceParams

log = logging.getLogger(__name__)

#: The files of a reference directory: the 4D image and its record.
REFERENCE_IMAGE, REFERENCE_RECORD = "reference.nii.gz", "reference.json"
REFERENCE_FILES = (REFERENCE_IMAGE, REFERENCE_RECORD)
#: The folder inside a model directory that holds the model's own reference.
REFERENCE_DIR = "reference"
#: The sampler settings that change the pseudo-healthy volumes a reference's statistics were built from.
SAMPLER_KEYS = ("encoding", "noise_level", "steps", "draws", "guidance_scale", "histogram_matching", "second_look",
                "t1_condition")
#: The second look's own settings: compared only when the second look is on both in the record and now
#: (when it is on in only one, ``second_look`` itself differs).
LOOK_KEYS = ("look_z", "look_dilate_mm", "look_noise_level", "look_steps", "look_draws", "look_t1", "look_shrink")
#: What a record written before a setting existed was built with.
SAMPLER_LEGACY = {"second_look": "off", "t1_condition": "native"}
#: What a record's post setting written before a setting existed was built with.
POST_LEGACY = {"drift_source": "self", "asymmetry_weight": 0.0}
#: Post-processing settings that make the maps a reference holds statistics of: a run scored against the
#: reference takes them from its record even when the user sets cluster flags.
REFERENCE_MAP_FIELDS = ("drift_source", "drift_block_mm", "drift_cut_sd", "restandardise", "flair_weight",
                        "asymmetry_weight")


@dataclass
class LoadedReference:
    """A reference read from disk; ``post`` is the cluster setting calibrated on it (or None)."""

    path: Path
    sha256: str
    ref: NormativeReference
    meta: dict[str, Any]
    post: PostConfig | None


def model_reference_dir(model_dir: Path) -> Path | None:
    """``<model>/reference`` when the model has its own reference, else None."""
    d = model_dir / REFERENCE_DIR
    return d if (d / REFERENCE_RECORD).exists() else None


def model_holding(ref_dir: Path) -> Path | None:
    """The model directory a reference directory lies in (``<model>/reference``), else None."""
    host = ref_dir.parent
    if ref_dir.name == REFERENCE_DIR and (host / "SHA256SUMS").exists() and (host / "config.json").exists():
        return host
    return None


def reference_label(ref_dir: Path) -> str:
    """How sidecars name a reference: ``<model>/reference`` for a model's own, else the folder's name."""
    return f"{ref_dir.parent.name}/{REFERENCE_DIR}" if ref_dir.name == REFERENCE_DIR else ref_dir.name


def save_reference(out_dir: Path, ref: NormativeReference, affine: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``reference.nii.gz`` + ``reference.json`` into ``out_dir`` (created); returns ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(ref.stats)
    vols = [ref.coverage.astype(np.float32)]
    for name in names:
        vols += [ref.stats[name][0], ref.stats[name][1]]
    write_nifti(out_dir / REFERENCE_IMAGE, nib.Nifti1Image(np.stack(vols, axis=-1).astype(np.float32), affine))
    record = {"format": 1, "volumes": ["coverage"] + [f"{n}_{s}" for n in names for s in ("mean", "sd")],
              "n_controls": ref.n, "params": to_dict(ref.params), **meta}
    write_json(out_dir / REFERENCE_RECORD, record)
    return out_dir


def load_reference(path: Path) -> LoadedReference:
    """Read a reference directory; raises :class:`ModelError` naming the file that is wrong."""
    nii, js = path / REFERENCE_IMAGE, path / REFERENCE_RECORD
    for f in (nii, js):
        if not f.exists():
            raise ModelError(f"{f} is missing; a reference directory holds {' and '.join(REFERENCE_FILES)} "
                             "(build one with `bids-fcd reference`)")
    try:
        meta = json.loads(js.read_text())
        data = np.asarray(nib.load(nii).dataobj, np.float32)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the reference ({exc})") from exc
    vols = meta.get("volumes", [])
    if data.ndim != 4 or data.shape[-1] != len(vols) or not vols or vols[0] != "coverage":
        raise ModelError(f"{nii}: expected a 4D image with volumes {vols} as listed in {REFERENCE_RECORD}")
    stats = {}
    for i in range(1, len(vols), 2):
        name = vols[i].rsplit("_", 1)[0]
        stats[name] = (data[..., i], data[..., i + 1])
    params = from_dict(ReferenceParams, meta.get("params", {}))
    ref = NormativeReference(data[..., 0] > 0.5, stats, int(meta.get("n_controls", 0)), params)
    # a record from before the drift source (or the asymmetry map) was a setting was built with each map's own
    # block medians (and without the asymmetry map)
    post = from_dict(PostConfig, {**POST_LEGACY, **meta["post"]}) if "post" in meta else None
    sha = sha256_file(nii)
    log.info("normative reference %s: %d controls (%s)", path, ref.n, sha[:12])
    return LoadedReference(path, sha, ref, meta, post)


def sampler_differences(meta: dict[str, Any], sampler: SamplerConfig) -> list[str]:
    """The :data:`SAMPLER_KEYS` (and, when both sides have the second look on, :data:`LOOK_KEYS`) in
    which ``sampler`` differs from the one a reference record (``meta``) was built with, sorted; keys the
    record lacks are not counted unless :data:`SAMPLER_LEGACY` says what they were."""
    built = SAMPLER_LEGACY | meta.get("sampler", {})
    now = to_dict(sampler)
    keys = SAMPLER_KEYS + (LOOK_KEYS if "off" not in (built.get("second_look"), now.get("second_look")) else ())
    return sorted(k for k in keys if k in built and built[k] != now.get(k))
