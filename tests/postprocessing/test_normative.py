import numpy as np
import pytest

from bids_fcd.postprocessing.normative import (
    MAD_TO_SD,
    ReferenceParams,
    build_reference,
    leave_one_out_z,
    normative_z,
    robust_stats,
)

SHAPE = (16, 16, 8)


def _population(seed: int = 0):
    """A voxel-varying mean (rough) and SD (smooth, 0.8-1.6) on SHAPE."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 2.0, SHAPE).astype(np.float32)
    sd = np.broadcast_to(np.linspace(0.8, 1.6, SHAPE[0])[:, None, None], SHAPE).astype(np.float32)
    return mu, sd


def _controls(n: int, seed: int = 1):
    mu, sd = _population()
    rng = np.random.default_rng(seed)
    maps = [(mu + sd * rng.standard_normal(SHAPE)).astype(np.float32) for _ in range(n)]
    masks = [np.ones(SHAPE, bool) for _ in range(n)]
    return maps, masks


def test_new_control_has_standard_normal_z():
    maps, masks = _controls(25)
    ref = build_reference({"anomaly": maps}, masks)
    assert ref.n == 25 and ref.coverage.all()
    mu, sd = _population()
    mean, ref_sd = ref.stats["anomaly"]
    # the robust statistics estimate the population's mean and SD
    assert np.abs(mean - mu).mean() < 0.35
    assert abs(float(np.median(ref_sd / sd)) - 1.0) < 0.15
    new = (mu + sd * np.random.default_rng(99).standard_normal(SHAPE)).astype(np.float32)
    z = normative_z(new, np.ones(SHAPE, bool), ref)
    assert z.dtype == np.float32 and z.shape == SHAPE
    assert abs(float(z.mean())) < 0.15
    assert 0.8 < float(z.std()) < 1.25
    # a within-brain z of the raw map would not be standard normal: the voxel-varying mean dominates
    assert float(((new - new.mean()) / new.std() - z).std()) > 0.5


def test_shifting_the_reference_mean_shifts_z():
    maps, masks = _controls(12)
    new = _controls(1, seed=5)[0][0]
    ref = build_reference({"anomaly": maps}, masks)
    d = 0.7
    shifted = build_reference({"anomaly": [m + d for m in maps]}, masks)
    _, sd = ref.stats["anomaly"]
    assert np.allclose(shifted.stats["anomaly"][1], sd, atol=1e-5), "the robust SD is shift-invariant"
    z = normative_z(new, masks[0], ref)
    z_shift = normative_z(new, masks[0], shifted)
    assert np.allclose(z_shift, z - d / sd, atol=1e-4)
    assert np.all(z_shift < z)


def test_voxels_covered_by_too_few_controls_get_zero():
    maps, _ = _controls(10)
    masks = []
    for i in range(10):
        m = np.ones(SHAPE, bool)
        m[:, :, 0] = i < 8           # 8 of 10 controls have brain: covered (min_coverage 0.8)
        m[:, :, 1] = i < 7           # 7 of 10: not covered
        masks.append(m)
    ref = build_reference({"anomaly": maps}, masks, ReferenceParams(min_coverage=0.8))
    assert ref.coverage[:, :, 0].all() and not ref.coverage[:, :, 1].any() and ref.coverage[:, :, 2:].all()
    mean, sd = ref.stats["anomaly"]
    assert np.all(mean[:, :, 1] == 0) and np.all(sd[:, :, 1] == 1)
    x = maps[0] + 100.0              # far outside the controls everywhere
    z = normative_z(x, np.ones(SHAPE, bool), ref)
    assert np.all(z[:, :, 1] == 0)
    assert np.all(z[:, :, 0] > 10) and np.all(z[:, :, 2:] > 10)
    # the participant's own mask counts too
    own = np.ones(SHAPE, bool)
    own[3] = False
    assert np.all(normative_z(x, own, ref)[3] == 0)
    # at a partly covered voxel only the controls with brain there enter the statistics
    m0, _ = robust_stats(maps, masks, ref.coverage, ReferenceParams())
    assert np.allclose(m0[:, :, 0], np.median(np.stack(maps[:8])[:, :, :, 0], axis=0), atol=1e-5)


def test_sd_floor_keeps_z_finite_where_controls_agree():
    maps, masks = _controls(10)
    for m in maps:
        m[4, 4, 4] = 3.0             # every control has exactly the same value here: MAD = 0
    params = ReferenceParams(sd_smoothing_vox=0.0, sd_floor_fraction=0.5)
    ref = build_reference({"anomaly": maps}, masks, params)
    mean, sd = ref.stats["anomaly"]
    assert mean[4, 4, 4] == 3.0
    floor = 0.5 * float(np.median(sd))
    assert sd[4, 4, 4] >= floor * 0.999 and sd.min() >= floor * 0.999
    x = maps[0].copy()
    x[4, 4, 4] = 4.0
    z = normative_z(x, masks[0], ref)
    assert np.all(np.isfinite(z))
    assert np.isclose(z[4, 4, 4], 1.0 / sd[4, 4, 4], rtol=1e-5) and z[4, 4, 4] < 5.0
    # without the floor the raw MAD-SD is 0 there
    raw_mad = np.median(np.abs(np.stack(maps)[:, 4, 4, 4] - 3.0)) * MAD_TO_SD
    assert raw_mad == 0.0


def test_too_few_controls_raise():
    maps, masks = _controls(4)
    with pytest.raises(ValueError, match="at least 2 controls"):
        build_reference({"anomaly": maps[:1]}, masks[:1])
    with pytest.raises(ValueError, match="at least 5 controls, got 4"):
        build_reference({"anomaly": maps}, masks, ReferenceParams(min_controls=5))
    assert build_reference({"anomaly": maps}, masks).n == 4


def test_leave_one_out_does_not_score_a_control_against_itself():
    maps, masks = _controls(8)
    maps[0][5, 5, 5] += 6.0          # control 0 is an outlier at one voxel
    params = ReferenceParams()
    loo = leave_one_out_z(maps, masks, params)
    assert len(loo) == 8 and all(z.shape == SHAPE for z in loo)
    full = build_reference({"anomaly": maps}, masks, params)
    for i in range(8):
        assert not np.allclose(loo[i], normative_z(maps[i], masks[i], full))
    # the outlier is stronger when the control is left out of its own reference (median and MAD are
    # robust, so only a little)
    assert loo[0][5, 5, 5] > normative_z(maps[0], masks[0], full)[5, 5, 5] + 0.1
    # and equals the z against a reference built from the other seven
    rest = build_reference({"anomaly": maps[1:]}, masks[1:], params)
    assert np.allclose(loo[0], normative_z(maps[0], masks[0], rest), atol=1e-6)


def test_grid_mismatch_and_unknown_map_raise():
    maps, masks = _controls(3)
    ref = build_reference({"anomaly": maps, "flair": maps}, masks)
    with pytest.raises(ValueError, match="does not match"):
        normative_z(np.zeros((16, 16, 9), np.float32), np.ones((16, 16, 9), bool), ref)
    with pytest.raises(ValueError, match="no 'asymmetry' statistics"):
        normative_z(maps[0], masks[0], ref, name="asymmetry")
    assert normative_z(maps[0], masks[0], ref, name="flair").shape == SHAPE


def test_remove_drift_takes_out_a_smooth_field_but_keeps_a_small_blob():
    from bids_fcd.postprocessing.normative import remove_drift

    shape = (32, 32, 24)
    mask = np.zeros(shape, bool)
    mask[2:30, 2:30, 2:22] = True
    x, y, _ = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    field = 0.5 * x + 0.3 * y
    blob = np.zeros(shape, np.float32)
    blob[14:17, 14:17, 10:13] = 1.0
    out = remove_drift((field + blob).astype(np.float32), mask, 4)
    assert np.abs(out[mask & (blob == 0)]).mean() < 0.2 * np.abs(field[mask]).mean()
    assert out[blob > 0].mean() > 0.7
    assert np.all(out[~mask] == 0)
    np.testing.assert_array_equal(remove_drift(field.astype(np.float32), mask, 0), field.astype(np.float32))


def _noisy_brain_with_blob(radius_vox: float, contrast: float, seed: int = 0):
    """A (48, 40, 34) ellipsoid brain: smoothed unit noise + a smooth field, and a soft blob of ``contrast``."""
    from scipy import ndimage

    shape = (48, 40, 34)
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    mask = ((ii - 24) / 22.0) ** 2 + ((jj - 20) / 18.0) ** 2 + ((kk - 17) / 15.0) ** 2 < 1
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
    noise /= noise[mask].std()
    field = 3.0 * np.sin(ii / 12.0) + 2.0 * kk / shape[2]
    blob = ((ii - 16) ** 2 + (jj - 20) ** 2 + (kk - 17) ** 2) <= radius_vox**2
    soft = ndimage.gaussian_filter(blob.astype(float), 0.75) * contrast
    return mask, blob, noise.astype(np.float32), field.astype(np.float32), soft.astype(np.float32)


def test_robust_drift_keeps_a_lesion_larger_than_its_blocks_that_block_medians_subtract():
    from bids_fcd.config import PostConfig
    from bids_fcd.postprocessing.normative import ROBUST_DRIFT_CUT, remove_drift, remove_drift_robust

    mask, blob, noise, field, soft = _noisy_brain_with_blob(radius_vox=9, contrast=2.0)  # 18 mm at 2 mm, 2 SD
    healthy = (noise + field).astype(np.float32)
    lesioned = (healthy + soft).astype(np.float32)

    def kept(fn):  # the share of the blob's own signal that survives drift removal, inside the blob
        return float((fn(lesioned, mask, 4) - fn(healthy, mask, 4))[blob].mean() / soft[blob].mean())

    assert kept(remove_drift_robust) >= 0.8
    assert kept(remove_drift) < 0.6
    # the field is taken out as well as block medians take it out (noise is what is left)
    left_robust = float((remove_drift_robust(healthy, mask, 4) - noise)[mask].std())
    left_plain = float((remove_drift(healthy, mask, 4) - noise)[mask].std())
    assert left_robust < 1.6 * left_plain  # more of it stays (the price of ignoring bright voxels)
    assert left_robust < 0.45 * float(field[mask].std())
    out = remove_drift_robust(lesioned, mask, 4)
    assert out.dtype == np.float32 and np.all(out[~mask] == 0)
    np.testing.assert_array_equal(out, remove_drift_robust(lesioned, mask, 4))
    np.testing.assert_array_equal(remove_drift_robust(lesioned, mask, 1), lesioned)
    assert PostConfig().drift_cut_sd == ROBUST_DRIFT_CUT  # one default, held in two layers


def test_robust_drift_still_keeps_a_small_blob():
    from bids_fcd.postprocessing.normative import remove_drift_robust

    mask, blob, noise, field, soft = _noisy_brain_with_blob(radius_vox=2, contrast=3.0)
    healthy = (noise + field).astype(np.float32)
    diff = remove_drift_robust((healthy + soft).astype(np.float32), mask, 4) - remove_drift_robust(healthy, mask, 4)
    assert float(diff[blob].mean()) >= 0.85 * float(soft[blob].mean())


def test_restandardise_gives_robust_unit_spread_and_ignores_a_lesion():
    from bids_fcd.postprocessing.normative import restandardise

    rng = np.random.default_rng(1)
    z = (3.0 * rng.standard_normal((20, 20, 20)) + 1.0).astype(np.float32)
    inside = np.ones(z.shape, bool)
    z[:3, :3, :3] = 40.0
    out = restandardise(z, inside)
    core = out[3:, 3:, 3:]
    assert abs(float(np.median(core))) < 0.05 and 0.9 < float(core.std()) < 1.1
    assert out[0, 0, 0] > 10


def test_combined_z_is_a_standardised_sum_and_rejects_zero_weights():
    from bids_fcd.postprocessing.normative import NormativeReference, combined_z

    shape = (6, 6, 6)
    cov = np.ones(shape, bool)
    zero, one = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    ref = NormativeReference(cov, {"a": (zero, one), "b": (zero, one)}, 20)
    maps = {"a": np.full(shape, 2.0, np.float32), "b": np.full(shape, 4.0, np.float32)}
    z = combined_z(maps, cov, ref, {"a": 0.5, "b": 0.5}, restandardised=False)
    np.testing.assert_allclose(z, (2.0 + 4.0) / np.sqrt(2.0), rtol=1e-5)
    np.testing.assert_allclose(combined_z(maps, cov, ref, {"a": 1.0, "b": 0.0}, restandardised=False), 2.0)
    with pytest.raises(ValueError):
        combined_z(maps, cov, ref, {"a": 0.0, "b": 0.0})


def test_z_parts_are_the_terms_combined_z_sums():
    from bids_fcd.postprocessing.normative import NormativeReference, combined_z, z_parts

    rng = np.random.default_rng(3)
    shape = (12, 12, 12)
    cov = np.ones(shape, bool)
    zero, one = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    ref = NormativeReference(cov, {"a": (zero, one), "b": (zero, 2 * one)}, 20)
    maps = {k: (3.0 * rng.standard_normal(shape) + 1.0).astype(np.float32) for k in ("a", "b")}
    raw = z_parts(maps, cov, ref, ("a", "b"), restandardised=False)
    np.testing.assert_allclose(raw["b"], maps["b"] / 2.0, rtol=1e-5)
    parts = z_parts(maps, cov, ref, ("a", "b"))
    assert abs(float(np.median(parts["a"]))) < 0.05 and not np.allclose(parts["a"], raw["a"])
    w = {"a": 0.6, "b": 0.8}
    np.testing.assert_allclose(combined_z(maps, cov, ref, w), (0.6 * parts["a"] + 0.8 * parts["b"]) / 1.0,
                               rtol=1e-5, atol=1e-5)
