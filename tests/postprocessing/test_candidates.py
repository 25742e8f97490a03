"""Second-look candidates: regions that stand out in the first pass's residual or in the FLAIR's
left-right asymmetry, against the brain's robust spread."""

import numpy as np

from bids_fcd.postprocessing.candidates import MAX_FRACTION, candidate_regions
from bids_fcd.postprocessing.normative import restandardise

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


def test_the_candidates_robust_z_is_not_set_by_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, (50, 50, 20)).astype(np.float32)
    mask = np.ones(x.shape, bool)
    x[:5] += 100.0  # 10 % extreme outliers
    z = restandardise(x, mask)
    assert abs(float(np.median(z[5:]))) < 0.2 and 0.8 < float(z[5:].std()) < 1.3
    assert (z[:5] > 30).all()
    assert (restandardise(x, np.zeros_like(mask)) == 0).all()


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


def test_shrinking_brings_the_holes_residual_to_the_first_pass_noise_and_keeps_a_lesion_on_top():
    from bids_fcd.postprocessing.anomaly import anomaly_map
    from bids_fcd.postprocessing.candidates import shrink_to_first_pass

    rng = np.random.default_rng(4)
    flair, mask = _brain()
    first = flair + rng.normal(0, 0.05, SHAPE).astype(np.float32)
    hole = _ball((12, 18, 10), 6) & mask
    lesion = _ball((12, 18, 10), 2)
    second = first.copy()
    second[hole] = flair[hole] - 0.1 + rng.normal(0, 0.15, int(hole.sum())).astype(np.float32)  # noisier, darker
    second[lesion] -= 0.5  # the inpainting left the lesion out
    out = shrink_to_first_pass(flair, first, second, hole, mask, 2.0, 4.0)
    assert np.array_equal(out[~hole], second[~hole])
    r1 = anomaly_map(flair, first, mask, 4.0, 2.0, "signed")
    r_in = anomaly_map(flair, second, mask, 4.0, 2.0, "signed")
    r_out = anomaly_map(flair, out, mask, 4.0, 2.0, "signed")
    healthy = hole & ~_ball((12, 18, 10), 4)
    rest = mask & ~hole
    before = np.std(r_in[healthy]) / np.std(r1[rest])
    after = np.std(r_out[healthy]) / np.std(r1[rest])
    assert before > 1.5 and abs(after - 1) < abs(before - 1)
    assert abs(np.median(r_out[healthy]) - np.median(r1[rest])) < abs(np.median(r_in[healthy]) - np.median(r1[rest]))
    assert r_out[lesion].mean() > np.quantile(r_out[healthy], 0.99), "the lesion still stands out among the holes"
    # never amplified: a quieter second look is left at its own scale
    calm = first.copy()
    calm[hole] = flair[hole] + rng.normal(0, 0.01, int(hole.sum())).astype(np.float32)
    kept = shrink_to_first_pass(flair, first, calm, hole, mask, 2.0, 4.0)
    shift = (calm - kept)[hole]  # k = 1: the residual only moves by a constant
    assert np.ptp(shift) < 1e-5
