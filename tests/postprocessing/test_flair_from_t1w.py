import numpy as np

from bids_fcd.postprocessing.anomaly import flair_from_t1w


def _tissue_brain(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A brain of three tissues in a random folding; FLAIR and T1w are functions of the tissue plus noise."""
    rng = np.random.default_rng(seed)
    tissue = rng.integers(0, 3, size=(24, 20, 16))
    t1w = np.array([0.3, 0.6, 0.9], np.float32)[tissue] + rng.normal(0, 0.02, tissue.shape).astype(np.float32)
    flair = np.array([0.2, 0.8, 0.6], np.float32)[tissue] + rng.normal(0, 0.02, tissue.shape).astype(np.float32)
    mask = np.ones(tissue.shape, bool)
    mask[:2] = False
    return tissue, t1w, flair, mask


def test_prediction_follows_the_participants_own_folding():
    tissue, t1w, flair, mask = _tissue_brain()
    pred = flair_from_t1w(flair, t1w, mask)
    assert pred.shape == flair.shape and pred.dtype == np.float32
    assert np.abs(flair - pred)[mask].mean() < 0.05  # the tissue's FLAIR, wherever that tissue lies
    assert np.all(pred[~mask] == 0)


def test_a_flair_hyperintensity_with_an_unchanged_t1w_stands_out():
    tissue, t1w, flair, mask = _tissue_brain(1)
    lesion = np.zeros(mask.shape, bool)
    lesion[10:13, 8:11, 6:9] = True
    flair = flair + 0.3 * lesion
    residual = flair - flair_from_t1w(flair, t1w, mask)
    assert residual[lesion].mean() > 0.25
    assert np.abs(residual[mask & ~lesion]).mean() < 0.05


def test_a_tiny_mask_gives_zeros():
    _, t1w, flair, _ = _tissue_brain()
    mask = np.zeros(flair.shape, bool)
    mask[0, 0, :3] = True
    assert not flair_from_t1w(flair, t1w, mask).any()
