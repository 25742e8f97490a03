import numpy as np

from bids_fcd.config import GridConfig
from bids_fcd.preprocessing.grid import from_slices, grid_affine, normalise, to_slices


def test_grid_is_centred_and_sized():
    g = GridConfig(shape=(40, 30), spacing_mm=2.0, center_mm=(0.0, -10.0), z_min_mm=-20.0, z_max_mm=20.0)
    aff, shape = grid_affine(g)
    assert shape == (30, 40, 21)
    centre = aff[:3, :3] @ ((np.array(shape) - 1) / 2) + aff[:3, 3]
    assert np.allclose(centre[:2], [0.0, -10.0]) and np.isclose(centre[2], 0.0)


def test_slices_round_trip():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 6, 7)), rng.random((5, 6, 7))
    s = to_slices(a, b)
    assert s.shape == (7, 2, 6, 5)
    assert s[3, 1, 2, 4] == np.float32(b[4, 2, 3])
    assert np.allclose(from_slices(s[:, 0]), a)


def test_normalise_range_and_background():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (10, 10, 10))
    mask = np.zeros(img.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    out = normalise(img, mask, (0.5, 99.5))
    assert out.min() >= -1 and out.max() <= 1
    assert np.all(out[~mask] == -1)
    assert -0.3 < np.median(out[mask]) < 0.2
