"""Preprocessing of one real head: an MS patient's 2D T1w and FLAIR (0.9 x 0.9 x 3 mm and
0.7 x 0.7 x 3 mm, other grids, with skull, neck and eyes, in scanner space) from the project's
shared/real-scans (beside the checkout; docs/real-scans.md), onto the shipped model's grid.

The scan is sub-ms03 ses-2 of the Ljubljana longitudinal MS database (CC BY): the smallest of the
real MS sessions, and its FLAIR slab stops short of the vertex, so the brain mask's restriction to
the FLAIR's field of view is exercised. Measured on the project's 2-core machine (2026-12, under
load): preprocessing 33 s; brain 1530 cm³; deepbet's mask registered to the template: Dice 0.980
with the template's brain, 3.2 % of it outside, nothing more than 6 mm outside; the restricted mask
covers the template's brain with Dice 0.996; 0.9 cm³ of brain outside the FLAIR's view; T1w
correlation with the template T1w 0.603; FLAIR correlation with the template's grey matter 0.232
(the T1w's -0.185). The thresholds below leave a margin around these.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img
from scipy import ndimage

from bids_fcd.atlas import load_template
from bids_fcd.config import GridConfig, PreprocConfig, from_dict
from bids_fcd.nets.locate import packaged_models
from bids_fcd.preprocessing.pipeline import Preprocessed, preprocess, template_brain

#: The project's real scans: ``shared/real-scans`` beside the checkout (CI copies ``shared/`` there).
REAL_SCANS = Path(__file__).resolve().parents[3] / "shared" / "real-scans"
ANAT = REAL_SCANS / "sub-ms03" / "ses-2" / "anat"
T1W, FLAIR = ANAT / "sub-ms03_ses-2_T1w.nii.gz", ANAT / "sub-ms03_ses-2_FLAIR.nii.gz"

pytestmark = pytest.mark.skipif(not (T1W.is_file() and FLAIR.is_file()),
                                reason=f"the project's real scans are not beside the checkout ({ANAT})")


def shipped_grid() -> GridConfig:
    """The shipped model's grid (1.5 mm), read from its config.json."""
    config = json.loads((packaged_models() / "phantom-default" / "config.json").read_text())
    return from_dict(GridConfig, config["net"]["grid"])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Preprocessed, GridConfig, list[str]]:
    """The MS session preprocessed once, and the warnings it logged."""
    grid = shipped_grid()
    handler = _Collect()
    logging.getLogger("bids_fcd").addHandler(handler)
    try:
        pre = preprocess(T1W, FLAIR, None, tmp_path_factory.mktemp("work") / "sub-ms03_ses-2", grid, PreprocConfig())
    finally:
        logging.getLogger("bids_fcd").removeHandler(handler)
    return pre, grid, handler.warnings


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(record.getMessage())


def test_the_brain_mask_holds_the_brain_and_no_skull(real):
    pre, grid, _ = real
    native = nib.load(pre.folder / "mask_native.nii.gz")  # deepbet's mask on the T1w (working resolution)
    volume_cm3 = float((native.get_fdata() > 0.5).sum() * np.prod(native.header.get_zooms()[:3]) / 1000)
    assert 1200 < volume_cm3 < 1900, f"brain {volume_cm3:.0f} cm³ (measured 1530): skull or neck kept, or brain cut"
    # deepbet's mask through the registration, before any restriction: on the template's brain
    ref = ants.image_read(str(pre.mask))
    raw = ants.apply_transforms(fixed=ref, moving=ants.image_read(str(pre.folder / "mask_native.nii.gz")),
                                transformlist=pre.to_template(), interpolator="linear").numpy() > 0.5
    brain = template_brain(grid)
    assert dice(raw, brain) > 0.95, f"registered mask vs template brain Dice {dice(raw, brain):.3f} (measured 0.980)"
    outside = float((raw & ~brain).sum() / raw.sum())
    assert outside < 0.08, f"{100 * outside:.1f} % of the registered mask outside the template's brain (measured 3.2 %)"
    far = ndimage.distance_transform_edt(~brain) * grid.spacing_mm > 6.0
    far_cm3 = float((raw & far).sum() * grid.spacing_mm**3 / 1000)
    assert far_cm3 < 1.0, f"{far_cm3:.2f} cm³ of the mask lie > 6 mm outside the template's brain (skull, eyes, neck?)"


def test_the_mask_is_kept_to_the_template_brain_and_the_flair_view(real):
    pre, grid, warnings = real
    mask = nib.load(pre.mask).get_fdata() > 0.5
    brain = template_brain(grid)
    assert not (mask & ~brain).any(), "the mask must lie inside the template's brain"
    assert dice(mask, brain) > 0.98, f"mask vs template brain Dice {dice(mask, brain):.3f} (measured 0.996)"
    # the FLAIR's field of view on the grid, through the FLAIR's own chain of transforms
    ref = ants.image_read(str(pre.mask))
    fl = ants.image_read(str(FLAIR))
    fov = ants.apply_transforms(fixed=ref, moving=fl.new_image_like(np.ones(fl.shape, np.float32)),
                                transformlist=pre.to_template() + [str(pre.xfm_flair_to_t1w)],
                                interpolator="nearestNeighbor").numpy() > 0.5
    assert not (mask & ~fov).any(), "the mask must lie inside the FLAIR's field of view"
    assert (brain & ~fov).sum() > 0, "this FLAIR slab stops short of the vertex (0.9 cm³ of brain measured)"
    assert not any("registration to the template may have failed" in w for w in warnings), warnings
    assert not any("lesions thinner than" in w for w in warnings), f"3 mm slices (float32 3.00001) are not thick: {warnings}"


def test_both_images_sit_on_the_template_anatomy(real):
    pre, _, _ = real
    mask = nib.load(pre.mask).get_fdata() > 0.5
    ref = nib.load(pre.t1w)
    tpl = load_template(1)

    def template(key: str) -> np.ndarray:
        return resample_to_img(tpl[key], ref, force_resample=True, copy_header=True).get_fdata()[mask]

    t1, fl = ref.get_fdata()[mask], nib.load(pre.flair).get_fdata()[mask]
    r_t1 = np.corrcoef(t1, template("t1"))[0, 1]
    assert r_t1 > 0.5, f"T1w vs template T1w correlation {r_t1:.3f} (measured 0.603)"
    gm = template("gm")
    r_fl, r_t1_gm = np.corrcoef(fl, gm)[0, 1], np.corrcoef(t1, gm)[0, 1]
    # grey matter is bright on FLAIR and dark on T1w: a FLAIR registered to its T1w follows it
    assert r_fl > 0.15 > 0 > r_t1_gm, f"FLAIR~GM {r_fl:.3f} (measured 0.232), T1w~GM {r_t1_gm:.3f} (-0.185)"
    stack, m = pre.slices()
    for c in range(2):  # the brain's median lands on 0.6, background on -1
        assert abs(float(np.median(stack[:, c][m])) - 0.6) < 0.01
    assert np.all(stack[:, 0][~m] == -1)
