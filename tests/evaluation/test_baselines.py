import numpy as np
import pytest

from bids_fcd.evaluation.baselines import asymmetry, control_zscore


def test_control_zscore_flags_hyperintensity_only():
    rng = np.random.default_rng(0)
    mask = np.ones((8, 8, 4), bool)
    controls = [rng.normal(0, 0.1, mask.shape) for _ in range(5)]
    flair = np.mean(controls, axis=0)
    flair[2, 3, 1] += 1.0
    flair[5, 5, 2] -= 1.0
    z = control_zscore(flair, controls, [mask] * 5, mask)
    assert np.unravel_index(np.argmax(z), z.shape) == (2, 3, 1)
    assert z[5, 5, 2] == 0 and z.min() >= 0
    with pytest.raises(ValueError, match="at least one control"):
        control_zscore(flair, [], [], mask)


def test_asymmetry_mirrors_axis_0():
    flair = np.zeros((6, 4, 2), np.float32)
    flair[1, 2, 1] = 0.5
    mask = np.ones(flair.shape, bool)
    a = asymmetry(flair, mask)
    assert a[1, 2, 1] == 0.5 and a[4, 2, 1] == 0 and a.sum() == 0.5
