"""``bids-fcd phantom``: a synthetic cohort laid out exactly like OpenNeuro ds004199.

Each subject is the nilearn MNI152NLin2009aSym anatomy pushed through its own affine and smooth
nonlinear deformation, with a head around the brain, per-subject contrast jitter, a bias field,
Rician noise and int16 storage; the FLAIR lies in a different grid and orientation from the
T1w. FCD subjects carry a type II lesion whose mask is the ``_FLAIR_roi`` file. Deterministic
by seed.

Sizes: ``tiny`` (2-3 mm, tests), ``full`` (1 mm T1w, 3D FLAIR as in ds004199), ``clinical``
(1 mm T1w, a 2D axial FLAIR with 4-6 mm slices and a slice profile, stronger bias field, other
contrast, small lesions near sulci as well as large ones) and ``mixed`` (full or clinical per
subject, half each): the held-out benchmark cohorts are ``mixed``.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_fcd import __version__
from bids_fcd.atlas import load_template
from bids_fcd.config import LOBE_WORDS, LOBES
from bids_fcd.io import write_json, write_nifti, write_text
from bids_fcd.phantom import anatomy
from bids_fcd.phantom.real_anatomy import anatomy_head

log = logging.getLogger(__name__)

#: Lobe frequencies roughly as in ds004199 (frontal most often).
LOBE_WEIGHTS = {"FL": 0.50, "TL": 0.17, "PL": 0.17, "OL": 0.08, "IL": 0.08}


@dataclass(frozen=True)
class PhantomSize:
    """Grids of one size preset: template resolution and the two acquisition grids."""

    template_res: int
    t1_vox: float
    t1_fov: tuple[float, float, float]
    flair_vox: tuple[float, float, float]
    flair_fov: tuple[float, float, float]
    lesion_mm: tuple[float, float]
    noise: float
    #: 2D acquisitions: range of slice thickness (mm) drawn per subject; None = 3D FLAIR.
    slice_mm: tuple[float, float] | None = None
    bias_strength: float = 0.4
    #: Probabilities of a small (:data:`LESION_CLASSES` ``small``) and a large lesion instead of ``lesion_mm``.
    p_small: float = 0.0
    p_large: float = 0.0
    contrast_jitter: float = 0.05


#: Lesion radius ranges (mm) of the size classes; ``medium`` is the size preset's ``lesion_mm``.
LESION_CLASSES = {"small": (2.5, 4.0), "large": (12.0, 20.0)}
#: Relative FLAIR gain of a lesion (× grey-matter FLAIR): a third are subtle (10-18 %).
GAIN_RANGE, SUBTLE_GAIN_RANGE, P_SUBTLE = (0.12, 0.30), (0.10, 0.18), 1.0 / 3.0
#: ``--lesions``: ``random`` draws the class per subject with the size's probabilities; ``stratified``
#: cycles small, medium, large over the FCD subjects (benchmarks: every size is represented); ``small`` and
#: ``large`` give every FCD subject that class (a subgroup cohort, e.g. large lesions against drift removal).
LESION_DRAWS = ("random", "stratified", "small", "large")
#: ``--lesion-profile``: the power p of the core's weight 1 − (d/r)^p (:func:`anatomy.make_lesion`). ``peaked``
#: (p = 2) is brightest at the centre; ``flat`` (p = 8) is a uniform hyperintensity with a short rim, whose
#: inside a high-pass filter (drift removal) takes out; ``mixed`` draws one of the two per FCD subject.
LESION_PROFILES = {"peaked": 2.0, "flat": 8.0}
PROFILE_CHOICES = (*LESION_PROFILES, "mixed")

SIZES = {
    "tiny": PhantomSize(2, 2.5, (180, 220, 200), (3.0, 3.0, 3.5), (180, 220, 200), (7.0, 10.0), 0.015),
    "full": PhantomSize(1, 1.0, (180, 220, 200), (1.0, 1.0, 1.2), (176, 220, 200), (5.0, 9.0), 0.02,
                        p_small=0.25, p_large=0.1),
    "clinical": PhantomSize(1, 1.0, (180, 220, 200), (0.9, 0.9, 5.0), (190, 230, 180), (5.0, 9.0), 0.03,
                            slice_mm=(4.0, 6.0), bias_strength=0.8, p_small=0.25, p_large=0.2,
                            contrast_jitter=0.12),
}
#: ``mixed`` draws ``full`` or ``clinical`` per subject.
SIZE_CHOICES = (*SIZES, "mixed")

ACQ = [("iso08", "T2sel"), ("sag111", "tse3dvfl")]


@dataclass(frozen=True)
class SubjectSpec:
    """What participants.tsv will say about one phantom subject."""

    label: str
    group: str
    sex: str
    age_scan: int
    hemisphere: str
    lobe: str
    split: str
    acq: tuple[str, str]
    size: str = "tiny"
    #: ``small``, ``medium`` or ``large`` for ``--lesions stratified``; "" = drawn per subject.
    lesion_class: str = ""
    #: A key of :data:`LESION_PROFILES`.
    lesion_profile: str = "peaked"
    #: The real-anatomy label map this subject is built from (a path); "" = the template.
    anatomy: str = ""


def cohort_specs(n_fcd: int, n_hc: int, seed: int, size: str = "tiny", lesions: str = "random",
                 profile: str = "peaked", anatomies: tuple[str, ...] = ()) -> list[SubjectSpec]:
    """Participant rows for a cohort; subjects interleaved fcd/hc as labels 00001…

    ``size="mixed"`` gives each subject ``full`` or ``clinical`` (a separate random stream, so the
    rows of the other sizes do not change). ``lesions="stratified"`` gives the i-th FCD subject
    (in label order) the lesion class small, medium, large, small, …; ``small`` or ``large`` gives every FCD
    subject that class (see :data:`LESION_DRAWS`). ``profile`` is every lesion's :data:`LESION_PROFILES` key, or
    ``mixed`` (drawn per subject from a separate stream, like ``size``). ``anatomies`` (label-map paths) are
    dealt to the subjects in a seeded order, each once before any twice (a separate stream again).
    """
    if lesions not in LESION_DRAWS:
        raise ValueError(f"unknown --lesions {lesions!r}; choose one of {LESION_DRAWS}")
    if profile not in PROFILE_CHOICES:
        raise ValueError(f"unknown --lesion-profile {profile!r}; choose one of {PROFILE_CHOICES}")
    kinds = np.random.default_rng([seed, 29]).random(n_fcd + n_hc) < 0.5
    flats = np.random.default_rng([seed, 31]).random(n_fcd + n_hc) < 0.5
    dealt = [""] * (n_fcd + n_hc)
    if anatomies:
        deck = np.random.default_rng([seed, 37]).permutation(len(anatomies))
        dealt = [anatomies[int(deck[i % len(anatomies)])] for i in range(n_fcd + n_hc)]
    rng = np.random.default_rng([seed, 17])
    groups = ["fcd"] * n_fcd + ["hc"] * n_hc
    order = rng.permutation(len(groups))
    specs = []
    lobes, probs = list(LOBE_WEIGHTS), np.array(list(LOBE_WEIGHTS.values()))
    n_seen = 0
    for i, gi in enumerate(order):
        group = groups[gi]
        fcd = group == "fcd"
        cls = ""
        if fcd and lesions == "stratified":
            cls = ("small", "medium", "large")[n_seen % 3]
            n_seen += 1
        elif fcd and lesions in LESION_CLASSES:
            cls = lesions
        specs.append(
            SubjectSpec(
                label=f"{i + 1:05d}",
                group=group,
                sex=str(rng.choice(["M", "F"])),
                age_scan=int(rng.integers(1, 9)),
                hemisphere=str(rng.choice(["L", "R"])) if fcd else "n/a",
                lobe=str(rng.choice(lobes, p=probs / probs.sum())) if fcd else "n/a",
                split="train" if rng.random() < 0.7 else "test",
                acq=ACQ[int(rng.random() < 0.25)],
                size=size if size != "mixed" else ("clinical" if kinds[i] else "full"),
                lesion_class=cls,
                lesion_profile=("flat" if fcd and flats[i] else "peaked") if profile == "mixed" else profile,
                anatomy=dealt[i],
            )
        )
    return specs


def _grid_affine(vox: tuple[float, float, float], fov: tuple[float, float, float], perm: tuple[int, int, int],
                 flips: tuple[int, int, int], rot: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An acquisition grid: voxel sizes, FOV (mm, RAS order), axis permutation and flips."""
    shape_ras = [int(round(f / v)) for f, v in zip(fov, vox, strict=False)]
    cols = []
    for ax, flip in zip(perm, flips, strict=False):
        col = np.zeros(3)
        col[ax] = vox[ax] * (-1 if flip else 1)
        cols.append(col)
    m = rot[:3, :3] @ np.stack(cols, axis=1)
    shape = tuple(shape_ras[a] for a in perm)
    centre_vox = (np.array(shape) - 1) / 2.0
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = -m @ centre_vox + rot[:3, 3]
    return aff, shape  # type: ignore[return-value]


def _sample(vol: np.ndarray, vol_affine: np.ndarray, out_affine: np.ndarray, out_shape: tuple[int, int, int],
            subj_to_tmpl: np.ndarray, disp: np.ndarray, order: int) -> np.ndarray:
    """Resample a template-space volume into an acquisition grid through the subject warp.

    A voxel of the output maps to world (subject) mm by ``out_affine``, to template mm by
    ``subj_to_tmpl``, plus the smooth displacement ``disp`` (3, X, Y, Z in template voxels).
    """
    ijk = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float32) for n in out_shape), indexing="ij"), 0)
    m = np.linalg.inv(vol_affine) @ subj_to_tmpl @ out_affine
    coords = np.tensordot(m[:3, :3], ijk, axes=1) + m[:3, 3][:, None, None, None]
    d = np.stack([ndimage.map_coordinates(disp[k], coords, order=1, mode="nearest") for k in range(3)])
    return ndimage.map_coordinates(vol, coords + d, order=order, mode="constant", cval=0.0).astype(np.float32)


def binary_roi(partial_volume: np.ndarray) -> np.ndarray:
    """Lesion mask in the FLAIR grid from the lesion's partial-volume fractions (any shape, values 0-1).

    Voxels more than half lesion; where none is (a lesion of a few millimetres in thick slices), the voxels
    holding at least half of the largest fraction, so an FCD participant never gets an empty ``_roi``.
    """
    pv = np.asarray(partial_volume, np.float32)
    mask = pv > 0.5
    if not mask.any() and float(pv.max()) > 0:
        mask = pv >= 0.5 * float(pv.max())
    return mask


def _to_int16(img: np.ndarray, affine: np.ndarray, peak: float) -> nib.Nifti1Image:
    data = np.clip(np.round(img / peak * 1000.0), 0, 32767).astype(np.int16)
    out = nib.Nifti1Image(data, affine)
    out.set_qform(affine, code=1)
    out.set_sform(affine, code=1)
    out.header.set_xyzt_units("mm", "sec")
    return out


@functools.lru_cache(maxsize=2)
def template_head(template_res: int) -> anatomy.TissueMaps:
    """The template brain with CSF, skull and scalp around it (the same for every subject; cached)."""
    tpl = load_template(template_res)
    return anatomy.head_model(
        np.asarray(tpl["gm"].get_fdata(), np.float32),
        np.asarray(tpl["wm"].get_fdata(), np.float32),
        np.asarray(tpl["mask"].get_fdata()) > 0.5,
        tpl["gm"].affine,
        int(np.ceil(16 / template_res)),
    )


def lesion_radius(spec: SubjectSpec, size: PhantomSize, rng: np.random.Generator) -> float:
    """Core radius (mm) of a subject's lesion: its class if stratified, else drawn with ``size``'s odds."""
    cls = spec.lesion_class
    if not cls:
        kind = rng.random()
        cls = "small" if kind < size.p_small else "large" if kind > 1.0 - size.p_large else "medium"
    lo, hi = LESION_CLASSES.get(cls, size.lesion_mm)
    return float(rng.uniform(lo, hi))


def lesion_gain(rng: np.random.Generator) -> float:
    """FLAIR gain (fraction of grey-matter FLAIR): subtle (10-18 %) with probability :data:`P_SUBTLE`."""
    return float(rng.uniform(*(SUBTLE_GAIN_RANGE if rng.random() < P_SUBTLE else GAIN_RANGE)))


def make_subject(spec: SubjectSpec, size: PhantomSize, seed: int) -> dict[str, nib.Nifti1Image]:
    """Images of one subject: ``t1w``, ``flair`` and, for fcd, ``roi`` (in the FLAIR grid)."""
    rng = np.random.default_rng([seed, int(spec.label)])
    tissue = anatomy_head(spec.anatomy, size.template_res) if spec.anatomy else template_head(size.template_res)
    tissue = anatomy.vary_anatomy(tissue, rng)
    lesion = None
    if spec.group == "fcd":
        lesion = anatomy.make_lesion(tissue, spec.lobe, spec.hemisphere, rng, lesion_radius(spec, size, rng),
                                     gain=lesion_gain(rng), site=anatomy.draw_site(rng, spec.lobe),
                                     profile_power=LESION_PROFILES[spec.lesion_profile])
    t1, flair = anatomy.contrasts(tissue, lesion, rng, size.contrast_jitter)
    subj_to_tmpl = anatomy.random_warp(rng, max_rot_deg=8.0, max_shift_mm=8.0, scale_range=0.06)
    disp = anatomy.displacement_field(t1.shape, rng, amp_vox=3.0 / size.template_res, smooth_vox=14.0 / size.template_res)
    obl = anatomy.random_warp(rng, max_rot_deg=6.0, max_shift_mm=4.0, scale_range=0.0)
    t1_aff, t1_shape = _grid_affine((size.t1_vox,) * 3, size.t1_fov, (1, 2, 0), (0, 1, 0), np.eye(4))
    flair_vox = size.flair_vox
    if size.slice_mm is not None:  # 2D FLAIR: thick axial slices, the slice profile blurs through-plane
        thick = float(rng.uniform(*size.slice_mm))
        flair_vox = (size.flair_vox[0], size.flair_vox[1], thick)
        sigma_vox = thick / (2.0 * np.sqrt(2.0 * np.log(2.0))) / float(abs(tissue.affine[2, 2]))
        flair = ndimage.gaussian_filter1d(flair, sigma_vox, axis=2)
    fl_aff, fl_shape = _grid_affine(flair_vox, size.flair_fov, (0, 1, 2), (1, 0, 0), obl)
    out: dict[str, nib.Nifti1Image] = {}
    for name, vol, g_aff, g_shape, contrast in (
        ("t1w", t1, t1_aff, t1_shape, anatomy.T1_MEANS["wm"]),
        ("flair", flair, fl_aff, fl_shape, anatomy.FLAIR_MEANS["gm"]),
    ):
        img = _sample(vol, tissue.affine, g_aff, g_shape, subj_to_tmpl, disp, order=1)
        img = img * anatomy.bias_field(g_shape, rng, strength=size.bias_strength)
        img = anatomy.ghost(img, rng, axis=1)
        img = anatomy.rician(img, size.noise * contrast, rng)
        out[name] = _to_int16(img, g_aff, peak=1.6 * contrast)
    if lesion is not None:
        roi = _sample(lesion.mask.astype(np.float32), tissue.affine, fl_aff, fl_shape, subj_to_tmpl, disp, order=1)
        roi_img = nib.Nifti1Image(binary_roi(roi).astype(np.uint8), fl_aff)
        roi_img.header.set_xyzt_units("mm", "sec")
        roi_img.set_qform(fl_aff, code=1)
        roi_img.set_sform(fl_aff, code=1)
        out["roi"] = roi_img
    return out


T1_SIDECAR = {"Modality": "MR", "MagneticFieldStrength": 3, "Manufacturer": "Siemens", "MRAcquisitionType": "3D",
              "ScanningSequence": "GR\\IR", "EchoTime": 0.00254, "RepetitionTime": 1.66, "InversionTime": 0.85,
              "FlipAngle": 9}
FLAIR_SIDECAR = {"Modality": "MR", "MagneticFieldStrength": 3, "Manufacturer": "Siemens", "MRAcquisitionType": "3D",
                 "ScanningSequence": "SE\\IR", "EchoTime": 0.388, "RepetitionTime": 5, "InversionTime": 1.8,
                 "FlipAngle": 120}

PARTICIPANT_COLUMNS = ["participant_id", "group", "sex", "age_epilepsyonset", "age_scan", "mri_diagnosis",
                       "hemisphere", "lobe", "split"]


def write_cohort(out_dir: Path, n_fcd: int, n_hc: int, seed: int, size: str = "tiny",
                 lesions: str = "random", profile: str = "peaked", anatomies: tuple[str, ...] = ()) -> list[SubjectSpec]:
    """Write the whole BIDS dataset. Refuses a non-empty ``out_dir`` (names it in the error).

    ``anatomies``: label maps of real brains (:mod:`bids_fcd.phantom.real_anatomy`) to build the subjects from
    instead of the template; participants.tsv then names each subject's in an ``anatomy`` column.
    """
    if size not in SIZE_CHOICES:
        raise ValueError(f"unknown phantom size {size!r}; choose one of {list(SIZE_CHOICES)}")
    if profile not in PROFILE_CHOICES:
        raise ValueError(f"unknown --lesion-profile {profile!r}; choose one of {PROFILE_CHOICES}")
    if n_fcd < 0 or n_hc < 0 or n_fcd + n_hc == 0:
        raise ValueError("a phantom needs at least one subject: set --n-fcd and/or --n-hc above 0")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} exists and is not empty; choose a new directory for the phantom")
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = cohort_specs(n_fcd, n_hc, seed, size, lesions, profile, tuple(str(a) for a in anatomies))
    desc = {
        "Name": f"bids-fcd phantom cohort (seed {seed}, size {size}{', real anatomy' if anatomies else ''})",
        "BIDSVersion": "1.6.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["bids-fcd phantom generator"],
        "GeneratedBy": [{"Name": "bids-fcd phantom", "Version": __version__}],
    }
    write_json(out_dir / "dataset_description.json", desc)
    write_text(out_dir / ".bidsignore", "*_roi.nii.gz\n")
    write_text(out_dir / "README",
        "Synthetic FCD type II cohort shaped like OpenNeuro ds004199, made by `bids-fcd phantom`.\n"
        "Synthetic data: not for clinical or research conclusions.\n"
    )
    write_text(out_dir / "participants.json", json.dumps({
        "participant_id": {"Description": "participant label"},
        "group": {"Description": "the group a person belongs to", "Levels": {"fcd": "FCD", "hc": "healthy control"}},
        "sex": {"Description": "sex of the participant", "Levels": {"M": "male", "F": "female"}},
        "age_epilepsyonset": {"Description": "age at epilepsy onset", "Units": "year"},
        "age_scan": {"Description": "age at the MRI scan", "Units": "year"},
        "mri_diagnosis": {"Description": "radiological diagnosis from the MRI"},
        "hemisphere": {"Description": "hemisphere affected by the FCD", "Levels": {"L": "left", "R": "right"}},
        "lobe": {"Description": "lobe affected by the FCD", "Levels": {code: LOBE_WORDS[code] for code in LOBES[1:]}},
        "split": {"Description": "train/test split", "Levels": {"train": "training", "test": "test"}},
        **({"anatomy": {"Description": "the real brain's label map the phantom subject was built from"}}
           if anatomies else {}),
    }, indent=2) + "\n")
    columns = PARTICIPANT_COLUMNS + (["anatomy"] if anatomies else [])
    rows = ["\t".join(columns)]
    for s in specs:
        fcd = s.group == "fcd"
        row = [f"sub-{s.label}", s.group, s.sex, str(s.age_scan - 1) if fcd else "n/a",
               str(s.age_scan), "suspicion" if fcd else "n/a", s.hemisphere, s.lobe, s.split]
        rows.append("\t".join(row + ([Path(s.anatomy).name.split(".")[0]] if anatomies else [])))
    # ds004199's participants.tsv starts with a UTF-8 byte-order mark; so does ours.
    write_text(out_dir / "participants.tsv", "\ufeff" + "\n".join(rows) + "\n")
    for s in specs:
        log.info("phantom: sub-%s (%s%s, %s%s)", s.label, s.group, f", {s.hemisphere} {s.lobe}" if s.group == "fcd" else "",
                 s.size, f", {Path(s.anatomy).name}" if s.anatomy else "")
        imgs = make_subject(s, SIZES[s.size], seed)
        anat = out_dir / f"sub-{s.label}" / "anat"
        anat.mkdir(parents=True)
        t1_acq, fl_acq = s.acq
        base = f"sub-{s.label}"
        write_nifti(anat / f"{base}_acq-{t1_acq}_T1w.nii.gz", imgs["t1w"])
        write_nifti(anat / f"{base}_acq-{fl_acq}_FLAIR.nii.gz", imgs["flair"])
        write_json(anat / f"{base}_acq-{t1_acq}_T1w.json", T1_SIDECAR, indent=4)
        write_json(anat / f"{base}_acq-{fl_acq}_FLAIR.json", FLAIR_SIDECAR, indent=4)
        if "roi" in imgs:
            write_nifti(anat / f"{base}_acq-{fl_acq}_FLAIR_roi.nii.gz", imgs["roi"])
    return specs
