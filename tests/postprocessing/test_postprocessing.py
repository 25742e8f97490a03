import numpy as np
import pytest

from bids_fcd.config import LOBES
from bids_fcd.postprocessing.anomaly import anomaly_map, z_map
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.postprocessing.histmatch import match_histogram
from bids_fcd.postprocessing.lobes import participant_lobe_probabilities


def test_histogram_matching_reproduces_masked_quantiles():
    rng = np.random.default_rng(0)
    src = rng.normal(0, 1, (20, 20, 20)).astype(np.float32)
    ref = rng.gamma(2.0, 0.3, (20, 20, 20)).astype(np.float32)
    mask = np.zeros(src.shape, bool)
    mask[3:17, 3:17, 3:17] = True
    ref[~mask] = -50.0  # background must not leak into the CDF
    out = match_histogram(src, ref, mask)
    q = np.linspace(0.01, 0.99, 25)
    assert np.allclose(np.quantile(out[mask], q), np.quantile(ref[mask], q), atol=0.02)
    assert np.array_equal(out[~mask], src[~mask])
    # order is preserved (monotone map)
    i, j = np.argsort(src[mask])[[10, -10]]
    assert out[mask][i] < out[mask][j]


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


def test_clusters_ranked_filtered_and_labelled():
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-40, -40, -40]   # voxel (20, 20, 20) is the origin
    z = np.zeros((40, 40, 40), np.float32)
    z[5:9, 30:34, 28:32] = 3.0           # left (x<0), anterior, superior: FL
    z[6, 31, 29] = 4.0
    z[30:34, 30:34, 28:32] = 5.0         # right FL, higher peak → rank 1
    z[20, 5, 20] = 9.0                   # a single voxel (8 mm^3): below min size
    labels, cl = find_clusters(z, aff, threshold=1.65, min_size_mm3=50, max_clusters=10)
    assert [c.index for c in cl] == [1, 2]
    assert cl[0].hemisphere == "R" and cl[1].hemisphere == "L"
    assert cl[0].peak_z == 5.0 and cl[1].peak_z == 4.0
    assert cl[0].lobe == "FL" and abs(cl[0].size_mm3 - 64 * 8) < 1e-6
    assert labels[20, 5, 20] == 0 and labels[31, 31, 29] == 1 and labels[6, 31, 29] == 2
    assert cl[1].peak_mm == (-28.0, 22.0, 18.0)


def test_lobe_probabilities_sum_to_one():
    p = np.full((4, 6), 0.02)
    p[:, 0] = 0.9
    p[2] = [0.1, 0.02, 0.8, 0.04, 0.02, 0.02]
    out = participant_lobe_probabilities(p, np.array([0.5, 0.5, 0.5, 0.0]))
    assert list(out) == list(LOBES)
    assert abs(sum(out.values()) - 1) < 1e-9
    assert max(out, key=out.get) == "TL"
