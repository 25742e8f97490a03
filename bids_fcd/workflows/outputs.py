"""The output writers of one participant: every derivative, its sidecar and the HTML report.

:func:`write_outputs` writes under a staging folder (:mod:`bids_fcd.workflows.staging` moves it into
place); every name comes from the registry of outputs (:data:`bids_fcd.bids.derivatives.OUTPUTS`,
by role), sidecar texts from :data:`bids_fcd.bids.derivatives.SIDECARS`, and every file is written
atomically (:mod:`bids_fcd.io`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_fcd import __version__
from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import SubjectInputs
from bids_fcd.config import LOBES, PostConfig, RunConfig, to_dict
from bids_fcd.io import copy_file, write_json, write_nifti, write_tsv
from bids_fcd.nets.checkpoint import LoadedModel
from bids_fcd.nets.reference import LoadedReference, reference_label
from bids_fcd.postprocessing.clusters import NATIVE_COLUMNS, TABLE_COLUMNS, clusters_in
from bids_fcd.preprocessing.grid import from_slices, grid_affine
from bids_fcd.preprocessing.pipeline import Preprocessed, native_coordinates, to_native
from bids_fcd.timing import stage as timed
from bids_fcd.workflows.analysis import Analysis, map_weights

log = logging.getLogger(__name__)
SPACE = deriv.SPACE


def post_of(cfg: RunConfig) -> PostConfig:
    """The resolved cluster settings (run_participant_level fills ``cfg.post`` from the model)."""
    return cfg.post if cfg.post is not None else PostConfig()


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
    words = {"anomaly": "the anomaly", "flair": "the FLAIR",
             "asymmetry": f"the FLAIR's left-right asymmetry (weight {post.asymmetry_weight:g})"}
    maps = " and ".join(words[k] for k, w in map_weights(post).items() if w > 0)
    return {"Description": f"Combined z of {maps}, each z-scored voxelwise against a normative reference of "
                           "controls: (map - reference median) / reference robust SD, inside the reference's coverage",
            "Reference": {"Path": reference_label(ref.path),
                          "SHA256": ref.sha256, "NumberOfControls": ref.ref.n,
                          "AgeRange": ref.meta.get("age_range"), "Dataset": ref.meta.get("dataset")}}


def write_outputs(stage: Path, inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, pre: Preprocessed,
                  res: Analysis, stack: np.ndarray, ref: LoadedReference | None = None) -> list[Path]:
    """Write every derivative of one participant under ``stage`` (paths relative like OUTPUT_DIR).

    Template-space maps carry ``space-MNI152NLin2009aSym`` and ``res-<mm>`` (the model grid is not
    the template's 1 mm); the z-map, anomaly map and clusters are also written in T1w space.
    Names and sidecar kinds come from the registry of outputs (:data:`bids_fcd.bids.derivatives.OUTPUTS`).
    """
    grid = model.net.grid
    post = post_of(cfg)
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
                    "Seed": s.seed, "HistogramMatching": s.histogram_matching, "T1wCondition": s.t1_condition},
    }
    grid_info = {"Resolution": f"{grid.spacing_mm:g} mm isotropic model grid, {grid.shape[1]}x{grid.shape[0]} axial, "
                               f"MNI z {grid.z_min_mm:g} to {grid.z_max_mm:g} mm"}
    fill = {"registration": cfg.preproc.registration, "space": SPACE, "encoding": s.encoding,
            "percentiles": tuple(cfg.preproc.normalise_percentiles),
            "anomaly": ("FLAIR - pseudo-healthy FLAIR (signed; FCD is hyperintense)" if post.anomaly == "signed"
                        else "|FLAIR - pseudo-healthy FLAIR|")}
    written: list[Path] = []

    def path(role: str) -> Path:
        return deriv.output_path(stage, inp.subject, inp.session, role, res_ent)

    def side(p: Path, role: str, sources: list[str], extra: dict[str, Any] | None = None) -> None:
        o = deriv.OUTPUTS[role]
        assert o.sidecar is not None, role
        meta = {**deriv.sidecar(o.sidecar, **fill), **(extra or {}), "Sources": sources, **common}
        if o.on_grid:
            meta.update(grid_info)
        write_json(deriv.sidecar_path(p), meta)
        written.extend([p, deriv.sidecar_path(p)])

    def put_nii(role: str, img: nib.Nifti1Image, sources: list[str], extra: dict[str, Any] | None = None) -> None:
        p = path(role)
        write_nifti(p, img)
        side(p, role, sources, extra)

    def put_table(role: str, rows: list[dict[str, Any]], columns: tuple[str, ...], sources: list[str],
                  extra: dict[str, Any] | None = None) -> None:
        p = path(role)
        write_tsv(p, rows, columns)
        side(p, role, sources, extra)

    def put_lookup(role: str, rows: list[dict[str, Any]]) -> None:
        """The dseg's lookup table; it shares the dseg image's sidecar (BIDS), so it has none of its own."""
        p = path(role)
        write_tsv(p, rows, ("index", "name"))
        written.append(p)

    real_t1, real_fl = from_slices(stack[:, 1]), from_slices(stack[:, 0])
    mask = np.asarray(nib.load(pre.mask).get_fdata()) > 0.5
    put_nii("preproc_T1w", _nifti(real_t1, aff, np.float32), [src["t1w"]])
    put_nii("preproc_FLAIR", _nifti(real_fl, aff, np.float32), both)
    put_nii("brain_mask", _nifti(mask, aff, np.uint8), [src["t1w"]])
    put_nii("pseudohealthy_FLAIR", _nifti(res.pseudo, aff, np.float32), both)
    put_nii("anomaly_statmap", _nifti(res.anomaly, aff, np.float32), both,
            {"SmoothingFWHMmm": post.smoothing_fwhm_mm})
    put_nii("z_statmap", _nifti(res.z, aff, np.float32), both, _z_description(post, ref))
    cluster_meta = {"Threshold": post.z_threshold, "MinClusterSizemm3": post.min_cluster_mm3}
    dseg_meta = {**cluster_meta, **deriv.COLUMNS["clusters_lookup"]}  # the lookup TSV shares this sidecar
    put_nii("clusters_dseg", _nifti(res.labels, aff, np.int16), both, dseg_meta)
    lookup = [{"index": c.index, "name": f"cluster{c.index}"} for c in res.clusters]
    put_lookup("clusters_lookup", lookup)
    put_table("clusters_table", [c.row() for c in res.clusters], TABLE_COLUMNS, both, cluster_meta)
    with timed("native_space"):
        native_anom = to_native(res.anomaly, grid, pre)
        native_z = to_native(res.z, grid, pre)
        native_lab = to_native(res.labels.astype(np.float32), grid, pre, interpolator="genericLabel")
    put_nii("anomaly_statmap_T1w", _native_image(native_anom, np.float32), both)
    put_nii("z_statmap_T1w", _native_image(native_z, np.float32), both,
            {k: v for k, v in _z_description(post, ref).items() if k != "Description"})
    lab_img = _native_image(native_lab, np.int16)
    put_nii("clusters_dseg_T1w", lab_img, both, dseg_meta)
    put_lookup("clusters_lookup_T1w", lookup)
    native_rows = clusters_in(np.asarray(lab_img.dataobj), np.asarray(native_z.get_fdata(), np.float32),
                              lab_img.affine)
    put_table("clusters_table_T1w", native_rows, NATIVE_COLUMNS, both, cluster_meta)
    put_table("lobes_probabilities", [{"lobe": k, "probability": f"{res.lobe_probabilities[k]:.6f}"} for k in LOBES],
              ("lobe", "probability"), [src["flair"]])
    xfms: list[tuple[str, str, str, Path, list[str]]] = [
        ("xfm_T1w_to_template", "T1w", SPACE, pre.xfm_t1w_to_template, [src["t1w"]]),
        ("xfm_FLAIR_to_T1w", "FLAIR", "T1w", pre.xfm_flair_to_t1w, [src["flair"], src["t1w"]])]
    if pre.warp_t1w_to_template is not None:
        xfms.append(("xfm_T1w_to_template_warp", "T1w", SPACE, pre.warp_t1w_to_template, [src["t1w"]]))
    for role, frm, to, f, xsrc in xfms:
        p = path(role)
        copy_file(f, p)
        fill.update(frm=frm, to=to)
        side(p, role, xsrc)
    cfg_path = path("config")
    write_json(cfg_path, {"run": to_dict(cfg), "model": {"name": model.name, "sha256": model.sha256,
                                "net": to_dict(model.net)}, "inputs": {k: str(v) for k, v in
                                (("t1w", inp.t1w), ("flair", inp.flair), ("roi", inp.roi))}})
    written.append(cfg_path)
    report_rows = [{**c.row(), **{f"native_{k}": v for k, v in n.items() if k != "index"}}
                   for c, n in _pair_rows(res, native_rows)]
    written += _report(stage, inp, cfg, model, pre, res, stack, mask, report_rows, ref)
    return written


def run_files(participants: list[tuple[str, str | None]], res: str | None, *, warp: bool = True) -> list[str]:
    """Every file a successful participant-level run writes, relative to OUTPUT_DIR (POSIX), sorted:
    the dataset-level files, the viewer's assets and each participant's registered outputs with
    their sidecars (:func:`bids_fcd.bids.derivatives.expected_outputs`). ``tests/data/expected_outputs.txt``
    is this list (``scripts/expected-outputs.py`` writes it)."""
    from bids_fcd.reports.viewer import ASSET_FILES, ASSETS_DIR

    rows = [*deriv.DATASET_FILES, *(f"{ASSETS_DIR}/{a}" for a in ASSET_FILES)]
    for subject, session in participants:
        rows += deriv.expected_outputs(subject, session, res, warp=warp)
    return sorted(rows)


def _pair_rows(res: Analysis, native_rows: list[dict[str, object]]) -> list[tuple[Any, dict[str, object]]]:
    """Each template-space cluster with its T1w-space row (empty when it vanished in resampling)."""
    by_index = {int(str(r["index"])): r for r in native_rows}
    return [(c, by_index.get(c.index, {})) for c in res.clusters]


class ReportFailed(RuntimeError):
    """Making the HTML report failed; the derivatives are kept."""


def _native_mm(grid: Any, pre: Preprocessed, mask: np.ndarray) -> np.ndarray | None:
    """(3, W, H, S) T1w scanner mm of each grid voxel for the viewer's read-out; None (template mm only,
    logged) if the transforms cannot be applied."""
    try:
        with timed("native_space"):
            return native_coordinates(grid, pre, mask)
    except Exception as exc:  # noqa: BLE001 - the viewer then reads out template mm only
        log.warning("the viewer will read out template mm only: mapping the grid to T1w scanner mm failed (%s)", exc)
        return None


def _report(stage: Path, inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, pre: Preprocessed, res: Analysis,
            stack: np.ndarray, mask: np.ndarray, rows: list[dict[str, object]],
            ref: LoadedReference | None) -> list[Path]:
    """The HTML report and its figures; a failure raises :class:`ReportFailed` after logging why."""
    post = post_of(cfg)
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
            reference=reference, settings=settings, native_mm=_native_mm(grid, pre, mask))
        with timed("report"):
            return write_participant_report(stage, data)
    except Exception as exc:  # noqa: BLE001 - any report failure is logged and counted, never fatal
        log.debug("report traceback", exc_info=True)
        raise ReportFailed(f"{inp.prefix}: the HTML report could not be made ({type(exc).__name__}: {exc}); "
                          "the derivatives were written") from exc
