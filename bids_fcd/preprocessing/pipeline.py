"""Preprocessing of one participant with antspyx and deepbet (docs/architecture.md §2).

Working resolution → N4 bias correction → deepbet brain mask on the T1w → FLAIR→T1w rigid →
T1w→template SyN (or affine; MNI152NLin2009aSym, nilearn's copy) → both images and the mask
resampled into the model grid, the mask kept to the template's brain and the FLAIR's field of view →
intensities normalised inside the mask. Every transform is kept
(ANTs ``.mat`` and warp fields) so maps go back to T1w native space. Results are cached in the
work directory: a second call with the same inputs and settings reads them back, once their record
(:mod:`bids_fcd.preprocessing.cache`: key, tool versions, sha256 of every file) verifies. Each
run fills a partial folder of its own and renames it into place when complete.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_fcd.config import GridConfig, PreprocConfig, to_dict
from bids_fcd.io import write_nifti
from bids_fcd.preprocessing.cache import (
    RECORD,
    cache_problem,
    nifti_complete,
    partial_folder,
    publish_folder,
    tool_versions,
    write_record,
)
from bids_fcd.preprocessing.errors import PreprocessingError
from bids_fcd.preprocessing.grid import grid_affine, normalise, to_slices
from bids_fcd.preprocessing.inputs import check_brain_in_view, read_image
from bids_fcd.preprocessing.registration import ants_scratch, register
from bids_fcd.timing import stage

log = logging.getLogger(__name__)

CACHE_VERSION = 4
#: Above this fraction of the registered brain mask outside the template's brain, registration is
#: suspect (measured on real heads: 1.7-8.6 %, docs/real-scans.md; on phantoms 3.9-5.5 %).
MAX_OUTSIDE_TEMPLATE = 0.15
#: Above this fraction of the brain outside the FLAIR's field of view, the user is warned (that part
#: is not analysed; a 2D FLAIR slab short of the vertex left out 0.05 % of one real brain, 0.9 cm³).
WARN_OUTSIDE_FLAIR = 0.01
#: After the FLAIR → T1w rigid, at least this fraction of the T1w brain must lie in the FLAIR's field of view.
MIN_FLAIR_COVERAGE = 0.6
#: ... and the FLAIR and T1w must share at least this much mutual information in the brain (nats;
#: measured on the phantom: the matched pair 0.76, another subject's FLAIR 0.37, a noise image 0.007).
MIN_MUTUAL_INFORMATION = 0.08


@dataclass(frozen=True)
class Preprocessed:
    """Outputs of preprocessing, all in the work directory.

    Attributes:
        folder: the work folder of this participant.
        t1w, flair, mask, roi: grid-space NIfTI paths (roi is None without a lesion mask).
        t1w_native: an empty image on the native T1w grid (the reference for going back).
        xfm_t1w_to_template: ANTs affine, T1w → template (applied first).
        warp_t1w_to_template: ANTs SyN displacement field T1w → template, or None (affine only).
        warp_template_to_t1w: its inverse, or None.
        xfm_flair_to_t1w: ANTs rigid, FLAIR → T1w.
    """

    folder: Path
    t1w: Path
    flair: Path
    mask: Path
    roi: Path | None
    t1w_native: Path
    xfm_t1w_to_template: Path
    warp_t1w_to_template: Path | None
    warp_template_to_t1w: Path | None
    xfm_flair_to_t1w: Path

    def to_template(self) -> list[str]:
        """ANTs transform list T1w → template (``apply_transforms`` order: last listed applied first)."""
        warp = [str(self.warp_t1w_to_template)] if self.warp_t1w_to_template is not None else []
        return warp + [str(self.xfm_t1w_to_template)]

    def to_native(self) -> tuple[list[str], list[bool]]:
        """ANTs transform list and ``whichtoinvert`` template → T1w."""
        if self.warp_template_to_t1w is None:
            return [str(self.xfm_t1w_to_template)], [True]
        return [str(self.xfm_t1w_to_template), str(self.warp_template_to_t1w)], [True, False]

    def slices(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, 2, H, W) stack (FLAIR, T1w), normalised (background −1) and the (S, H, W) bool brain mask."""
        fl = np.asarray(nib.load(self.flair).get_fdata(), np.float32)
        t1 = np.asarray(nib.load(self.t1w).get_fdata(), np.float32)
        mask = np.asarray(nib.load(self.mask).get_fdata()) > 0.5
        return to_slices(fl, t1), to_slices(mask)[:, 0] > 0.5

    def roi_slices(self) -> np.ndarray | None:
        """(S, H, W) bool lesion mask in the slice grid, or None."""
        if self.roi is None:
            return None
        return to_slices(np.asarray(nib.load(self.roi).get_fdata()))[:, 0] > 0.5


def _file_key(path: Path | None) -> str | None:
    """sha256 of a file's bytes: the cache follows content, not location (copies hit the cache)."""
    if path is None:
        return None
    from bids_fcd.nets.checkpoint import sha256_file

    return sha256_file(path)


#: ANTs' random seed (its registration samples the metric at random points).
ANTS_SEED = 1


def ants_threads() -> int:
    """The thread count ANTs/ITK runs with in this process (ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS; 1
    unless set, since ANTs' multi-threaded registration is not reproducible run to run)."""
    try:
        return max(1, int(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "")))
    except ValueError:
        return 1


def seed_ants() -> None:
    """Give ANTs its fixed seed (antspyx 0.6 ignores a ``random_seed`` argument of ``registration``
    and reads ``ants.config``) without changing the thread count ITK will use."""
    import ants

    threads = str(ants_threads())
    ants.config.set_ants_deterministic(True, seed_value=ANTS_SEED)  # also sets the ITK threads to 1 and seeds
    # numpy's and random's global generators, which bids-fcd does not use (every draw has its own Generator)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = threads


def cache_key(t1w: Path, flair: Path, roi: Path | None, grid: GridConfig, cfg: PreprocConfig, threads: int) -> str:
    """sha256 over the inputs' content and every setting that changes the result, the ANTs thread
    count included (ITK's multi-threaded metrics sum in a thread-dependent order)."""
    blob = json.dumps([CACHE_VERSION, _file_key(t1w), _file_key(flair), _file_key(roi), to_dict(grid), to_dict(cfg),
                       threads])
    return hashlib.sha256(blob.encode()).hexdigest()


def _read(path: Path, what: str):  # untyped: ants image
    """The checked 3D image (:func:`bids_fcd.preprocessing.inputs.read_image`)."""
    return read_image(path, what)


def template_reference(work: Path, resolution: int = 2) -> Path:
    """Write nilearn's MNI152NLin2009aSym brain template to ``work`` once and return its path."""
    from bids_fcd.atlas import load_template

    out = work / f"tpl-MNI152NLin2009aSym_res-{resolution}_T1w.nii.gz"
    if not nifti_complete(out):  # missing, or truncated: (re)written
        tpl = load_template(resolution)["t1"]
        _save_once(nib.Nifti1Image(np.asarray(tpl.get_fdata(), np.float32), tpl.affine), out)
    return out


def _save_once(img: nib.Nifti1Image, out: Path) -> None:
    """Save atomically (:func:`bids_fcd.io.write_nifti`: a unique temporary name, then a rename), so
    concurrent runs sharing a work directory write identical bytes and never read half a file."""
    write_nifti(out, img)


def grid_reference(work: Path, grid: GridConfig) -> Path:
    """An empty image on the model grid, the ``fixed`` image of every resampling into it.

    Its name carries a digest of the grid's affine (grids of one size may sit elsewhere); one that
    does not read to its end, or holds another grid, is rewritten.
    """
    aff, shape = grid_affine(grid)
    digest = hashlib.sha256(np.asarray(aff, np.float64).tobytes() + repr(tuple(shape)).encode()).hexdigest()[:8]
    out = work / f"grid-{shape[0]}x{shape[1]}x{shape[2]}_{grid.spacing_mm:g}mm_{digest}.nii.gz"
    if not (nifti_complete(out) and _same_grid(out, aff, shape)):
        _save_once(nib.Nifti1Image(np.zeros(shape, np.float32), aff), out)
    return out


def _same_grid(path: Path, affine: np.ndarray, shape: tuple[int, ...]) -> bool:
    img = nib.load(path)
    return tuple(img.shape) == tuple(shape) and bool(np.allclose(img.affine, affine, atol=1e-4))  # type: ignore[attr-defined]


def brain_mask(t1_path: Path, out_path: Path, threshold: float) -> None:
    """deepbet on the (bias-corrected) native T1w; writes a uint8 mask beside it."""
    from deepbet.bet import BrainExtraction

    bet = BrainExtraction(no_gpu=True)
    _, mask, _ = bet.run(nib.load(t1_path), threshold=threshold)
    nib.save(mask, out_path)


def working_spacing(working_mm: float, grid: GridConfig) -> float:
    """The working resolution: ``working_mm``, but never coarser than the model grid (a 1.5 mm grid needs
    1.5 mm images to resample from); 0 (keep the native grid) stays 0."""
    return min(working_mm, grid.spacing_mm) if working_mm > 0 else 0.0


def working_image(img, spacing_mm: float):  # untyped: ants images
    """``img`` smoothed (anti-aliasing) and resampled so no voxel side is finer than ``spacing_mm``.

    Axes already coarser (e.g. the 4-6 mm slices of a 2D FLAIR) keep their spacing. 0 = unchanged.
    """
    import ants

    old = np.asarray(img.spacing, float)
    if spacing_mm <= 0 or old.min() >= spacing_mm * 0.999:
        return img
    new = np.maximum(old, spacing_mm)
    sigma = np.sqrt(np.maximum(new**2 - old**2, 0.0)) / 2.3548
    smooth = ants.smooth_image(img, sigma.tolist(), sigma_in_physical_coordinates=True)
    return ants.resample_image(smooth, tuple(new.tolist()), use_voxels=False, interp_type=0)


def _empty_like(src: Path, path: Path) -> None:
    """An all-zero uint8 image on ``src``'s grid: the native reference grid, a few bytes on disk."""
    img = nib.load(src)
    nib.save(nib.Nifti1Image(np.zeros(img.shape[:3], np.uint8), img.affine), path)  # type: ignore[attr-defined]


def mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Mutual information (nats) of two paired samples (1-D float arrays), from a joint histogram
    of their robust (1-99th percentile) ranges."""
    def digitise(x: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(x, (1, 99))
        return np.clip(((x - lo) / max(hi - lo, 1e-12) * bins).astype(int), 0, bins - 1)

    joint = np.zeros((bins, bins), np.float64)
    np.add.at(joint, (digitise(a), digitise(b)), 1.0)
    p = joint / joint.sum()
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())


def check_flair_overlap(t1, fl, mask, transforms: list[str], flair_path: Path) -> tuple[float, float]:
    """After the FLAIR → T1w rigid: (coverage, mutual information) in the T1w brain mask.

    Coverage is the fraction of brain voxels inside the FLAIR's field of view; the mutual
    information is that of the registered FLAIR and the T1w there. Raises PreprocessingError when
    either is too low (the images do not overlap, or are of different heads).
    """
    import ants

    ones = fl.new_image_like(np.ones(fl.shape, np.float32))
    fov = ants.apply_transforms(fixed=t1, moving=ones, transformlist=transforms, interpolator="nearestNeighbor")
    warped = ants.apply_transforms(fixed=t1, moving=fl, transformlist=transforms, interpolator="linear")
    brain = mask.numpy() > 0.5
    inside = brain & (fov.numpy() > 0.5)
    coverage = float(inside.sum() / max(brain.sum(), 1))
    mi = mutual_information(t1.numpy()[inside], warped.numpy()[inside]) if inside.sum() > 100 else 0.0
    log.info("preprocessing: FLAIR covers %.0f %% of the T1w brain, mutual information %.3f", 100 * coverage, mi)
    if coverage < MIN_FLAIR_COVERAGE or mi < MIN_MUTUAL_INFORMATION:
        raise PreprocessingError(
            f"{flair_path}: after registration the FLAIR covers {100 * coverage:.0f} % of the T1w brain and shares "
            f"{mi:.3f} nats of mutual information with it (need {100 * MIN_FLAIR_COVERAGE:.0f} % and "
            f"{MIN_MUTUAL_INFORMATION}); the FLAIR and T1w do not overlap or are of different heads: check the "
            "pairing and the image headers")
    return coverage, mi


def preprocess(t1w: Path, flair: Path, roi: Path | None, work: Path, grid: GridConfig, cfg: PreprocConfig) -> Preprocessed:
    """Run (or read back from the cache) the preprocessing of one participant.

    Order: T1w and FLAIR to the working resolution → N4 → deepbet mask on the T1w → FLAIR → T1w
    rigid → skull-stripped T1w → template (SyN, or affine) → T1w, FLAIR and mask into the model
    grid through the composed transforms (one interpolation each) → normalisation in the mask.

    Args:
        t1w, flair: native images from the BIDS dataset (never written to).
        roi: the ``_FLAIR_roi`` lesion mask in FLAIR space, or None.
        work: this participant's work folder.
    """
    if cfg.registration not in ("syn", "affine"):
        raise ValueError(f"unknown registration {cfg.registration!r}; use 'syn' or 'affine'")
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
    key = cache_key(t1w, flair, roi, grid, cfg, ants_threads())
    folder = work / key[:16]
    syn = cfg.registration == "syn"
    out = Preprocessed(
        folder=folder,
        t1w=folder / "t1w_grid.nii.gz",
        flair=folder / "flair_grid.nii.gz",
        mask=folder / "mask_grid.nii.gz",
        roi=(folder / "roi_grid.nii.gz") if roi is not None else None,
        t1w_native=folder / "t1w_native_grid.nii.gz",
        xfm_t1w_to_template=folder / "t1w_to_template.mat",
        warp_t1w_to_template=(folder / "t1w_to_template_warp.nii.gz") if syn else None,
        warp_template_to_t1w=(folder / "template_to_t1w_warp.nii.gz") if syn else None,
        xfm_flair_to_t1w=folder / "flair_to_t1w.mat",
    )
    expected = [getattr(out, f.name).name for f in dataclasses.fields(out)
                if f.name != "folder" and getattr(out, f.name) is not None]
    if (folder / RECORD).exists():
        problem = cache_problem(folder, key, expected)
        if problem is None:
            log.info("preprocessing: cached results in %s", folder)
            return out
        log.warning("preprocessing: %s; recomputing", problem)
    tmp = partial_folder(folder)
    try:
        _compute(t1w, flair, roi, work, grid, cfg, key, tmp, out)
        publish_folder(tmp, folder, key, expected)
    finally:  # a failure, a full disk or a stop signal leaves no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _compute(t1w: Path, flair: Path, roi: Path | None, work: Path, grid: GridConfig, cfg: PreprocConfig, key: str,
             tmp: Path, out: Preprocessed) -> None:
    """Fill ``tmp`` with what :func:`preprocess` caches (file names of ``out``), its record last."""
    import ants

    syn = cfg.registration == "syn"
    tmp_out = dataclasses.replace(out, **{f.name: tmp / getattr(out, f.name).name
                                          for f in dataclasses.fields(out)
                                          if f.name != "folder" and getattr(out, f.name) is not None})

    with stage("read"):
        t1_in, fl_in = _read(t1w, "T1w"), _read(flair, "FLAIR")
    with stage("working_resolution"):
        working = working_spacing(cfg.working_mm, grid)
        t1, fl = working_image(t1_in, working), working_image(fl_in, working)
    _empty_like(t1w, tmp_out.t1w_native)
    if cfg.n4:
        log.info("preprocessing: N4 bias correction")
        with stage("n4"):
            t1 = ants.n4_bias_field_correction(t1)
            fl = ants.n4_bias_field_correction(fl)
    ants.image_write(t1, str(tmp / "t1w_n4.nii.gz"))
    log.info("preprocessing: deepbet brain mask")
    with stage("skullstrip"):
        brain_mask(tmp / "t1w_n4.nii.gz", tmp / "mask_native.nii.gz", cfg.brain_threshold)
    mask_native = ants.image_read(str(tmp / "mask_native.nii.gz"))
    if float(mask_native.numpy().sum()) == 0:
        raise PreprocessingError(f"{t1w}: deepbet found no brain in the T1w; check the image is a head T1w")
    check_brain_in_view(mask_native, t1w)

    with ants_scratch() as scratch:  # ANTs writes its transforms here (a path it can write them under)
        log.info("preprocessing: FLAIR → T1w rigid")
        with stage("register_flair"):
            seed_ants()
            reg_fl = register(t1, fl, "Rigid", scratch / "flair_to_t1w_", f"{flair}: FLAIR → T1w")
            check_flair_overlap(t1, fl, mask_native, [str(reg_fl.affine)], flair)
        log.info("preprocessing: T1w → MNI152NLin2009aSym %s", "SyN" if syn else "affine")
        tpl = ants.image_read(str(template_reference(work.parent)))
        t1_brain = t1 * mask_native
        t1_brain = t1_brain / float(np.percentile(t1_brain.numpy()[mask_native.numpy() > 0], 99))
        with stage("register_template"):
            reg_t1 = register(tpl, t1_brain, "SyN" if syn else "Affine", scratch / "t1w_to_template_",
                              f"{t1w}: T1w → template")
        shutil.copyfile(reg_t1.affine, tmp_out.xfm_t1w_to_template)
        for src, dst in ((reg_t1.warp, tmp_out.warp_t1w_to_template),
                         (reg_t1.inverse_warp, tmp_out.warp_template_to_t1w)):
            if src is not None and dst is not None:
                shutil.copyfile(src, dst)
        shutil.copyfile(reg_fl.affine, tmp_out.xfm_flair_to_t1w)

    with stage("resample_grid"):
        save = _resample_to_grid(t1, fl, mask_native, roi, tmp_out, out, work.parent, grid, cfg, (t1w, flair))
    aff, _ = grid_affine(grid)
    for name, arr in save.items():
        nib.save(nib.Nifti1Image(arr, aff), tmp / name)
    (tmp / "t1w_n4.nii.gz").unlink()
    write_record(tmp, key, {"t1w": str(t1w), "flair": str(flair), "roi": str(roi)},
                 sorted(p.name for p in tmp.iterdir() if p.is_file()), tool_versions())



def _resample_to_grid(t1, fl, mask_native, roi: Path | None, tmp_out: Preprocessed, out: Preprocessed,
                      shared: Path, grid: GridConfig, cfg: PreprocConfig,
                      sources: tuple[Path, Path]) -> dict[str, np.ndarray]:
    """T1w, FLAIR, mask (and lesion mask) into the model grid through the composed transforms
    (one interpolation each), normalised in the mask: {file name: (W, H, S) array}.

    The mask is deepbet's, kept to the template's brain and to the FLAIR's field of view
    (:func:`restrict_mask`); ``sources`` are the T1w and FLAIR files, named in its messages.
    """
    import ants

    ref = ants.image_read(str(grid_reference(shared, grid)))
    to_tpl = tmp_out.to_template()
    fl_chain = to_tpl + [str(tmp_out.xfm_flair_to_t1w)]
    t1_g = ants.apply_transforms(fixed=ref, moving=t1, transformlist=to_tpl, interpolator="linear").numpy()
    fl_g = ants.apply_transforms(fixed=ref, moving=fl, transformlist=fl_chain, interpolator="linear").numpy()
    m_g = ants.apply_transforms(fixed=ref, moving=mask_native, transformlist=to_tpl, interpolator="linear").numpy() > 0.5
    ones = fl.new_image_like(np.ones(fl.shape, np.float32))
    fov_g = ants.apply_transforms(fixed=ref, moving=ones, transformlist=fl_chain,
                                  interpolator="nearestNeighbor").numpy() > 0.5
    m_g = restrict_mask(m_g, template_brain(grid), fov_g, grid.spacing_mm, *sources)
    save = {
        out.t1w.name: normalise(t1_g, m_g, cfg.normalise_percentiles),
        out.flair.name: normalise(fl_g, m_g, cfg.normalise_percentiles),
        out.mask.name: m_g.astype(np.uint8),
    }
    if roi is not None:
        roi_img = _read(roi, "lesion mask")
        roi_g = ants.apply_transforms(fixed=ref, moving=roi_img, transformlist=fl_chain,
                                      interpolator="linear").numpy()
        save[out.roi.name] = (roi_g > 0.5).astype(np.uint8)  # type: ignore[union-attr]
    return save



@functools.lru_cache(maxsize=4)
def template_brain(grid: GridConfig) -> np.ndarray:
    """The template's brain mask (nilearn's MNI152NLin2009aSym, 1 mm) on the model grid: (W, H, S) bool, read-only.

    It leaves out what deepbet keeps around a real brain but the template calls non-brain: the basal
    cisterns in front of the pons and midbrain, the venous sinuses and the dura at the vertex and
    the occipital pole.
    """
    from nilearn.image import resample_to_img

    from bids_fcd.atlas import load_template

    aff, shape = grid_affine(grid)
    ref = nib.Nifti1Image(np.zeros(shape, np.uint8), aff)
    res = resample_to_img(load_template(1)["mask"], ref, interpolation="nearest", force_resample=True,
                          copy_header=True)
    out = np.asarray(res.get_fdata()) > 0.5
    out.setflags(write=False)
    return out


def restrict_mask(mask: np.ndarray, template: np.ndarray, flair_fov: np.ndarray, spacing_mm: float,
                  t1w: Path, flair: Path) -> np.ndarray:
    """The registered brain mask kept to the template's brain and to the FLAIR's field of view.

    On real heads deepbet keeps the basal cisterns, the venous sinuses and the dura; registered to
    the template these lie in a one- to two-voxel shell outside its brain, where the FLAIR of a real
    head (flow, partial volume) differs from the controls' and formed the top-ranked false clusters
    (in front of the pons at MNI z −24…−30, at the vertex, at the occipital pole). A 2D FLAIR slab
    short of the vertex has no FLAIR there. Both are left out.

    Args:
        mask, template, flair_fov: (W, H, S) bool on the model grid: the registered deepbet mask,
            :func:`template_brain` and the FLAIR's field of view. spacing_mm: the grid's voxel side.
        t1w, flair: the participant's files, named in the messages.
    Returns:
        (W, H, S) bool: ``mask & template & flair_fov``.
    Raises:
        PreprocessingError: when nothing of the brain is left.
    """
    n = int(mask.sum())
    cm3 = spacing_mm**3 / 1000.0
    outside_template = int((mask & ~template).sum())
    outside_fov = int((mask & template & ~flair_fov).sum())
    out = mask & template & flair_fov
    log.info("preprocessing: brain mask %.0f cm³; left out %.0f cm³ outside the template's brain and %.1f cm³ "
             "outside the FLAIR's field of view", n * cm3, outside_template * cm3, outside_fov * cm3)
    if not out.any():
        raise PreprocessingError(f"{t1w}: no brain is left inside the template's brain and the FLAIR's field of view "
                                 f"({flair}); check that the T1w and FLAIR are of the same head and in view")
    if outside_template > MAX_OUTSIDE_TEMPLATE * n:
        log.warning("%s: %.0f %% of the registered brain mask lies outside the template's brain (usually under "
                    "%.0f %%): registration to the template may have failed; check the registration figure "
                    "(desc-registration) of the report and the T1w's orientation", t1w,
                    100 * outside_template / n, 100 * MAX_OUTSIDE_TEMPLATE)
    if outside_fov > WARN_OUTSIDE_FLAIR * n:
        log.warning("%s: %.0f %% of the brain (%.0f cm³) lies outside the FLAIR's field of view and is not "
                    "analysed; a FLAIR covering the whole brain avoids this", flair, 100 * outside_fov / n,
                    outside_fov * cm3)
    return out


def to_native(volume: np.ndarray, grid: GridConfig, pre: Preprocessed, interpolator: str = "linear") -> nib.Nifti1Image:
    """Map a grid-space volume (W, H, S) back to T1w native space through the inverse transforms."""
    import ants

    aff, _ = grid_affine(grid)
    tag = uuid.uuid4().hex[:8]
    src = pre.folder / f"_to_native_src_{tag}.nii.gz"
    nib.save(nib.Nifti1Image(volume.astype(np.float32), aff), src)
    moving = ants.image_read(str(src))
    fixed = ants.image_read(str(pre.t1w_native))
    chain, invert = pre.to_native()
    res = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=chain, whichtoinvert=invert,
                                interpolator=interpolator)
    dst = pre.folder / f"_to_native_dst_{tag}.nii.gz"
    ants.image_write(res, str(dst))
    img = nib.load(dst)
    out = nib.Nifti1Image(np.asarray(img.get_fdata(), np.float32), img.affine, img.header)
    src.unlink()
    dst.unlink()
    return out


def native_coordinates(grid: GridConfig, pre: Preprocessed, mask: np.ndarray | None = None) -> np.ndarray:
    """(3, W, H, S) float32: each grid voxel's position in the T1w's scanner (RAS) millimetres.

    Three images on the native T1w grid whose values are their own scanner x, y, z are resampled
    onto the model grid through the same transforms as the T1w itself (linear interpolation is
    exact for the affine part), so a grid voxel reads the native point it was sampled from. NaN
    outside ``mask`` (W, H, S) when one is given.
    """
    import ants

    native = nib.load(pre.t1w_native)
    i, j, k = np.ogrid[tuple(slice(0, n) for n in native.shape[:3])]
    aff, shape = grid_affine(grid)
    tag = uuid.uuid4().hex[:8]
    fixed_path = pre.folder / f"_coords_grid_{tag}.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), aff), fixed_path)
    fixed = ants.image_read(str(fixed_path))
    out = np.empty((3, *shape), np.float32)
    try:
        for axis in range(3):
            src = pre.folder / f"_coords_{axis}_{tag}.nii.gz"
            row = native.affine[axis].astype(np.float32)  # scanner coordinate `axis` of voxel (i, j, k)
            coord = (row[0] * i + row[1] * j + row[2] * k + row[3]).astype(np.float32)
            nib.save(nib.Nifti1Image(coord, native.affine), src)
            try:
                res = ants.apply_transforms(fixed=fixed, moving=ants.image_read(str(src)),
                                            transformlist=pre.to_template(), interpolator="linear")
            finally:
                src.unlink()
            out[axis] = res.numpy()
    finally:
        fixed_path.unlink()
    if mask is not None:
        out[:, ~np.asarray(mask, bool)] = np.nan
    return out


def roi_to_grid(roi: Path, reference: Path, transforms: list[Path]) -> np.ndarray:
    """A FLAIR-space lesion mask resampled onto the grid of ``reference`` (linear, then > 0.5).

    Args:
        transforms: the FLAIR's chain in ``apply_transforms`` order: [SyN warp,] T1w → template
            affine, FLAIR → T1w rigid.
    Returns:
        (W, H, S) bool array.
    """
    import ants

    moving = _read(roi, "lesion mask")
    fixed = ants.image_read(str(reference))
    res = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[str(t) for t in transforms],
                                interpolator="linear")
    return res.numpy() > 0.5
