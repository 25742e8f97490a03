import time

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img

from bids_fcd.atlas import load_template
from bids_fcd.bids.layout import find_inputs, open_layout
from bids_fcd.config import PreprocConfig
from bids_fcd.preprocessing.pipeline import preprocess
from bids_fcd.training.presets import PRESETS

GRID = PRESETS["tiny"].net.grid


def test_preprocessing_lands_in_template_space_and_is_cached(phantom, work_dir, tiny_model):
    layout = open_layout(phantom, validate=False)
    inp = find_inputs(layout, "00001", None, {})
    t0 = time.time()
    pre = preprocess(inp.t1w, inp.flair, inp.roi, work_dir / inp.prefix, GRID, PreprocConfig())
    assert time.time() - t0 < 5, "the training fixture already preprocessed this participant: cache expected"
    mask = nib.load(pre.mask).get_fdata() > 0.5
    tpl_mask = resample_to_img(load_template(2)["mask"], nib.load(pre.mask), interpolation="nearest",
                               force_resample=True, copy_header=True).get_fdata() > 0.5
    dice = 2 * (mask & tpl_mask).sum() / (mask.sum() + tpl_mask.sum())
    assert dice > 0.85, f"brain mask vs template mask Dice {dice:.2f}"
    stack, m = pre.slices()
    assert stack.shape[1] == 2 and stack.shape[2:] == GRID.shape
    assert stack.min() >= -1
    for c in range(2):  # brain percentiles (1, 50) land on -1 and 0.6, nothing is clipped above
        assert abs(float(np.median(stack[:, c][m])) - 0.6) < 0.01
        assert abs(float(np.percentile(stack[:, c][m], 1)) + 1.0) < 0.05
    assert np.all(stack[:, 0][~m] == -1)
    for p in (pre.xfm_t1w_to_template, pre.xfm_flair_to_t1w, pre.t1w_native):
        assert p.exists()
    # both images sit on the template anatomy: T1w follows the template T1w and white matter, FLAIR
    # follows grey matter (GM is bright on FLAIR, dark on T1w); a misregistered FLAIR would not
    tpl = load_template(2)
    ref = nib.load(pre.t1w)

    def tmpl(key):
        img = resample_to_img(tpl[key], ref, force_resample=True, copy_header=True)
        return img.get_fdata()[mask]

    t1, fl = nib.load(pre.t1w).get_fdata()[mask], nib.load(pre.flair).get_fdata()[mask]
    assert np.corrcoef(t1, tmpl("t1"))[0, 1] > 0.8
    assert np.corrcoef(fl, tmpl("gm"))[0, 1] > 0.3 > np.corrcoef(t1, tmpl("gm"))[0, 1]
