"""The participant level: for each participant, preprocessing → method → derivatives.

The only place that knows the order of the stages. Each participant runs in isolation: its
outputs are written under ``OUTPUT_DIR/.staging/<prefix>`` and moved into place only when all
are written, a manifest (sha256 per file) is written last, and a rerun skips participants whose
manifest verifies (``--overwrite`` recomputes). An error is logged with the participant and the
file, recorded under ``sub-<label>/log/`` (the crash record), its partial outputs are removed,
and the others go on; the exit code is non-zero when any failed.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
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
from bids_fcd.nets.checkpoint import LoadedModel, ModelError, load_model, sha256_file
from bids_fcd.postprocessing.clusters import NATIVE_COLUMNS, TABLE_COLUMNS, clusters_in
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.preprocessing.pipeline import Preprocessed, PreprocessingError, preprocess, to_native
from bids_fcd.resources import apply_threads, resolve_device, resolve_threads
from bids_fcd.timing import stage as timed
from bids_fcd.workflows.analysis import Analysis, analyse, resolve_sampler
from bids_fcd.workflows.paths import check_output_not_in_input, work_dir_for
from bids_fcd.workflows.reference import LoadedReference, load_reference

log = logging.getLogger(__name__)
SPACE = deriv.SPACE
#: Errors of one participant that must not stop the others (anything else is a bug and propagates).
PARTICIPANT_ERRORS = (PreprocessingError, InputError, ValueError, OSError, RuntimeError, MemoryError, EOFError)


def _post(cfg: RunConfig) -> PostConfig:
    """The resolved cluster settings (run_participant_level fills ``cfg.post`` from the model)."""
    return cfg.post if cfg.post is not None else PostConfig()


@dataclass
class ParticipantResult:
    """What happened to one participant/session."""

    prefix: str
    ok: bool
    message: str = ""
    seconds: float = 0.0


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> None:
    with deriv.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _nifti(arr: np.ndarray, affine: np.ndarray, dtype: type) -> nib.Nifti1Image:
    img = nib.Nifti1Image(arr.astype(dtype), affine)
    img.set_qform(affine, code=4)  # 4 = MNI152 (template space)
    img.set_sform(affine, code=4)
    return img


def _native_image(img: nib.Nifti1Image, dtype: type) -> nib.Nifti1Image:
    """A T1w-space image cast to ``dtype`` with the T1w's own affine as qform and sform (scanner)."""
    out = nib.Nifti1Image(np.asarray(img.get_fdata()).astype(dtype), img.affine)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    return out


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
    """Write every derivative of one participant under ``stage`` (paths relative like OUTPUT_DIR).

    Template-space maps carry ``space-MNI152NLin2009aSym`` and ``res-<mm>`` (the model grid is not
    the template's 1 mm); the z-map, anomaly map and clusters are also written in T1w space.
    Sidecar texts come from :data:`bids_fcd.bids.derivatives.SIDECARS`.
    """
    grid = model.net.grid
    post = _post(cfg)
    aff, _ = grid_affine(grid)
    res_ent = deriv.res_label(grid.spacing_mm)
    bids_dir = Path(cfg.bids_dir)
    src = {k: deriv.bids_uri(p, bids_dir) for k, p in (("t1w", inp.t1w), ("flair", inp.flair))}
    both = [src["t1w"], src["flair"]]
    s = cfg.sampler
    common: dict[str, Any] = {
        "SoftwareVersion": __version__,
        "Model": {"Name": model.name, "SHA256": model.sha256},
        "Sampler": {"Encoding": s.encoding, "NoiseLevel": s.noise_level, "Steps": s.steps or s.noise_level,
                    "Draws": s.draws if s.encoding == "stochastic" else 1, "GuidanceScale": s.guidance_scale,
                    "Seed": s.seed, "HistogramMatching": s.histogram_matching},
    }
    grid_info = {"Resolution": f"{grid.spacing_mm:g} mm isotropic model grid, {grid.shape[1]}x{grid.shape[0]} axial, "
                               f"MNI z {grid.z_min_mm:g} to {grid.z_max_mm:g} mm"}
    fill = {"registration": cfg.preproc.registration, "space": SPACE, "encoding": s.encoding,
            "percentiles": tuple(cfg.preproc.normalise_percentiles),
            "anomaly": ("FLAIR - pseudo-healthy FLAIR (signed; FCD is hyperintense)" if post.anomaly == "signed"
                        else "|FLAIR - pseudo-healthy FLAIR|")}
    written: list[Path] = []

    def path(suffix: str, ext: str, datatype: str = "anat", **ents: str | None) -> Path:
        if ents.get("space") == SPACE and (ext == ".nii.gz" or suffix == "dseg"):
            ents = {**ents, "res": res_ent}
        return deriv.derivative_path(stage, inp.subject, inp.session, suffix, ext, datatype=datatype, **ents)

    def side(p: Path, kind: str, sources: list[str], extra: dict[str, Any] | None = None) -> None:
        meta = {**deriv.sidecar(kind, **fill), **(extra or {}), "Sources": sources, **common}
        if f"space-{SPACE}_res-" in p.name or (res_ent is None and f"space-{SPACE}" in p.name):
            meta.update(grid_info)
        deriv.write_json(deriv.sidecar_path(p), meta)
        written.extend([p, deriv.sidecar_path(p)])

    def put_nii(p: Path, img: nib.Nifti1Image, kind: str, sources: list[str], extra: dict[str, Any] | None = None) -> None:
        with deriv.atomic_path(p) as tmp:
            nib.save(img, tmp)
        side(p, kind, sources, extra)

    def put_table(p: Path, rows: list[dict[str, Any]], columns: tuple[str, ...], kind: str, sources: list[str],
                  extra: dict[str, Any] | None = None) -> None:
        _write_tsv(p, rows, columns)
        side(p, kind, sources, extra)

    def put_lookup(p: Path, rows: list[dict[str, Any]]) -> None:
        """The dseg's lookup table; it shares the dseg image's sidecar (BIDS), so it has none of its own."""
        _write_tsv(p, rows, ("index", "name"))
        written.append(p)

    real_t1, real_fl = from_slices(stack[:, 1]), from_slices(stack[:, 0])
    mask = np.asarray(nib.load(pre.mask).get_fdata()) > 0.5
    put_nii(path("T1w", ".nii.gz", space=SPACE, desc="preproc"), _nifti(real_t1, aff, np.float32), "preproc_T1w",
            [src["t1w"]])
    put_nii(path("FLAIR", ".nii.gz", space=SPACE, desc="preproc"), _nifti(real_fl, aff, np.float32), "preproc_FLAIR",
            both)
    put_nii(path("mask", ".nii.gz", space=SPACE, desc="brain"), _nifti(mask, aff, np.uint8), "brain_mask",
            [src["t1w"]])
    put_nii(path("FLAIR", ".nii.gz", space=SPACE, desc="pseudohealthy"), _nifti(res.pseudo, aff, np.float32),
            "pseudohealthy_FLAIR", both)
    put_nii(path("statmap", ".nii.gz", space=SPACE, desc="anomaly"), _nifti(res.anomaly, aff, np.float32),
            "anomaly_statmap", both, {"SmoothingFWHMmm": post.smoothing_fwhm_mm})
    put_nii(path("statmap", ".nii.gz", space=SPACE, stat="z", desc="anomaly"), _nifti(res.z, aff, np.float32),
            "z_statmap", both, _z_description(post, ref))
    cluster_meta = {"Threshold": post.z_threshold, "MinClusterSizemm3": post.min_cluster_mm3}
    dseg_meta = {**cluster_meta, **deriv.COLUMNS["clusters_lookup"]}  # the lookup TSV shares this sidecar
    put_nii(path("dseg", ".nii.gz", space=SPACE, desc="clusters"), _nifti(res.labels, aff, np.int16), "clusters_dseg",
            both, dseg_meta)
    lookup = [{"index": c.index, "name": f"cluster{c.index}"} for c in res.clusters]
    put_lookup(path("dseg", ".tsv", space=SPACE, desc="clusters"), lookup)
    put_table(path("table", ".tsv", space=SPACE, desc="clusters"), [c.row() for c in res.clusters], TABLE_COLUMNS,
              "clusters_table", both, cluster_meta)
    with timed("native_space"):
        native_anom = to_native(res.anomaly, grid, pre)
        native_z = to_native(res.z, grid, pre)
        native_lab = to_native(res.labels.astype(np.float32), grid, pre, interpolator="genericLabel")
    put_nii(path("statmap", ".nii.gz", space="T1w", desc="anomaly"), _native_image(native_anom, np.float32),
            "anomaly_statmap_T1w", both)
    put_nii(path("statmap", ".nii.gz", space="T1w", stat="z", desc="anomaly"), _native_image(native_z, np.float32),
            "z_statmap_T1w", both,
            {k: v for k, v in _z_description(post, ref).items() if k != "Description"})
    lab_img = _native_image(native_lab, np.int16)
    put_nii(path("dseg", ".nii.gz", space="T1w", desc="clusters"), lab_img, "clusters_dseg_T1w", both, dseg_meta)
    put_lookup(path("dseg", ".tsv", space="T1w", desc="clusters"), lookup)
    native_rows = clusters_in(np.asarray(lab_img.dataobj), np.asarray(native_z.get_fdata(), np.float32),
                              lab_img.affine)
    put_table(path("table", ".tsv", space="T1w", desc="clusters"), native_rows, NATIVE_COLUMNS, "clusters_table_T1w",
              both, cluster_meta)
    probs = path("probabilities", ".tsv", desc="lobes")
    put_table(probs, [{"lobe": k, "probability": f"{res.lobe_probabilities[k]:.6f}"} for k in LOBES],
              ("lobe", "probability"), "lobes_probabilities", [src["flair"]])
    xfms: list[tuple[str, str, Path, list[str], str, str | None]] = [
        ("T1w", SPACE, pre.xfm_t1w_to_template, [src["t1w"]], ".mat", None),
        ("FLAIR", "T1w", pre.xfm_flair_to_t1w, [src["flair"], src["t1w"]], ".mat", None)]
    if pre.warp_t1w_to_template is not None:
        xfms.append(("T1w", SPACE, pre.warp_t1w_to_template, [src["t1w"]], ".nii.gz", "warp"))
    for frm, to, f, xsrc, ext, desc in xfms:
        p = path("xfm", ext, from_=frm, to=to, mode="image", desc=desc)
        with deriv.atomic_path(p) as tmp:
            shutil.copyfile(f, tmp)
        fill.update(frm=frm, to=to)
        side(p, "xfm_warp" if desc == "warp" else "xfm_affine", xsrc)
    cfg_path = path("config", ".json", datatype="log")
    deriv.write_json(cfg_path, {"run": to_dict(cfg), "model": {"name": model.name, "sha256": model.sha256,
                                "net": to_dict(model.net)}, "inputs": {k: str(v) for k, v in
                                (("t1w", inp.t1w), ("flair", inp.flair), ("roi", inp.roi))}})
    written.append(cfg_path)
    report_rows = [{**c.row(), **{f"native_{k}": v for k, v in n.items() if k != "index"}}
                   for c, n in _pair_rows(res, native_rows)]
    written += _report(stage, inp, cfg, model, pre, res, stack, mask, report_rows, ref)
    return written


def _pair_rows(res: Analysis, native_rows: list[dict[str, object]]) -> list[tuple[Any, dict[str, object]]]:
    """Each template-space cluster with its T1w-space row (empty when it vanished in resampling)."""
    by_index = {int(str(r["index"])): r for r in native_rows}
    return [(c, by_index.get(c.index, {})) for c in res.clusters]


class ReportFailed(RuntimeError):
    """Making the HTML report failed; the derivatives are kept."""


def _report(stage: Path, inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, pre: Preprocessed, res: Analysis,
            stack: np.ndarray, mask: np.ndarray, rows: list[dict[str, object]],
            ref: LoadedReference | None) -> list[Path]:
    """The HTML report and its figures; a failure raises :class:`ReportFailed` after logging why."""
    post = _post(cfg)
    grid = model.net.grid
    roi = np.asarray(nib.load(pre.roi).get_fdata()) > 0.5 if pre.roi is not None else None
    reference = None if ref is None or post.zscore != "normative" else {
        "path": str(ref.path), "n": ref.ref.n, "age_range": ref.meta.get("age_range"),
        "dataset": ref.meta.get("dataset")}
    settings: dict[str, object] = {**{f"sampler.{k}": v for k, v in to_dict(cfg.sampler).items()},
                                   **{f"post.{k}": v for k, v in to_dict(post).items()},
                                   "registration": cfg.preproc.registration, "device": cfg.device}
    try:
        from bids_fcd.reports.participant import ReportInputs, write_participant_report

        data = ReportInputs(
            subject=inp.subject, session=inp.session, affine=grid_affine(grid)[0], t1w=from_slices(stack[:, 1]),
            flair=from_slices(stack[:, 0]), pseudo=res.pseudo, z=res.z, mask=mask, labels=res.labels, roi=roi,
            clusters=rows, lobe_probabilities=res.lobe_probabilities, z_threshold=post.z_threshold,
            min_cluster_mm3=post.min_cluster_mm3, model_name=model.name, model_sha256=model.sha256, model_dir=model.path,
            reference=reference, settings=settings)
        with timed("report"):
            return write_participant_report(stage, data)
    except Exception as exc:  # noqa: BLE001 - any report failure is logged and counted, never fatal
        log.debug("report traceback", exc_info=True)
        raise ReportFailed(f"{inp.prefix}: the HTML report could not be made ({type(exc).__name__}: {exc}); "
                          "the derivatives were written") from exc


def manifest_path(out_dir: Path, inp: SubjectInputs) -> Path:
    """``sub-<label>/[ses-<s>/]log/<prefix>_manifest.json``: sha256 of every output, written last."""
    return deriv.derivative_path(out_dir, inp.subject, inp.session, "manifest", ".json", datatype="log")


def crash_path(out_dir: Path, inp: SubjectInputs | tuple[str, str | None]) -> Path:
    """``sub-<label>/[ses-<s>/]log/<prefix>_crash.json``: why the last run of this participant failed."""
    subject, session = (inp.subject, inp.session) if isinstance(inp, SubjectInputs) else inp
    return deriv.derivative_path(out_dir, subject, session, "crash", ".json", datatype="log")


def settings_key(cfg: RunConfig, model: LoadedModel, ref: LoadedReference | None, inp: SubjectInputs) -> str:
    """sha256 of everything that changes a participant's outputs: inputs, settings, model, reference."""
    run = {k: v for k, v in to_dict(cfg).items() if k not in ("participant_label", "session_label", "overwrite",
                                                              "output_dir", "work_dir", "env")}
    blob = json.dumps([run, model.sha256, ref.sha256 if ref is not None else None,
                       [sha256_file(p) if p is not None else None for p in (inp.t1w, inp.flair, inp.roi)],
                       __version__], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


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


def _write_crash(out_dir: Path, who: SubjectInputs | tuple[str, str | None], message: str, tb: str = "") -> None:
    """The crash record (JSON) of a failed participant: the one-line message and the traceback; never raises."""
    subject, session = (who.subject, who.session) if isinstance(who, SubjectInputs) else who
    prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    try:
        deriv.write_json(crash_path(out_dir, (subject, session)), {
            "participant": prefix, "message": one_line(message), "traceback": tb, "software_version": __version__,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")})
    except OSError as exc:
        log.error("%s: could not write the crash record: %s", prefix, exc)


def one_line(message: str) -> str:
    """A message on one line (tools such as ANTs raise multi-line errors)."""
    return " ".join(message.split())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove ``folder/<pattern>`` entries named ``<name>.<pid>[.<anything>]`` whose process is gone
    (what a killed run left)."""
    for p in folder.glob(pattern) if folder.is_dir() else []:
        parts = p.name.split(".")
        pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if pid is not None and pid != os.getpid() and not _pid_alive(pid):
            log.info("removing %s, left by a run that was killed", p)
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def private_tmp(work: Path) -> Iterator[Path]:
    """A temporary directory of this process inside the work directory, used by Python's ``tempfile``
    (and so by antspyx) and by child processes (``TMPDIR``) while the block runs, removed after.

    Nothing is left in the system temporary directory, and two runs sharing a work directory
    use different folders.
    """
    work.mkdir(parents=True, exist_ok=True)
    remove_stale(work, "tmp.*")
    path = Path(tempfile.mkdtemp(prefix=f"tmp.{os.getpid()}.", dir=work))
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


def _publish(stage: Path, out_dir: Path, written: list[Path]) -> dict[str, str]:
    """Move the staged files into ``out_dir`` (rename, same file system) and return {relpath: sha256}."""
    staged = sorted(set(written))
    files = {p.relative_to(stage).as_posix(): sha256_file(p) for p in staged}
    for p in staged:
        dst = out_dir / p.relative_to(stage)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dst)
    return files


def run_one(inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, device: torch.device,
            ref: LoadedReference | None = None) -> ParticipantResult:
    """Preprocess, analyse and write one participant; never raises for bad input.

    Outputs are staged and moved into place together; the manifest is written last, so a run
    killed at any point leaves either the previous complete outputs or none that verify.
    """
    start = time.time()
    out_dir = Path(cfg.output_dir)
    stage = out_dir / ".staging" / f"{inp.prefix}.{os.getpid()}"
    key = settings_key(cfg, model, ref, inp)
    if not cfg.overwrite and outputs_complete(out_dir, inp, key):
        log.info("%s: outputs complete (manifest verified); skipped (use --overwrite to recompute)", inp.prefix)
        return ParticipantResult(inp.prefix, True, "skipped", 0.0)
    report_error: ReportFailed | None = None
    try:
        remove_stale(out_dir / ".staging", f"{inp.prefix}.*")
        shutil.rmtree(stage, ignore_errors=True)
        work = work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)
        with private_tmp(work):
            pre = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, model.net.grid, cfg.preproc)
            stack, mask = pre.slices()
            res = analyse(model, stack, mask, cfg.sampler, _post(cfg), device, ref.ref if ref is not None else None,
                          cfg.env.compile_nets)
            with timed("write"):
                try:
                    written = write_outputs(stage, inp, cfg, model, pre, res, stack, ref)
                except ReportFailed as exc:
                    report_error = exc
                    written = sorted(p for p in stage.rglob("*") if p.is_file() and ".tmp" not in p.name)
        manifest_path(out_dir, inp).unlink(missing_ok=True)  # the old outputs stop verifying from here on
        files = _publish(stage, out_dir, written)
        if report_error is not None:
            log.error("%s", report_error)
            _write_crash(out_dir, inp, str(report_error), "".join(traceback.format_exception(report_error)))
            return ParticipantResult(inp.prefix, False, str(report_error), time.time() - start)
        deriv.write_json(manifest_path(out_dir, inp), {"participant": inp.prefix, "settings_sha256": key,
                                                       "software_version": __version__, "files": files})
        crash_path(out_dir, inp).unlink(missing_ok=True)
        log.info("%s: done, %d clusters, top lobe %s (%.0f s)", inp.prefix, len(res.clusters),
                 max(res.lobe_probabilities, key=lambda k: res.lobe_probabilities[k]), time.time() - start)
        return ParticipantResult(inp.prefix, True, seconds=time.time() - start)
    except PARTICIPANT_ERRORS as exc:
        log.error("%s failed: %s", inp.prefix, one_line(str(exc)))
        log.debug("traceback", exc_info=True)
        _write_crash(out_dir, inp, str(exc), traceback.format_exc())
        return ParticipantResult(inp.prefix, False, str(exc), time.time() - start)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        try:
            (out_dir / ".staging").rmdir()  # only when empty; another process may still stage there
        except OSError:
            pass


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


def run_participant_level(cfg: RunConfig) -> int:
    """Run every selected participant; returns the exit code (0 all ok, 1 any failed).

    Order: cheap checks, threads and determinism, the model (verified against SHA256SUMS), the
    dataset index; only then is anything written.
    """
    bids_dir, out_dir = Path(cfg.bids_dir), Path(cfg.output_dir)
    work = work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)
    check_output_not_in_input(bids_dir, out_dir, work)
    device = resolve_device(cfg.device)
    threads = resolve_threads(cfg.nprocs, cfg.omp_nthreads)
    apply_threads(threads, cfg.ants_nthreads)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    log.info("device %s, %d CPU thread(s), %d for ANTs", device, threads, cfg.ants_nthreads)
    try:
        model = load_model(cfg.model, device, cfg.env.models_dir)
        ref, post = resolve_reference(dataclasses.replace(cfg, sampler=resolve_sampler(cfg.sampler, model)), model)
    except ModelError as exc:
        log.error("%s", exc)
        return 1
    cfg = dataclasses.replace(cfg, post=post, sampler=resolve_sampler(cfg.sampler, model))
    log.info("z-map: %s%s; clusters: z > %g, at least %g mm3", post.zscore,
             f" against {ref.path} ({ref.ref.n} controls)" if ref is not None else "", post.z_threshold,
             post.min_cluster_mm3)
    layout = open_layout(bids_dir, validate=not cfg.skip_bids_validation, database_dir=None)
    filters = read_filter_file(Path(cfg.bids_filter_file) if cfg.bids_filter_file else None)
    subjects = list(cfg.participant_label) or sorted(layout.get_subjects())
    missing = [s for s in subjects if s not in layout.get_subjects()]
    read_participants(bids_dir)  # fail early on a malformed participants.tsv
    deriv.write_dataset_files(out_dir, bids_dir, cfg.env)
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
                _write_crash(out_dir, (subject, session), str(exc))
                results.append(ParticipantResult(prefix, False, str(exc)))
                continue
            log.info("%s: T1w %s, FLAIR %s", prefix, inp.t1w.name, inp.flair.name)
            results.append(run_one(inp, cfg, model, device, ref))
    failed = [r for r in results if not r.ok]
    skipped = sum(r.message == "skipped" for r in results)
    log.info("participant level: %d ok (%d skipped as complete), %d failed", len(results) - len(failed), skipped,
             len(failed))
    for r in failed:
        log.error("  %s: %s", r.prefix, r.message)
    return 1 if failed or not results else 0
