"""Preprocessing of one participant with antspyx and deepbet (design.md §2).

N4 bias correction → deepbet brain mask on the native T1w → FLAIR→T1w rigid → T1w→template
affine (MNI152NLin2009aSym, nilearn's copy) → both images and the mask resampled into the model
grid → intensities normalised inside the mask. Every transform is kept (ANTs ``.mat``) so maps
go back to T1w native space. Results are cached in the work directory: a second call with the
same inputs and settings reads them back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_fcd.config import GridConfig, PreprocConfig, to_dict
from bids_fcd.preprocessing.grid import grid_affine, normalise, to_slices

log = logging.getLogger(__name__)

CACHE_VERSION = 1


class PreprocessingError(RuntimeError):
    """A participant's images could not be preprocessed; the message names the file."""


@dataclass(frozen=True)
class Preprocessed:
    """Outputs of preprocessing, all in the work directory.

    Attributes:
        folder: the work folder of this participant.
        t1w, flair, mask, roi: grid-space NIfTI paths (roi is None without a lesion mask).
        t1w_native: the bias-corrected native T1w (reference for going back).
        xfm_t1w_to_template: ANTs affine, T1w → template.
        xfm_flair_to_t1w: ANTs rigid, FLAIR → T1w.
    """

    folder: Path
    t1w: Path
    flair: Path
    mask: Path
    roi: Path | None
    t1w_native: Path
    xfm_t1w_to_template: Path
    xfm_flair_to_t1w: Path

    def slices(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, 2, H, W) stack (FLAIR, T1w) in [-1, 1] and the (S, H, W) bool brain mask."""
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


def cache_key(t1w: Path, flair: Path, roi: Path | None, grid: GridConfig, cfg: PreprocConfig) -> str:
    """sha256 over the inputs' identity and every setting that changes the result."""
    blob = json.dumps([CACHE_VERSION, _file_key(t1w), _file_key(flair), _file_key(roi), to_dict(grid), to_dict(cfg)])
    return hashlib.sha256(blob.encode()).hexdigest()


def _read(path: Path, what: str):  # noqa: ANN202 - ants image
    import ants

    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for broken files
        raise PreprocessingError(f"{path}: cannot read the {what} image ({exc}); check the file is a valid NIfTI") from exc
    if data.ndim not in (3, 4) or min(data.shape[:3]) < 8:
        raise PreprocessingError(f"{path}: the {what} image has shape {data.shape}; a 3D volume is required")
    if not np.isfinite(np.asarray(data, dtype=np.float32)).all() or float(np.max(data)) <= float(np.min(data)):
        raise PreprocessingError(f"{path}: the {what} image is constant or has NaN/inf voxels")
    return ants.image_read(str(path))


def template_reference(work: Path, resolution: int = 2) -> Path:
    """Write nilearn's MNI152NLin2009aSym brain template to ``work`` once and return its path."""
    from bids_fcd.atlas import load_template

    out = work / f"tpl-MNI152NLin2009aSym_res-{resolution}_T1w.nii.gz"
    if not out.exists():
        work.mkdir(parents=True, exist_ok=True)
        tpl = load_template(resolution)["t1"]
        tmp = out.with_suffix(".tmp.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(tpl.get_fdata(), np.float32), tpl.affine), tmp)
        tmp.replace(out)
    return out


def grid_reference(work: Path, grid: GridConfig) -> Path:
    """An empty image on the model grid, the ``fixed`` image of every resampling into it."""
    aff, shape = grid_affine(grid)
    out = work / f"grid-{shape[0]}x{shape[1]}x{shape[2]}_{grid.spacing_mm:g}mm.nii.gz"
    if not out.exists():
        work.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), aff), out)
    return out


def brain_mask(t1_path: Path, out_path: Path, threshold: float) -> None:
    """deepbet on the (bias-corrected) native T1w; writes a uint8 mask beside it."""
    from deepbet.bet import BrainExtraction

    bet = BrainExtraction(no_gpu=True)
    _, mask, _ = bet.run(nib.load(t1_path), threshold=threshold)
    nib.save(mask, out_path)


def preprocess(t1w: Path, flair: Path, roi: Path | None, work: Path, grid: GridConfig, cfg: PreprocConfig) -> Preprocessed:
    """Run (or read back from the cache) the preprocessing of one participant.

    Args:
        t1w, flair: native images from the BIDS dataset (never written to).
        roi: the ``_FLAIR_roi`` lesion mask in FLAIR space, or None.
        work: this participant's work folder.
    """
    import ants

    key = cache_key(t1w, flair, roi, grid, cfg)
    folder = work / key[:16]
    out = Preprocessed(
        folder=folder,
        t1w=folder / "t1w_grid.nii.gz",
        flair=folder / "flair_grid.nii.gz",
        mask=folder / "mask_grid.nii.gz",
        roi=(folder / "roi_grid.nii.gz") if roi is not None else None,
        t1w_native=folder / "t1w_native_n4.nii.gz",
        xfm_t1w_to_template=folder / "t1w_to_template.mat",
        xfm_flair_to_t1w=folder / "flair_to_t1w.mat",
    )
    if (folder / "DONE").exists():
        log.info("preprocessing: cached results in %s", folder)
        return out
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    t1 = _read(t1w, "T1w")
    fl = _read(flair, "FLAIR")
    if cfg.n4:
        log.info("preprocessing: N4 bias correction")
        t1 = ants.n4_bias_field_correction(t1)
        fl = ants.n4_bias_field_correction(fl)
    ants.image_write(t1, str(tmp / out.t1w_native.name))
    log.info("preprocessing: deepbet brain mask")
    brain_mask(tmp / out.t1w_native.name, tmp / "mask_native.nii.gz", cfg.brain_threshold)
    mask_native = ants.image_read(str(tmp / "mask_native.nii.gz"))
    if float(mask_native.numpy().sum()) == 0:
        raise PreprocessingError(f"{t1w}: deepbet found no brain in the T1w; check the image is a head T1w")

    log.info("preprocessing: FLAIR → T1w rigid")
    reg_fl = ants.registration(fixed=t1, moving=fl, type_of_transform="Rigid", random_seed=1)
    log.info("preprocessing: T1w → MNI152NLin2009aSym affine")
    tpl = ants.image_read(str(template_reference(work.parent)))
    t1_brain = t1 * mask_native
    t1_brain = t1_brain / float(np.percentile(t1_brain.numpy()[mask_native.numpy() > 0], 99))
    reg_t1 = ants.registration(fixed=tpl, moving=t1_brain, type_of_transform="Affine", random_seed=1)
    shutil.copyfile(reg_t1["fwdtransforms"][0], tmp / out.xfm_t1w_to_template.name)
    shutil.copyfile(reg_fl["fwdtransforms"][0], tmp / out.xfm_flair_to_t1w.name)

    ref = ants.image_read(str(grid_reference(work.parent, grid)))
    to_tpl = [str(tmp / out.xfm_t1w_to_template.name)]
    fl_chain = to_tpl + [str(tmp / out.xfm_flair_to_t1w.name)]
    t1_g = ants.apply_transforms(fixed=ref, moving=t1, transformlist=to_tpl, interpolator="linear").numpy()
    fl_g = ants.apply_transforms(fixed=ref, moving=fl, transformlist=fl_chain, interpolator="linear").numpy()
    m_g = ants.apply_transforms(fixed=ref, moving=mask_native, transformlist=to_tpl, interpolator="linear").numpy() > 0.5
    aff, _ = grid_affine(grid)
    save = {
        out.t1w.name: normalise(t1_g, m_g, cfg.normalise_percentiles),
        out.flair.name: normalise(fl_g, m_g, cfg.normalise_percentiles),
        out.mask.name: m_g.astype(np.uint8),
    }
    if roi is not None:
        roi_img = _read(roi, "lesion mask")
        roi_g = ants.apply_transforms(fixed=ref, moving=roi_img, transformlist=fl_chain,
                                      interpolator="nearestNeighbor").numpy()
        save[out.roi.name] = (roi_g > 0.5).astype(np.uint8)  # type: ignore[union-attr]
    for name, arr in save.items():
        nib.save(nib.Nifti1Image(arr, aff), tmp / name)
    (tmp / "DONE").write_text(json.dumps({"t1w": str(t1w), "flair": str(flair), "roi": str(roi)}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return out


def to_native(volume: np.ndarray, grid: GridConfig, pre: Preprocessed, interpolator: str = "linear") -> nib.Nifti1Image:
    """Map a grid-space volume (W, H, S) back to T1w native space through the inverse affine."""
    import ants

    aff, _ = grid_affine(grid)
    src = pre.folder / "_to_native_src.nii.gz"
    nib.save(nib.Nifti1Image(volume.astype(np.float32), aff), src)
    moving = ants.image_read(str(src))
    fixed = ants.image_read(str(pre.t1w_native))
    res = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[str(pre.xfm_t1w_to_template)],
                                whichtoinvert=[True], interpolator=interpolator)
    dst = pre.folder / "_to_native_dst.nii.gz"
    ants.image_write(res, str(dst))
    img = nib.load(dst)
    out = nib.Nifti1Image(np.asarray(img.get_fdata(), np.float32), img.affine, img.header)
    src.unlink()
    dst.unlink()
    return out


def roi_to_grid(roi: Path, reference: Path, xfm_t1w_to_template: Path, xfm_flair_to_t1w: Path) -> np.ndarray:
    """A FLAIR-space lesion mask resampled (nearest neighbour) onto the grid of ``reference``.

    Uses the same transform chain as the FLAIR (FLAIR → T1w rigid, T1w → template affine).
    Returns a (W, H, S) bool array.
    """
    import ants

    moving = _read(roi, "lesion mask")
    fixed = ants.image_read(str(reference))
    res = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[str(xfm_t1w_to_template),
                                str(xfm_flair_to_t1w)], interpolator="nearestNeighbor")
    return res.numpy() > 0.5
