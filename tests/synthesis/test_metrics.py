"""Synthesis metrics: MMD, bootstrap CIs, MS-SSIM diversity, KID features, mask statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_fcd.synthesis import metrics as M


def _sets(shift: float = 0.0, n: int = 60, d: int = 16, seed: int = 600):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift


def test_mmd_self_is_about_zero_and_shift_is_positive() -> None:
    x, y = _sets()
    sigma = M.median_bandwidth(x, y)
    assert abs(M.mmd2(x, x, sigma)) < 0.02
    same = M.mmd2(x, y, sigma)
    _, shifted = _sets(1.0)
    far = M.mmd2(x, shifted, sigma)
    assert abs(same) < 0.03
    assert far > 0.1 > same
    assert M.mmd2(x, shifted + 1.0, sigma) > far  # grows with the shift


def test_bootstrap_ci_contains_point_estimate_and_is_seeded() -> None:
    x, y = _sets(0.5)
    e1 = M.mmd_bootstrap(x, y, np.random.default_rng(601), n_boot=200)
    e2 = M.mmd_bootstrap(x, y, np.random.default_rng(601), n_boot=200)
    assert e1.low <= e1.value <= e1.high
    assert e1.high - e1.low > 0
    assert e1 == e2
    assert e1.low > 0  # a real shift: the CI excludes 0


def test_split_half_keeps_groups_apart() -> None:
    x, _ = _sets(n=40)
    groups = np.repeat(np.arange(8), 5)
    e = M.split_half_mmd(x, np.random.default_rng(602), n_boot=100, groups=groups)
    assert e.low <= e.value <= e.high
    assert abs(e.value) < 0.05


def test_ms_ssim_identical_is_one_and_diversity_ranks_sets() -> None:
    g = torch.Generator().manual_seed(603)
    a = torch.rand(4, 1, 48, 48, generator=g) * 2 - 1
    assert torch.allclose(M.ms_ssim_pairs(a, a.clone()), torch.ones(4), atol=1e-5)
    assert (M.ms_ssim_pairs(a, a.flip(0)) < 0.9).all()
    base = torch.rand(1, 1, 48, 48, generator=g)
    alike = (base + 0.02 * torch.rand(8, 1, 48, 48, generator=g)).numpy()
    varied = torch.rand(8, 1, 48, 48, generator=g).numpy()
    rng = np.random.default_rng(604)
    d_alike = M.ms_ssim_diversity(alike, rng, n_boot=50)
    d_varied = M.ms_ssim_diversity(varied, rng, n_boot=50)
    assert d_alike.value > 0.9 > d_varied.value
    assert d_alike.low <= d_alike.value <= d_alike.high


def test_ms_ssim_scales_follow_size() -> None:
    assert len(M.ms_ssim_weights((96, 96), 7)) == 4
    assert len(M.ms_ssim_weights((24, 24), 7)) == 2
    assert abs(sum(M.ms_ssim_weights((48, 48), 7)) - 1) < 1e-9
    with pytest.raises(ValueError, match="too small"):
        M.ms_ssim_weights((4, 4), 7)


def test_random_features_are_fixed_and_kid_detects_a_shift() -> None:
    net1, net2 = M.RandomFeatures(seed=605), M.RandomFeatures(seed=605)
    g = torch.Generator().manual_seed(606)
    imgs = torch.rand(40, 1, 32, 32, generator=g)
    f1, f2 = M.features(imgs, net1), M.features(imgs, net2)
    assert f1.shape == (40, 2 * (16 + 32 + 64))
    assert np.array_equal(f1, f2)
    other = M.features(torch.rand(40, 1, 32, 32, generator=g), net1)
    bright = M.features(torch.rand(40, 1, 32, 32, generator=g) + 0.5, net1)
    rng = np.random.default_rng(607)
    k_same, k_shift = M.kid(f1, other, rng, n_boot=50), M.kid(f1, bright, rng, n_boot=50)
    assert k_shift.value > 10 * max(abs(k_same.value), 1e-6)
    assert M.frechet(f1, bright) > M.frechet(f1, other)
    assert M.features(torch.rand(3, 1, 16, 16, 16, generator=g), M.RandomFeatures(spatial_dims=3)).shape[0] == 3


def test_mask_statistics_and_consistency() -> None:
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:4, 2:4] = True
    masks[0, 10, 10] = True
    masks[1, 5:8, 5:8] = True
    s = M.mask_stats(masks)
    assert s.n == 3 and s.empty_fraction == pytest.approx(1 / 3)
    assert s.area_mean == pytest.approx((5 + 9) / 2)
    assert s.components_mean == pytest.approx(1.5)
    img = np.full((3, 16, 16), 0.0)
    img[masks] = 1.0
    assert M.flair_ratio(img, masks) == pytest.approx(2.0)
    raw = np.where(masks, 0.7, -0.9)
    assert M.binarise(raw).sum() == masks.sum()
    assert M.binarise(raw, min_pixels=2).sum() == masks.sum() - 1
    assert M.near_binary_fraction(np.where(masks, 1.0, -1.0)) == 1.0
    assert M.near_binary_fraction(np.zeros((2, 4, 4))) == 0.0


def test_gradient_energy_sees_blur() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(608)
    img = np.full((4, 32, 32), -1.0)
    img[:, 4:28, 4:28] = rng.normal(0.0, 0.3, (4, 24, 24))
    blurred = img.copy()
    blurred[:, 4:28, 4:28] = ndimage.gaussian_filter(img[:, 4:28, 4:28], (0, 1.5, 1.5))
    assert M.gradient_energy(blurred) < 0.5 * M.gradient_energy(img)
