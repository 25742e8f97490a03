import numpy as np

from bids_fcd.postprocessing.anomaly import asymmetry


def test_signed_asymmetry_keeps_hypointensity():
    flair = np.zeros((6, 4, 2), np.float32)
    flair[1, 2, 1] = 0.5
    mask = np.ones(flair.shape, bool)
    a = asymmetry(flair, mask, signed=True)
    assert a[1, 2, 1] == 0.5 and a[4, 2, 1] == -0.5 and a.sum() == 0


def test_asymmetry_mirrors_axis_0():
    flair = np.zeros((6, 4, 2), np.float32)
    flair[1, 2, 1] = 0.5
    mask = np.ones(flair.shape, bool)
    a = asymmetry(flair, mask)
    assert a[1, 2, 1] == 0.5 and a[4, 2, 1] == 0 and a.sum() == 0.5
