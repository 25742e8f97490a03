import numpy as np
import pytest

from bids_fcd.postprocessing.anomaly import anomaly_map, z_map


def test_anomaly_and_z():
    real = np.zeros((10, 10, 10), np.float32)
    pseudo = real.copy()
    real[5, 5, 5] = 1.0
    mask = np.ones(real.shape, bool)
    mask[0] = False
    a = anomaly_map(real, pseudo, mask, 0.0, 2.0)
    assert a[5, 5, 5] == 1.0 and a.sum() == 1.0
    assert np.all(anomaly_map(real, pseudo, mask, 4.0, 2.0)[~mask] == 0)
    z = z_map(anomaly_map(real, pseudo, mask, 4.0, 2.0), mask)
    assert abs(z[mask].mean()) < 1e-4 and abs(z[mask].std() - 1) < 1e-3
    assert np.unravel_index(np.argmax(z), z.shape) == (5, 5, 5)


def test_signed_and_absolute_anomaly():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (10, 10, 10)).astype(np.float32)
    pseudo = real.copy()
    real[3, 3, 3] += 2.0             # hyperintense
    real[6, 6, 6] -= 1.5             # hypointense
    mask = np.ones(real.shape, bool)
    mask[0] = False
    real[0, 1, 1] += 5.0             # outside the brain: ignored
    signed = anomaly_map(real, pseudo, mask, 0.0, 2.0, kind="signed")
    assert np.isclose(signed[3, 3, 3], 2.0) and np.isclose(signed[6, 6, 6], -1.5)
    assert np.all(signed[~mask] == 0) and np.count_nonzero(signed) == 2
    absolute = anomaly_map(real, pseudo, mask, 0.0, 2.0, kind="absolute")
    assert np.array_equal(absolute, np.abs(signed))
    assert np.array_equal(anomaly_map(real, pseudo, mask, 0.0, 2.0), absolute)   # the function's default
    # smoothed: the signs survive (hypointense neighbourhood negative), zero outside the brain
    sm = anomaly_map(real, pseudo, mask, 4.0, 2.0, kind="signed")
    assert sm[3, 3, 3] > 0 > sm[6, 6, 6] and np.all(sm[~mask] == 0)
    assert np.all(anomaly_map(real, pseudo, mask, 4.0, 2.0, kind="absolute") >= 0)
    with pytest.raises(ValueError, match="unknown anomaly kind 'squared'"):
        anomaly_map(real, pseudo, mask, 0.0, 2.0, kind="squared")
