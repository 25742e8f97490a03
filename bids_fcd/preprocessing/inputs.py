"""Reading and checking one input image (T1w, FLAIR or lesion mask) before preprocessing uses it.

The header is checked first, without loading the voxels (a whole-body field of view is refused
before its gigabytes are read), then the voxels. Every refusal raises PreprocessingError with a
message that names the file, says what is wrong and how to fix it. What is accepted and what is
refused is listed in docs/inputs.md:

- a 4D file whose 4th dimension is 1 is read as its 3D volume (with a warning); a series of several
  volumes, or a 5D (vector) image, is refused (which volume is the FLAIR is not knowable);
- RGB and complex data are refused; every real dtype (int8 … float64) is read as float32;
- NaN or infinite voxels are refused (they would spread through smoothing and N4);
- a qform and sform that disagree by more than :data:`MAX_QFORM_SFORM_MM` are refused (ITK and
  nibabel may each take another one, so the image's position is ambiguous);
- a voxel side over :data:`MAX_VOXEL_MM` is refused, over :data:`THICK_VOXEL_MM` warned about;
- a field of view larger than :data:`MAX_FOV_MM` along an axis, or more than :data:`MAX_VOXELS`
  voxels, is refused from the header alone (the memory bound, docs/containers.md);
- a brain cut by the T1w's field of view (:func:`check_brain_in_view`) is refused after skull
  stripping; a FLAIR covering too little of the brain is refused after registration
  (``check_flair_overlap`` in :mod:`bids_fcd.preprocessing.pipeline`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_fcd.preprocessing.errors import PreprocessingError

log = logging.getLogger(__name__)

#: A voxel side (mm) above which an image is too coarse to register or to find a lesion in.
MAX_VOXEL_MM = 10.0
#: A voxel side (mm) above which lesions thinner than a slice may be missed (warned about).
THICK_VOXEL_MM = 3.0
#: The largest field of view (mm) along any voxel axis: a head with its neck fits in 300 mm.
MAX_FOV_MM = 400.0
#: The most voxels read. Reading and the working resolution (smoothing at full resolution) peak at about
#: 28 bytes a voxel (measured: a 256 x 256 x 1760 int16 image, 115 M voxels, 3.3 GiB), so 80 M voxels
#: (a 0.55 mm isotropic head) stay within the documented 2.6 GiB of a participant (docs/containers.md).
MAX_VOXELS = 80_000_000
#: The largest disagreement (mm, over the field of view's corners) tolerated between qform and sform.
MAX_QFORM_SFORM_MM = 1.0
#: Brain cross-section (mm²) on a face of the T1w's field of view above which the field of view cuts
#: through the brain: refused (a cut through the middle of the cerebrum is 100-150 cm²) ...
MAX_BRAIN_ON_FACE_MM2 = 8000.0
#: ... and above which part of the brain is out of view: warned about (the medulla leaving through the
#: lower face is 1-3 cm²; scans of ds004199-like data and the real-anatomy phantom clipping the occipital
#: pole or the cerebellum, which run, showed 23-34 cm²).
WARN_BRAIN_ON_FACE_MM2 = 2000.0
#: Fewest voxels along an axis of a head volume.
MIN_VOXELS_PER_AXIS = 8

GZIP_MAGIC = b"\x1f\x8b"


def _load_header(path: Path, what: str) -> nib.Nifti1Image:
    """The image with its voxels not yet read; PreprocessingError for an empty, misnamed or broken file."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise ValueError("the file is empty")
        if path.name.endswith(".gz"):
            with open(path, "rb") as fh:
                if fh.read(2) != GZIP_MAGIC:
                    raise PreprocessingError(
                        f"{path}: cannot read the {what} image: the file is not gzip-compressed although its name ends "
                        "in .gz, so it is not a complete NIfTI under that name; compress it (gzip) or rename it to .nii"
                    )
        img = nib.load(path)
        img.header.get_data_shape()
    except PreprocessingError:
        raise
    except Exception as exc:  # nibabel and gzip raise many types for broken files
        raise PreprocessingError(
            f"{path}: cannot read the {what} image ({type(exc).__name__}: {exc}); the file is "
            "not a complete NIfTI (truncated, empty, or not gzip-compressed despite .gz?): "
            "convert it again from DICOM"
        ) from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise PreprocessingError(
            f"{path}: the {what} image is a {type(img).__name__}, not NIfTI; convert it to NIfTI (e.g. dcm2niix)"
        )
    return img


def fov_corners(shape: tuple[int, ...]) -> np.ndarray:
    """(4, 8) homogeneous voxel coordinates of the 8 outer corners of a 3D grid of ``shape``."""
    lo, hi = np.full(3, -0.5), np.asarray(shape[:3], float) - 0.5
    grid = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
    return np.vstack([grid, np.ones(8)])


def check_header(img: nib.Nifti1Image, path: Path, what: str) -> None:
    """Cheap checks of the header alone (shape, dtype, voxel size, field of view, qform/sform).

    Raises PreprocessingError naming ``path``; logs a warning for accepted oddities.
    """
    shape = tuple(int(n) for n in img.shape)
    dtype = img.get_data_dtype()
    if dtype.fields is not None:
        raise PreprocessingError(
            f"{path}: the {what} image holds RGB (colour) voxels; a greyscale MR image is "
            "required: convert the original scanner series again (e.g. dcm2niix)"
        )
    if dtype.kind == "c":
        raise PreprocessingError(f"{path}: the {what} image holds complex voxels; export the magnitude image")
    if len(shape) > 4 or (len(shape) == 4 and shape[3] != 1) or len(shape) < 3:
        raise PreprocessingError(
            f"{path}: the {what} image has shape {shape}; a single 3D volume is required "
            "(split 4D series and choose one volume, e.g. fslroi IN OUT 0 1)"
        )
    if len(shape) == 4:
        log.warning("%s: the %s image is 4D with one volume %s; reading it as that 3D volume", path, what, shape)
    if min(shape[:3]) < MIN_VOXELS_PER_AXIS:
        raise PreprocessingError(
            f"{path}: the {what} image has shape {shape}; fewer than {MIN_VOXELS_PER_AXIS} voxels "
            "along an axis is not a head volume"
        )
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    if not (np.all(np.isfinite(zooms)) and np.all(zooms > 0)) or abs(np.linalg.det(img.affine[:3, :3])) < 1e-6:
        raise PreprocessingError(
            f"{path}: the {what} image has a degenerate affine or voxel size {tuple(zooms)}; "
            "fix the header (e.g. convert again from DICOM)"
        )
    if zooms.max() > MAX_VOXEL_MM:
        raise PreprocessingError(
            f"{path}: the {what} image has {zooms.max():g} mm voxels (voxel size "
            f"{tuple(round(float(z), 3) for z in zooms)}); more than {MAX_VOXEL_MM:g} mm is too "
            "coarse to register or to find a lesion in: use a 3D or thinner-slice acquisition"
        )
    if round(float(zooms.max()), 2) > THICK_VOXEL_MM:  # a header's float32 stores 3 mm as 3.00001
        log.warning(
            "%s: the %s image has %g mm voxels along an axis; lesions thinner than that may be missed", path, what,
            round(float(zooms.max()), 2),
        )
    fov = np.asarray(shape[:3], float) * zooms
    n_voxels = int(np.prod(shape[:3], dtype=np.int64))
    if fov.max() > MAX_FOV_MM or n_voxels > MAX_VOXELS:
        raise PreprocessingError(
            f"{path}: the {what} image's field of view is {' x '.join(f'{f:.0f}' for f in fov)} mm "
            f"({n_voxels / 1e6:.0f} M voxels); a head fits in {MAX_FOV_MM:.0f} mm and {MAX_VOXELS / 1e6:.0f} M voxels, so "
            "this is refused before its voxels are read (memory): crop it to the head first (e.g. FSL robustfov or "
            "fslroi) or resample it to at most 1 mm voxels"
        )
    _check_qform_sform(img, shape, path, what)


def _check_qform_sform(img: nib.Nifti1Image, shape: tuple[int, ...], path: Path, what: str) -> None:
    """Both set and disagreeing beyond :data:`MAX_QFORM_SFORM_MM` at the field of view's corners: refused."""
    hdr = img.header
    if int(hdr["qform_code"]) <= 0 or int(hdr["sform_code"]) <= 0:
        return
    q, s = hdr.get_qform(), hdr.get_sform()
    corners = fov_corners(shape)
    gap = float(np.linalg.norm((q @ corners - s @ corners)[:3], axis=0).max())
    if gap <= MAX_QFORM_SFORM_MM:
        return
    flip = np.sign(np.linalg.det(q[:3, :3])) != np.sign(np.linalg.det(s[:3, :3]))
    raise PreprocessingError(
        f"{path}: the {what} image's qform and sform disagree by up to {gap:.1f} mm over its field of view"
        f"{' and are mirror images of each other (left-right flip)' if flip else ''}; tools read one or the other, so "
        f"where the head is is ambiguous: make them agree (fslorient -copysform2qform if the sform "
        f"({''.join(nib.aff2axcodes(s))}) is right, -copyqform2sform if the qform ({''.join(nib.aff2axcodes(q))}) is) "
        "or convert again from DICOM"
    )


def _check_voxels(img: nib.Nifti1Image, path: Path, what: str) -> None:
    """NaN/infinite (or beyond float32) and constant images are refused; reads the voxels once."""
    data = np.asanyarray(img.dataobj)
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        bad = int(finite.size - np.count_nonzero(finite))
        del finite
        if bad:
            raise PreprocessingError(
                f"{path}: the {what} image has {bad} NaN or infinite voxels ({100 * bad / data.size:.2g} % of them); "
                "replace them (e.g. fslmaths IN -nan OUT) or export the image again"
            )
        if float(np.abs(data).max()) > float(np.finfo(np.float32).max):
            raise PreprocessingError(f"{path}: the {what} image has values beyond the float32 range; rescale it")
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        raise PreprocessingError(f"{path}: the {what} image is constant ({lo:g} everywhere); check the export")


def read_image(path: Path, what: str):  # untyped: ants image
    """The checked image as a 3D float ``ants`` image (geometry as ITK reads it).

    Args:
        path: a NIfTI file. what: its role in messages ("T1w", "FLAIR", "lesion mask").
    Raises:
        PreprocessingError naming ``path`` when the file is broken or not a usable head image.
    """
    import ants

    img = _load_header(path, what)
    check_header(img, path, what)
    try:
        _check_voxels(img, path, what)
    except PreprocessingError:
        raise
    except Exception as exc:  # a truncated payload shows only now
        raise PreprocessingError(
            f"{path}: cannot read the {what} image ({type(exc).__name__}: {exc}); the file is "
            "not a complete NIfTI (truncated?): convert it again from DICOM"
        ) from exc
    img3 = ants.image_read(str(path))
    if img3.dimension == 4:  # a 4D file holding one volume: keep the 3D geometry
        img3 = ants.slice_image(img3, axis=3, idx=0)
    return img3


def _face_side(direction: np.ndarray, axis: int, end: int) -> str:
    """The anatomical side (e.g. "superior") of one face of an ITK image (``direction`` in LPS)."""
    ras = np.asarray(direction, float)[:, axis] * np.array([-1.0, -1.0, 1.0]) * (1 if end else -1)
    k = int(np.argmax(np.abs(ras)))
    return (("left", "right"), ("posterior", "anterior"), ("inferior", "superior"))[k][int(ras[k] > 0)]


def brain_on_faces(mask: np.ndarray, spacing: tuple[float, ...]) -> list[tuple[int, int, float]]:
    """(axis, end 0/1, brain area in mm²) for each of the 6 faces of a (I, J, K) bool mask's grid."""
    out = []
    for axis in range(3):
        other = [float(spacing[i]) for i in range(3) if i != axis]
        for end in (0, 1):
            area = float(np.count_nonzero(np.take(mask, -end, axis=axis))) * other[0] * other[1]
            out.append((axis, end, area))
    return out


def check_brain_in_view(mask, t1w: Path) -> None:  # untyped: ants image
    """Refuse a T1w whose field of view cuts through the brain (partial-brain coverage); warn when
    part of it (a pole, the cerebellum) is out of view.

    Args:
        mask: the native brain mask (ants image, > 0.5 = brain). t1w: the file, for the message.
    """
    arr = mask.numpy() > 0.5
    axis, end, area = max(brain_on_faces(arr, tuple(mask.spacing)), key=lambda face: face[2])
    side = _face_side(mask.direction, axis, end)
    if area > MAX_BRAIN_ON_FACE_MM2:
        raise PreprocessingError(
            f"{t1w}: the T1w's field of view cuts through the brain ({area / 100:.0f} cm² of brain on its {side} "
            f"edge, more than {MAX_BRAIN_ON_FACE_MM2 / 100:.0f} cm²), so only part of the brain was scanned; the whole "
            "brain must be in view: use a T1w covering the whole head"
        )
    if area > WARN_BRAIN_ON_FACE_MM2:
        log.warning(
            "%s: %.0f cm² of brain lie on the %s edge of the T1w's field of view: part of the brain is out of view "
            "and is not analysed",
            t1w,
            area / 100,
            side,
        )
