"""Domain-randomised training brains made on the model grid."""

import numpy as np

from bids_fcd.phantom.grid_brains import grid_brain
from bids_fcd.training.presets import PRESETS

GRID = PRESETS["inpaint-tiny"].net.grid


def test_grid_brain_is_seeded_normalised_and_lesions_lie_in_the_brain():
    a, b = grid_brain(11, 0, GRID, p_fcd=1.0), grid_brain(11, 0, GRID, p_fcd=1.0)
    assert np.array_equal(a.stack, b.stack) and np.array_equal(a.mask, b.mask)
    assert a.stack.shape[1] == 2 and a.stack.shape[0] == a.mask.shape[0]
    for c in range(2):
        vals = a.stack[:, c][a.mask]
        assert np.percentile(vals, 50) == np.float32(0.6) or abs(np.percentile(vals, 50) - 0.6) < 1e-3
        assert (a.stack[:, c][~a.mask] == -1).all()
    assert a.roi is not None and a.roi.any() and a.lobe != "n/a"
    assert (a.roi & ~a.mask).sum() <= 0.2 * a.roi.sum()
    other = grid_brain(11, 1, GRID, p_fcd=0.0)
    assert other.roi is None and not np.array_equal(other.stack, a.stack)
