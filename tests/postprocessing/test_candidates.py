"""Second-look candidates: regions that stand out in the first pass's residual or in the FLAIR's
left-right asymmetry, against the brain's robust spread."""

import numpy as np

from bids_fcd.postprocessing.candidates import MAX_FRACTION, candidate_regions, robust_z

SHAPE = (40, 36, 20)


def _brain(seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = np.zeros(SHAPE, bool)
    mask[4:36, 4:32, 3:17] = True  # symmetric about the centre of axis 0
    flair = rng.normal(0, 0.1, SHAPE).astype(np.float32)
    return flair, mask


def _ball(center, radius):
    idx = np.indices(SHAPE)
    return sum((i - c) ** 2 for i, c in zip(idx, center, strict=True)) <= radius**2


def test_robust_z_is_not_set_by_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, (50, 50, 20)).astype(np.float32)
    mask = np.ones(x.shape, bool)
    x[:5] += 100.0  # 10 % extreme outliers
    z = robust_z(x, mask)
    assert abs(float(np.median(z[5:]))) < 0.2 and 0.8 < float(z[5:].std()) < 1.3
    assert (z[:5] > 30).all()
    assert (robust_z(x, np.zeros_like(mask)) == 0).all()


def test_a_fully_redrawn_one_sided_lesion_is_found_by_its_asymmetry():
    flair, mask = _brain()
    lesion = _ball((12, 18, 10), 3)
    flair[lesion] += 0.4
    pseudo = flair.copy()  # the first pass redrew the lesion: no residual at all
    cand = candidate_regions(flair, pseudo, mask, 2.0, 4.0, 3.0, 4.0)
    assert cand[lesion].mean() > 0.95
    assert not cand[_ball((27, 18, 10), 2)].any(), "its healthy mirror side is not a candidate"
    assert cand.sum() < 0.1 * mask.sum()


def test_a_symmetric_lesion_left_in_the_residual_is_found():
    flair, mask = _brain()
    lesions = _ball((12, 18, 10), 3) | _ball((27, 18, 10), 3)  # mirror images: no asymmetry
    pseudo = flair + np.random.default_rng(2).normal(0, 0.05, SHAPE).astype(np.float32)  # the first pass's error
    flair[lesions] += 0.4  # the first pass did not draw them
    cand = candidate_regions(flair, pseudo, mask, 2.0, 4.0, 3.0, 4.0)
    assert cand[lesions].mean() > 0.95


def test_candidates_grow_stay_in_the_brain_and_are_bounded():
    flair, mask = _brain()
    lesion = _ball((12, 18, 10), 2)
    flair[lesion] += 0.4
    tight = candidate_regions(flair, flair, mask, 2.0, 4.0, 3.0, 0.0)
    grown = candidate_regions(flair, flair, mask, 2.0, 4.0, 3.0, 4.0)
    assert tight.any() and (grown | ~tight).all() and grown.sum() > tight.sum()
    assert not (grown & ~mask).any()
    # a residual that is bright everywhere cannot make more than MAX_FRACTION (+ growth) of the brain a candidate
    rng = np.random.default_rng(3)
    pseudo = flair - np.abs(rng.normal(0, 1.0, SHAPE)).astype(np.float32)
    bounded = candidate_regions(flair, pseudo, mask, 2.0, 4.0, -10.0, 0.0)
    assert bounded.sum() <= MAX_FRACTION * mask.sum() + 1
