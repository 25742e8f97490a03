"""The participant level: for each participant, preprocessing → method → derivatives.

The only place that knows the order of the stages. Each participant runs in isolation: an
error is logged with the participant and the file, its partial outputs are removed, and the
others go on; the exit code is non-zero when any failed.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from bids_fcd import __version__
from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import InputError, SubjectInputs, find_inputs, open_layout, read_filter_file, subject_sessions
from bids_fcd.bids.participants import read_participants
from bids_fcd.config import LOBES, PostConfig, RunConfig, to_dict
from bids_fcd.nets.checkpoint import LoadedModel, load_model
from bids_fcd.postprocessing.clusters import TABLE_COLUMNS
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.preprocessing.pipeline import Preprocessed, PreprocessingError, preprocess, to_native
from bids_fcd.reports.participant import slice_figure, write_report
from bids_fcd.workflows.analysis import Analysis, analyse
from bids_fcd.workflows.reference import LoadedReference, load_reference

log = logging.getLogger(__name__)
SPACE = deriv.SPACE


def _post(cfg: RunConfig) -> PostConfig:
    """The resolved cluster settings (run_participant_level fills ``cfg.post`` from the model)."""
    return cfg.post if cfg.post is not None else PostConfig()


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(name)


def work_dir_for(output_dir: str, work_dir: str | None) -> Path:
    """``--work-dir`` or ``OUTPUT_DIR/../bids-fcd-work`` (never inside the input dataset)."""
    if work_dir:
        return Path(work_dir)
    return Path(output_dir).resolve().parent / "bids-fcd-work"


@dataclass
class ParticipantResult:
    """What happened to one participant/session."""

    prefix: str
    ok: bool
    message: str = ""
    seconds: float = 0.0


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _nifti(arr: np.ndarray, affine: np.ndarray, dtype: type) -> nib.Nifti1Image:
    img = nib.Nifti1Image(arr.astype(dtype), affine)
    img.set_qform(affine, code=4)  # 4 = MNI152 (template space)
    img.set_sform(affine, code=4)
    return img


def _z_description(post: PostConfig, ref: LoadedReference | None) -> dict[str, Any]:
    """Sidecar fields of the z-map: how it was scored and against which reference."""
    if post.zscore != "normative" or ref is None:
        return {"Description": "Anomaly map z-scored within the brain mask (the paper's z; no normative reference)"}
    return {"Description": "Anomaly map z-scored voxelwise against a normative reference of controls: "
                           "(anomaly - reference median) / reference robust SD, inside the reference's coverage",
            "Reference": {"Path": ref.path.name if ref.path.name != "reference" else f"{ref.path.parent.name}/reference",
                          "SHA256": ref.sha256, "NumberOfControls": ref.ref.n,
                          "AgeRange": ref.meta.get("age_range"), "Dataset": ref.meta.get("dataset")}}


def write_outputs(stage: Path, inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, pre: Preprocessed,
                  res: Analysis, stack: np.ndarray, ref: LoadedReference | None = None) -> list[Path]:
    """Write every derivative of one participant under ``stage`` (paths relative like OUTPUT_DIR)."""
    grid = model.net.grid
    aff, _ = grid_affine(grid)
    bids_dir = Path(cfg.bids_dir)
    src = {k: deriv.bids_uri(p, bids_dir) for k, p in (("t1w", inp.t1w), ("flair", inp.flair))}
    s = cfg.sampler
    common: dict[str, Any] = {
        "SoftwareVersion": __version__,
        "Model": {"Name": model.name, "SHA256": model.sha256},
        "Sampler": {"Encoding": s.encoding, "NoiseLevel": s.noise_level, "Steps": s.steps or s.noise_level,
                    "Draws": s.draws if s.encoding == "stochastic" else 1, "GuidanceScale": s.guidance_scale,
                    "Seed": s.seed, "HistogramMatching": s.histogram_matching},
    }
    grid_info = {"Resolution": f"{grid.spacing_mm:g} mm isotropic model grid, {grid.shape[1]}x{grid.shape[0]} axial"}
    written: list[Path] = []

    def path(suffix: str, ext: str, datatype: str = "anat", **ents: str | None) -> Path:
        return deriv.derivative_path(stage, inp.subject, inp.session, suffix, ext, datatype=datatype, **ents)

    def put_nii(p: Path, img: nib.Nifti1Image, meta: dict[str, Any]) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        nib.save(img, p)
        deriv.write_json(deriv.sidecar_path(p), {**meta, **common})
        written.extend([p, deriv.sidecar_path(p)])

    real_t1, real_fl = from_slices(stack[:, 1]), from_slices(stack[:, 0])
    mask = np.asarray(nib.load(pre.mask).get_fdata()) > 0.5
    both = [src["t1w"], src["flair"]]
    put_nii(path("T1w", ".nii.gz", space=SPACE, desc="preproc"), _nifti(real_t1, aff, np.float32),
            {"Description": f"T1w: N4, {cfg.preproc.registration} to template, skull-stripped, brain percentiles "
                            f"{cfg.preproc.normalise_percentiles} mapped to -1 and 0.6 (no upper clipping)",
             "Sources": [src["t1w"]], "SkullStripped": True, **grid_info})
    put_nii(path("FLAIR", ".nii.gz", space=SPACE, desc="preproc"), _nifti(real_fl, aff, np.float32),
            {"Description": f"FLAIR: N4, rigid to T1w, {cfg.preproc.registration} to template, skull-stripped, "
                            f"brain percentiles {cfg.preproc.normalise_percentiles} mapped to -1 and 0.6",
             "Sources": [src["flair"], src["t1w"]], "SkullStripped": True, **grid_info})
    put_nii(path("mask", ".nii.gz", space=SPACE, desc="brain"), _nifti(mask, aff, np.uint8),
            {"Description": "deepbet brain mask of the T1w", "Sources": [src["t1w"]], "Type": "Brain", **grid_info})
    put_nii(path("FLAIR", ".nii.gz", space=SPACE, desc="pseudohealthy"), _nifti(res.pseudo, aff, np.float32),
            {"Description": f"Pseudo-healthy FLAIR: {s.encoding} encoding to L, healthy-guided DDIM to 0, masked "
                            "histogram matching to the real FLAIR", "Sources": both, "SkullStripped": True, **grid_info})
    put_nii(path("statmap", ".nii.gz", space=SPACE, desc="anomaly"), _nifti(res.anomaly, aff, np.float32),
            {"Description": ("FLAIR - pseudo-healthy FLAIR (signed; FCD is hyperintense)" if _post(cfg).anomaly ==
                             "signed" else "|FLAIR - pseudo-healthy FLAIR|") + " in the brain mask, smoothed",
             "SmoothingFWHMmm": _post(cfg).smoothing_fwhm_mm, "Sources": both, "SkullStripped": True, **grid_info})
    native = to_native(res.anomaly, grid, pre)
    put_nii(path("statmap", ".nii.gz", space="T1w", desc="anomaly"), native,
            {"Description": "The anomaly map resampled to T1w native space (inverse template transforms)",
             "Sources": both, "SkullStripped": True})
    put_nii(path("statmap", ".nii.gz", space=SPACE, stat="z", desc="anomaly"), _nifti(res.z, aff, np.float32),
            {**_z_description(_post(cfg), ref), "Sources": both, "SkullStripped": True, **grid_info})
    put_nii(path("dseg", ".nii.gz", space=SPACE, desc="clusters"), _nifti(res.labels, aff, np.int16),
            {"Description": "Clusters of z > threshold, labelled by rank (1 = highest peak z)",
             "Threshold": _post(cfg).z_threshold, "MinClusterSizemm3": _post(cfg).min_cluster_mm3, "Sources": both,
             **grid_info})
    table = path("table", ".tsv", desc="clusters")
    _write_tsv(table, [c.row() for c in res.clusters], TABLE_COLUMNS)
    deriv.write_json(deriv.sidecar_path(table), {
        "Description": "One row per cluster, ranked by peak z; coordinates in MNI152NLin2009aSym mm",
        "Threshold": _post(cfg).z_threshold, "Sources": both, **common,
        "peak_z_mm": {"Description": "z coordinate (mm) of the peak; peak_z is the z-statistic"}})
    probs = path("probabilities", ".tsv", desc="lobes")
    _write_tsv(probs, [{"lobe": k, "probability": f"{res.lobe_probabilities[k]:.6f}"} for k in LOBES],
               ("lobe", "probability"))
    deriv.write_json(deriv.sidecar_path(probs), {
        "Description": "Lobe classifier C(c | FLAIR, t=0) aggregated over slices: max over slices per lobe, "
                       "min over slices for healthy, normalised to sum to 1", "Sources": [src["flair"]], **common})
    written += [table, deriv.sidecar_path(table), probs, deriv.sidecar_path(probs)]
    xfms: list[tuple[str, str, Path, list[str], str, str | None]] = [
        ("T1w", SPACE, pre.xfm_t1w_to_template, [src["t1w"]], ".mat", None),
        ("FLAIR", "T1w", pre.xfm_flair_to_t1w, [src["flair"], src["t1w"]], ".mat", None)]
    if pre.warp_t1w_to_template is not None:
        xfms.append(("T1w", SPACE, pre.warp_t1w_to_template, [src["t1w"]], ".nii.gz", "warp"))
    for frm, to, f, xsrc, ext, desc in xfms:
        p = path("xfm", ext, from_=frm, to=to, mode="image", desc=desc)
        shutil.copyfile(f, p)
        what = ("ANTs SyN displacement field, applied before the affine of the same name (antsApplyTransforms "
                "order: warp, then .mat)" if desc == "warp" else f"ANTs affine transform {frm} -> {to}")
        deriv.write_json(deriv.sidecar_path(p), {"Description": what, "Sources": xsrc, **common})
        written += [p, deriv.sidecar_path(p)]
    cfg_path = path("config", ".json", datatype="log")
    deriv.write_json(cfg_path, {"run": to_dict(cfg), "model": {"name": model.name, "sha256": model.sha256,
                                "net": to_dict(model.net)}, "inputs": {k: str(v) for k, v in
                                (("t1w", inp.t1w), ("flair", inp.flair), ("roi", inp.roi))}})
    written.append(cfg_path)
    figs = []
    order = [int(np.argmax((res.labels == c.index).sum(axis=(0, 1)))) for c in res.clusters[:3]]
    order = order or [res.z.shape[2] // 2]
    for i, k in enumerate(order):
        cap = f"cluster {i + 1}, axial slice {k}" if res.clusters else f"axial slice {k}"
        figs.append((cap, slice_figure(real_fl, res.pseudo, res.z, res.labels, k, _post(cfg).z_threshold)))
    report = path("report", ".html", datatype="figures")
    write_report(report, f"bids-fcd: {inp.prefix}", figs, [c.row() for c in res.clusters], res.lobe_probabilities,
                 {"model": f"{model.name} ({model.sha256[:12]})", **common["Sampler"]})
    written.append(report)
    return written


def run_one(inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, device: torch.device,
            ref: LoadedReference | None = None) -> ParticipantResult:
    """Preprocess, analyse and write one participant; never raises for bad input."""
    start = time.time()
    out_dir = Path(cfg.output_dir)
    stage = out_dir / ".staging" / inp.prefix
    try:
        shutil.rmtree(stage, ignore_errors=True)
        work = work_dir_for(cfg.output_dir, cfg.work_dir) / inp.prefix
        pre = preprocess(inp.t1w, inp.flair, inp.roi, work, model.net.grid, cfg.preproc)
        stack, mask = pre.slices()
        res = analyse(model, stack, mask, cfg.sampler, _post(cfg), device, ref.ref if ref is not None else None)
        written = write_outputs(stage, inp, cfg, model, pre, res, stack, ref)
        for p in written:
            dst = out_dir / p.relative_to(stage)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dst)
        log.info("%s: done, %d clusters, top lobe %s (%.0f s)", inp.prefix, len(res.clusters),
                 max(res.lobe_probabilities, key=lambda k: res.lobe_probabilities[k]), time.time() - start)
        return ParticipantResult(inp.prefix, True, seconds=time.time() - start)
    except (PreprocessingError, InputError, ValueError, OSError, RuntimeError) as exc:
        log.error("%s failed: %s", inp.prefix, exc)
        log.debug("traceback", exc_info=True)
        return ParticipantResult(inp.prefix, False, str(exc), time.time() - start)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if (out_dir / ".staging").exists() and not any((out_dir / ".staging").iterdir()):
            (out_dir / ".staging").rmdir()


def resolve_reference(cfg: RunConfig, model: LoadedModel) -> tuple[LoadedReference | None, PostConfig]:
    """The normative reference (``--reference`` or the model's own) and the resolved post setting.

    Precedence for the cluster setting: the user's flags (``cfg.post``), then the setting calibrated
    on the reference, then the model's. Without any reference the z-map falls back to within-brain
    scoring, with a warning. A reference built with other sampler settings is used with a warning.
    """
    ref_dir = Path(cfg.reference) if cfg.reference else model.reference_dir
    ref = load_reference(ref_dir) if ref_dir is not None else None
    post = cfg.post or (ref.post if ref is not None and ref.post is not None else model.post)
    if post.zscore == "normative" and ref is None:
        log.warning("model %s has no normative reference and --reference was not given: z-scoring within the "
                    "brain instead (rim and sulcal residuals can outrank lesions; build one with "
                    "`bids-fcd reference`)", model.name)
        post = dataclasses.replace(post, zscore="within")
    if ref is not None and post.zscore == "normative":
        built = ref.meta.get("sampler", {})
        now = to_dict(cfg.sampler)
        differ = sorted(k for k in ("encoding", "noise_level", "steps", "draws", "guidance_scale", "histogram_matching")
                        if k in built and built[k] != now.get(k))
        if differ:
            log.warning("the reference %s was built with other sampler settings (%s); its z-scores and calibrated "
                        "clusters may not hold: build a reference with these settings", ref.path, ", ".join(differ))
        rpost = ref.meta.get("post", {})
        if rpost and (rpost.get("smoothing_fwhm_mm"), rpost.get("anomaly")) != (post.smoothing_fwhm_mm, post.anomaly):
            log.warning("the reference %s was built for another anomaly map (smoothing %s mm, %s)", ref.path,
                        rpost.get("smoothing_fwhm_mm"), rpost.get("anomaly"))
    return ref, post


def check_output_not_in_input(bids_dir: Path, out_dir: Path, work_dir: Path) -> None:
    """Refuse output or work directories inside the input dataset."""
    b = bids_dir.resolve()
    for what, p in (("output", out_dir), ("work", work_dir)):
        r = p.resolve()
        if r == b or b in r.parents:
            raise InputError(f"the {what} directory {p} is inside the input BIDS dataset {bids_dir}; "
                             "choose a directory outside it (bids-fcd never writes into the input)")


def run_participant_level(cfg: RunConfig) -> int:
    """Run every selected participant; returns the exit code (0 all ok, 1 any failed)."""
    bids_dir, out_dir = Path(cfg.bids_dir), Path(cfg.output_dir)
    work = work_dir_for(cfg.output_dir, cfg.work_dir)
    check_output_not_in_input(bids_dir, out_dir, work)
    device = resolve_device(cfg.device)
    torch.set_num_threads(max(1, cfg.nprocs if cfg.nprocs > 0 else (os.cpu_count() or 1)))
    layout = open_layout(bids_dir, validate=not cfg.skip_bids_validation, database_dir=None)
    filters = read_filter_file(Path(cfg.bids_filter_file) if cfg.bids_filter_file else None)
    subjects = list(cfg.participant_label) or sorted(layout.get_subjects())
    missing = [s for s in subjects if s not in layout.get_subjects()]
    model = load_model(cfg.model, device)
    ref, post = resolve_reference(cfg, model)
    cfg = dataclasses.replace(cfg, post=post)
    log.info("z-map: %s%s; clusters: z > %g, at least %g mm3", post.zscore,
             f" against {ref.path} ({ref.ref.n} controls)" if ref is not None else "", post.z_threshold,
             post.min_cluster_mm3)
    deriv.write_dataset_files(out_dir, bids_dir)
    read_participants(bids_dir)  # fail early on a malformed participants.tsv
    results: list[ParticipantResult] = []
    for s in missing:
        log.error("sub-%s: not found in %s (check --participant-label)", s, bids_dir)
        results.append(ParticipantResult(f"sub-{s}", False, "participant not found"))
    for subject in [s for s in subjects if s not in missing]:
        for session in subject_sessions(layout, subject, cfg.session_label):
            prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
            try:
                inp = find_inputs(layout, subject, session, filters)
            except InputError as exc:
                log.error("%s", exc)
                results.append(ParticipantResult(prefix, False, str(exc)))
                continue
            log.info("%s: T1w %s, FLAIR %s", prefix, inp.t1w.name, inp.flair.name)
            results.append(run_one(inp, cfg, model, device, ref))
    failed = [r for r in results if not r.ok]
    log.info("participant level: %d ok, %d failed", len(results) - len(failed), len(failed))
    for r in failed:
        log.error("  %s: %s", r.prefix, r.message)
    return 1 if failed or not results else 0
