"""The supervised lesion segmenter baseline: training, determinism and the subject scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bids_fcd.synthesis import segmenter as S

TINY = S.SegmenterConfig(channels=(4, 8), strides=(2,), num_res_units=0, steps=40, batch_size=8, lr=1e-2)


def blobs(n: int = 24, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Slices with a bright square (the lesion) in half of them; background noise."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn((n, 1, size, size), generator=g)
    y = torch.zeros((n, 1, size, size))
    for i in range(0, n, 2):
        r, c = (int(v) for v in torch.randint(2, size - 6, (2,), generator=g))
        y[i, 0, r:r + 4, c:c + 4] = 1.0
    return x + y, y


def test_training_lowers_the_loss() -> None:
    x, y = blobs()
    r = S.train_segmenter(TINY, x, y)
    assert len(r.losses) == TINY.steps
    assert np.mean(r.losses[-5:]) < 0.8 * np.mean(r.losses[:5])


def test_training_is_deterministic_with_a_seed_and_changes_with_it() -> None:
    x, y = blobs()
    cfg = S.SegmenterConfig(**{**TINY.__dict__, "steps": 5})
    a, b = S.train_segmenter(cfg, x, y), S.train_segmenter(cfg, x, y)
    assert a.losses == b.losses
    assert np.array_equal(S.predict(a.model, x), S.predict(b.model, x))
    c = S.train_segmenter(S.SegmenterConfig(**{**cfg.__dict__, "seed": 1}), x, y)
    assert c.losses != a.losses


def test_channel_mismatch_is_refused() -> None:
    x, y = blobs()
    with pytest.raises(ValueError, match="channels"):
        S.train_segmenter(S.SegmenterConfig(**{**TINY.__dict__, "in_channels": 2}), x, y)


def test_dice_of_a_perfect_prediction_is_one_and_of_a_disjoint_one_zero() -> None:
    t = np.zeros((4, 8, 8), bool)
    t[1:3, 2:5, 2:5] = True
    assert S.dice(t, t) == pytest.approx(1.0)
    other = np.zeros_like(t)
    other[0, 7, 7] = True
    assert S.dice(other, t) == pytest.approx(0.0)
    assert S.hd95(t, t, (2.0, 4.0, 4.0)) == pytest.approx(0.0)
    assert S.hd95(other, t, (2.0, 4.0, 4.0)) > 0
    assert math.isnan(S.hd95(np.zeros_like(t), t, (1.0, 1.0, 1.0)))


def test_clusters_are_largest_first_and_small_ones_dropped() -> None:
    v = np.zeros((6, 10, 10), bool)
    v[0, 0, 0] = True                 # 1 voxel
    v[3:5, 3:6, 3:6] = True           # 18 voxels
    v[0:2, 8:10, 8:10] = True         # 8 voxels
    cs = S.clusters(v, min_voxels=2)
    assert [int(c.sum()) for c in cs] == [18, 8]


def test_score_subject_detection_and_false_positives() -> None:
    les = np.zeros((6, 10, 10), bool)
    les[3:5, 3:6, 3:6] = True
    prob = np.zeros(les.shape, np.float32)
    prob[les] = 0.9
    prob[0:2, 8:10, 8:10] = 0.8       # a smaller false positive
    s = S.score_subject(prob, les, 0.5, 2, (2.0, 4.0, 4.0))
    assert s.detected is True and s.clusters == 2 and s.false_positive_clusters == 1
    assert 0.5 < s.dice < 1.0
    # the false positive is now the largest cluster: not detected
    prob[0:2, 7:10, 0:10] = 0.8
    assert S.score_subject(prob, les, 0.5, 2, (2.0, 4.0, 4.0)).detected is False
    ctl = S.score_subject(prob, None, 0.5, 2, (2.0, 4.0, 4.0))
    assert ctl.detected is None and ctl.false_positive_clusters == ctl.clusters >= 1 and math.isnan(ctl.dice)


def test_shift_moves_image_and_mask_together_and_is_seeded() -> None:
    x, y = blobs(n=6)
    xs, ys = S.shift(x, y, 3, torch.Generator().manual_seed(0))
    assert xs.shape == x.shape and ys.shape == y.shape
    assert torch.equal((xs > 0.5).float(), ys)  # the bright square is still exactly the mask
    assert ys.sum() == y.sum() and not torch.equal(ys, y)
    xs2, _ = S.shift(x, y, 3, torch.Generator().manual_seed(0))
    assert torch.equal(xs, xs2)
