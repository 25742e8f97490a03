import numpy as np

from bids_fcd.config import GridConfig
from bids_fcd.preprocessing.grid import from_slices, grid_affine, normalise, to_slices
from bids_fcd.training.presets import PRESETS


def test_grid_is_centred_and_sized():
    g = GridConfig(shape=(40, 30), spacing_mm=2.0, center_mm=(0.0, -10.0), z_min_mm=-20.0, z_max_mm=20.0)
    aff, shape = grid_affine(g)
    assert shape == (30, 40, 21)
    centre = aff[:3, :3] @ ((np.array(shape) - 1) / 2) + aff[:3, 3]
    assert np.allclose(centre[:2], [0.0, -10.0]) and np.isclose(centre[2], 0.0)


def test_the_cpu_grids_cover_the_same_box_and_mirror_about_the_midline():
    """The 2 and 1.5 mm presets: same centre, even widths (so reversing x mirrors the hemispheres, as the
    ``mirror`` T1w condition assumes), widths and heights divisible by 4 (the UNet downsamples twice)."""
    for name in ("default", "fine"):
        g = PRESETS[name].net.grid
        aff, (w, h, s) = grid_affine(g)
        assert w % 4 == 0 and h % 4 == 0
        x = aff[0, 3] + aff[0, 0] * np.arange(w)
        assert np.allclose(x, -x[::-1])
        assert abs(aff[2, 3] + aff[2, 2] * (s - 1) - 80.0) <= g.spacing_mm
    assert grid_affine(PRESETS["fine"].net.grid)[1] == (108, 128, 87)


def test_slices_round_trip():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 6, 7)), rng.random((5, 6, 7))
    s = to_slices(a, b)
    assert s.shape == (7, 2, 6, 5)
    assert s[3, 1, 2, 4] == np.float32(b[4, 2, 3])
    assert np.allclose(from_slices(s[:, 0]), a)


def test_normalise_percentiles_background_and_no_upper_clip():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (10, 10, 10))
    mask = np.zeros(img.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    out = normalise(img, mask, (1.0, 50.0))
    assert out.dtype == np.float32 and out.min() >= -1
    assert np.all(out[~mask] == -1)
    assert np.isclose(np.median(out[mask]), 0.6, atol=1e-5)          # the 50th percentile lands on 0.6
    assert np.isclose(np.percentile(out[mask], 1.0), -1.0, atol=1e-2)  # the 1st on -1
    assert np.mean(out[mask] <= -1.0 + 1e-6) < 0.02                   # only the lowest tail is clipped
    assert out[mask].max() > 1.0                                      # the upper tail is not clipped
    # the map is affine inside the brain above the clip: one scale for every voxel
    keep = mask & (out > -1.0)
    slope = (out[keep] - 0.6) / (img[keep] - np.median(img[mask]))
    assert np.allclose(slope, slope.mean(), rtol=1e-3)


def test_hyperintense_spot_keeps_its_contrast_and_leaves_the_rest_alone():
    rng = np.random.default_rng(1)
    img = rng.normal(100, 10, (24, 24, 24))
    mask = np.zeros(img.shape, bool)
    mask[2:22, 2:22, 2:22] = True
    spot = np.zeros(img.shape, bool)
    spot[10:12, 10:12, 10:12] = True
    p995 = np.percentile(img[mask], 99.5)
    lesion = img.copy()
    lesion[spot] = np.linspace(p995 + 40, p995 + 80, int(spot.sum()))  # well above the 99.5th percentile
    before, after = normalise(img, mask, (1.0, 50.0)), normalise(lesion, mask, (1.0, 50.0))
    vals = after[spot]
    assert np.all(vals > 1.0)
    assert np.all(np.diff(vals) > 0), "brighter raw voxels stay brighter"
    assert vals.min() > after[mask & ~spot].max() + 0.5, "the spot stays above the rest of the brain"
    rest = mask & ~spot
    assert np.abs(after[rest] - before[rest]).max() < 0.02
    assert np.array_equal(after[~mask], before[~mask])
    # the old (0.5, 99.5) scaling with a clip at 1 would have flattened the spot
    assert np.ptp(vals) > 0.5
