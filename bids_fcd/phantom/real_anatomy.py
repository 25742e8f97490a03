"""Heads with real anatomy: tissue maps from a label map of a real brain, SynthSeg-style.

A label map (FreeSurfer labels for the brain, 500+ for extra-cerebral tissue, as in SynthSeg's
training label maps, Billot et al., MedIA 2023) becomes the :class:`~bids_fcd.phantom.anatomy.TissueMaps`
the phantom generator draws images from: per-label partial-volume fractions of grey matter, white
matter, CSF, bone, fat/skin and other soft tissue. Deep grey nuclei are mixtures (a putamen is darker
than white matter on T1w but brighter than cortex), so their contrast to the cortex varies with the
subject's jitter as in real scans. The head is put into template (MNI152NLin2009aSym) millimetres by
an ANTs affine registration of its brain to the template's brain, so lesion placement by lobe
(:func:`bids_fcd.atlas.lobe_of_mm`) and the acquisition grids work as for the template phantom; the
folding, the ventricles, the head and the asymmetry between hemispheres stay the subject's own.

:data:`ANATOMY_SPLIT` fixes which of the 20 label maps the project has train the model, which build
the shipped normative reference, which make the development cohorts that choices are made on, and
which are kept for the held-out test: no test anatomy is ever seen in training or in the reference.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_fcd.phantom.anatomy import TissueMaps

log = logging.getLogger(__name__)

#: The fixed split of the project's 20 real-anatomy label maps (``synthseg-training_seg_NN``, see
#: shared/anatomy/README.md), by NN: ``train`` trains the shipped model, ``reference`` makes the shipped
#: normative reference's controls, ``development`` the cohorts every default is chosen on, ``test`` the
#: held-out cohorts scored once after every choice. ``all`` (any directory of label maps) uses every file.
ANATOMY_SPLIT: dict[str, tuple[int, ...]] = {
    "train": (1, 2, 3, 4, 5, 6, 7, 8),
    "reference": (9, 10, 11, 12, 13, 14),
    "development": (15, 16, 17),
    "test": (18, 19, 20),
}
SPLIT_CHOICES = (*ANATOMY_SPLIT, "all")
#: File name of the NN-th label map of the project's anatomy set.
ANATOMY_FILE = "synthseg-training_seg_{:02d}.nii.gz"

#: Brain labels (FreeSurfer) → fraction of grey matter; the rest of the voxel is white matter.
#: Cortex, hippocampus, amygdala, cerebellar cortex are grey; deep nuclei are mixtures.
GREY_FRACTION: dict[int, float] = {
    3: 1.0, 42: 1.0,  # cerebral cortex
    8: 1.0, 47: 1.0,  # cerebellar cortex
    17: 1.0, 53: 1.0, 18: 1.0, 54: 1.0,  # hippocampus, amygdala
    11: 0.85, 50: 0.85, 26: 0.85, 58: 0.85,  # caudate, accumbens
    12: 0.75, 51: 0.75,  # putamen
    10: 0.5, 49: 0.5,  # thalamus
    13: 0.35, 52: 0.35,  # pallidum
    28: 0.3, 60: 0.3,  # ventral diencephalon
    16: 0.2,  # brain stem
    2: 0.0, 41: 0.0, 7: 0.0, 46: 0.0,  # cerebral and cerebellar white matter
}
#: The cerebral cortex, where FCD lesions are placed.
CORTEX_LABELS = (3, 42)
#: Ventricles and CSF (4/43 lateral, 5/44 inferior lateral, 14/15 third/fourth, 24 CSF, 72 fifth).
CSF_LABELS = (4, 43, 5, 44, 14, 15, 24, 72)
#: Extra-cerebral labels of SynthSeg's maps, by where they lie and what they look like: the bone around
#: the brain (515, 516), the skin and subcutaneous fat (511), the eyes (506, CSF-like), the rest soft tissue.
BONE_LABELS = (515, 516)
FAT_LABELS = (511,)
EYE_LABELS = (506,)


def anatomy_files(directory: Path, split: str) -> list[Path]:
    """The label maps of ``split`` in ``directory`` (sorted); ``all``: every ``*.nii.gz`` / ``*.nii`` there.

    Raises ValueError naming the directory and the missing files when the split's maps are not all there.
    """
    directory = Path(directory)
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown anatomy split {split!r}; choose one of {SPLIT_CHOICES}")
    if not directory.is_dir():
        raise ValueError(f"--anatomy {directory}: not a directory of label maps")
    if split == "all":
        files = sorted(p for p in directory.iterdir() if p.name.endswith((".nii.gz", ".nii")))
        if not files:
            raise ValueError(f"--anatomy {directory}: no label map (*.nii.gz) found")
        return files
    files = [directory / ANATOMY_FILE.format(n) for n in ANATOMY_SPLIT[split]]
    missing = [p.name for p in files if not p.exists()]
    if missing:
        raise ValueError(f"--anatomy {directory}: the {split} split needs {', '.join(missing)}; point --anatomy at "
                         "the project's anatomy folder (shared/anatomy) or use --anatomy-split all for other maps")
    return files


def label_fractions(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Tissue fractions of a label map, each (X, Y, Z) float32 in [0, 1] (hard, before partial volume).

    Keys: ``gm``, ``wm``, ``csf``, ``skull`` (bone), ``scalp`` (skin and fat), ``soft`` (muscle, glands
    and other soft tissue), ``cortex`` (the cerebral cortex only, a part of ``gm``), ``brain`` (every
    brain label, ventricles included, CSF outside the brain excluded).
    """
    lab = np.asarray(labels).astype(np.int32)
    gm = np.zeros(lab.shape, np.float32)
    wm = np.zeros(lab.shape, np.float32)
    for value, grey in GREY_FRACTION.items():
        sel = lab == value
        gm[sel] = grey
        wm[sel] = 1.0 - grey
    csf = np.isin(lab, CSF_LABELS) | np.isin(lab, EYE_LABELS)
    known = np.isin(lab, list(GREY_FRACTION)) | csf
    brain_small = (lab > 0) & (lab < 500) & ~known  # vessels, optic chiasm, ... : a few voxels, CSF-like
    csf = csf | brain_small
    skull = np.isin(lab, BONE_LABELS)
    scalp = np.isin(lab, FAT_LABELS)
    soft = (lab >= 500) & ~skull & ~scalp & ~np.isin(lab, EYE_LABELS)
    brain = (lab > 0) & (lab < 500) & (lab != 24)
    return {"gm": gm, "wm": wm, "csf": csf.astype(np.float32), "skull": skull.astype(np.float32),
            "scalp": scalp.astype(np.float32), "soft": soft.astype(np.float32),
            "cortex": np.isin(lab, CORTEX_LABELS).astype(np.float32), "brain": brain.astype(np.float32)}


def _to_ants(data: np.ndarray, affine: np.ndarray):  # untyped: ants image
    import ants

    return ants.from_nibabel_nifti(nib.Nifti1Image(np.asarray(data, np.float32), affine))


def to_template_affine(brain_t1: np.ndarray, affine: np.ndarray, template_t1: np.ndarray,
                       template_affine: np.ndarray, scratch: Path) -> list[str]:
    """ANTs affine registration of a synthetic brain-only T1w (X, Y, Z) to the template's brain-only T1w.

    Seeded and at one ITK thread (reproducible); writes into ``scratch`` (an
    :func:`~bids_fcd.preprocessing.registration.ants_scratch` folder, whose path ANTs can write transforms
    under) and returns the forward transform files, which map template points to the label map's world points
    (what ``ants.apply_transforms`` needs to resample the label map's fractions into template space).
    """
    import ants

    from bids_fcd.preprocessing.pipeline import seed_ants
    from bids_fcd.preprocessing.registration import expected_transforms

    seed_ants()
    moving = ants.resample_image(_to_ants(brain_t1, affine), (2.0, 2.0, 2.0), use_voxels=False, interp_type=0)
    fixed = ants.resample_image(_to_ants(template_t1, template_affine), (2.0, 2.0, 2.0), use_voxels=False,
                                interp_type=0)
    outprefix = scratch / "anatomy_to_template_"
    ants.registration(fixed=fixed, moving=moving, type_of_transform="Affine", outprefix=str(outprefix),
                      aff_metric="mattes", aff_sampling=32, aff_random_sampling_rate=1.0)
    written = expected_transforms(outprefix, "Affine").affine
    if not written.is_file():
        raise ValueError(f"ANTs wrote no affine under {scratch}; check the free space of the temporary folder")
    return [str(written)]


@functools.lru_cache(maxsize=8)
def anatomy_head(label_path: str, template_res: int) -> TissueMaps:
    """The tissue maps of one label map in template millimetres on the template grid at ``template_res`` mm,
    padded as :func:`bids_fcd.phantom.generator.template_head` pads the template (cached per process: eight
    heads, about 3.5 GB at 1 mm, so that a cohort dealt from one split never builds a head twice).

    Fractions get partial volume (a Gaussian of 0.5 mm, and of the target voxel's size at coarser grids)
    before they are resampled with the registration's affine; ``cortex`` carries the cerebral cortex for
    lesion placement and ``brain`` the brain mask (fraction).
    """
    import ants

    from bids_fcd.atlas import load_template
    from bids_fcd.preprocessing.registration import ants_scratch

    img = nib.load(label_path)
    labels = np.asarray(img.dataobj)
    if labels.ndim != 3:
        raise ValueError(f"{label_path}: a label map must be 3D, got shape {labels.shape}")
    fr = label_fractions(labels)
    if fr["cortex"].sum() < 1000 or fr["wm"].sum() < 1000:
        raise ValueError(f"{label_path}: too few cortex or white-matter voxels; is this a FreeSurfer-style label map?")
    tpl = load_template(1)
    tpl_t1 = np.asarray(tpl["t1"].get_fdata(), np.float32) * (np.asarray(tpl["mask"].get_fdata()) > 0.5)
    brain_t1 = (0.62 * fr["gm"] + 1.0 * fr["wm"] + 0.18 * fr["csf"]) * (fr["brain"] > 0)
    # the target: the template grid at template_res, padded by 16 mm like the template phantom's head
    ref = load_template(template_res)["mask"]
    pad = int(np.ceil(16 / template_res))
    aff = ref.affine.copy()
    aff[:3, 3] -= aff[:3, :3] @ np.full(3, pad)
    shape = tuple(int(n) + 2 * pad for n in ref.shape[:3])
    fixed = _to_ants(np.zeros(shape, np.float32), aff)
    vox = float(np.mean(np.abs(np.diag(img.affine)[:3])))
    sigma = np.hypot(0.5, template_res / 2.355 if template_res > 1 else 0.0) / vox
    maps = {}
    with ants_scratch() as scratch:
        transforms = to_template_affine(brain_t1, img.affine, tpl_t1, tpl["t1"].affine, scratch)
        for key, frac in fr.items():
            moving = _to_ants(ndimage.gaussian_filter(frac, sigma), img.affine)
            out = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=transforms, interpolator="linear")
            maps[key] = np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)
    log.info("anatomy %s registered to the template (%s mm grid)", Path(label_path).name, template_res)
    return TissueMaps(gm=maps["gm"], wm=maps["wm"], csf=maps["csf"], skull=maps["skull"], scalp=maps["scalp"],
                      affine=aff, soft=maps["soft"], cortex=maps["cortex"], brain=maps["brain"])
