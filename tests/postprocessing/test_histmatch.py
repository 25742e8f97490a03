import numpy as np

from bids_fcd.postprocessing.histmatch import match_histogram


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
