import numpy as np

from bids_fcd.evaluation.metrics import (
    best_threshold_dice,
    cluster_hits_lesion,
    dice,
    false_positive_pixels,
    peak_hit_at_k,
    recall_at_k,
    roc_auc,
)


def _disk(shape=(64, 64), c=(32, 32), r=4):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r**2


def test_pixel_7px_away_recalled_at_10_not_5():
    lesion = _disk()[None]
    pred = np.zeros_like(lesion)
    pred[0, 32, 32 + 4 + 7] = True      # 7 px from the disk's edge
    assert recall_at_k(pred, lesion, 10) == (1, 1)
    assert recall_at_k(pred, lesion, 5) == (0, 1)


def test_healthy_slices_do_not_count_for_recall_but_for_fp():
    lesion = np.stack([_disk(), np.zeros((64, 64), bool)])
    pred = np.zeros_like(lesion)
    pred[1, 5, 5] = True                # a healthy slice's flagged pixel
    assert recall_at_k(pred, lesion, 10) == (0, 1)
    assert false_positive_pixels(pred, lesion, 10) == 1


def test_dice_edge_cases():
    m = _disk()
    assert dice(m, m) == 1.0
    empty = np.zeros_like(m)
    d = dice(empty, m)
    assert d == 0.0 and not np.isnan(d)
    assert dice(empty, empty) == 1.0


def test_peak_hit_and_best_threshold():
    lesion = _disk()[None]
    score = np.zeros((1, 64, 64), np.float32)
    score[0][lesion[0]] = 1.0
    score[0, 2, 2] = 0.5
    assert peak_hit_at_k(score, lesion, 10) == (1, 1)
    score[0, 2, 2] = 2.0
    assert peak_hit_at_k(score, lesion, 10) == (0, 1)
    best, thr = best_threshold_dice(np.where(lesion, 1.0, 0.1), lesion, np.ones_like(lesion))
    assert best == 1.0 and 0.1 <= thr < 1.0


def test_subject_level_detection_distance():
    aff = np.eye(4)
    lesion = np.zeros((30, 30, 30), bool)
    lesion[10:12, 10:12, 10:12] = True
    far = np.zeros_like(lesion)
    assert cluster_hits_lesion(far, np.array([11, 11, 19.0]), lesion, aff)       # 8 mm away
    assert not cluster_hits_lesion(far, np.array([11, 11, 25.0]), lesion, aff)   # 14 mm away
    over = np.zeros_like(lesion)
    over[11, 11, 11] = True
    assert cluster_hits_lesion(over, np.array([29, 29, 29.0]), lesion, aff)


def test_roc_auc():
    pos = np.array([False, False, True, True, False, True])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7]), pos) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), pos) == 0.0
    assert roc_auc(np.full(6, 0.5), pos) == 0.5                      # all tied: half credit
    # one positive above two of three negatives, one tie with the third: (2 + 0.5) / 3
    assert np.isclose(roc_auc(np.array([0.1, 0.2, 0.3, 0.3]), np.array([False, False, False, True])), 2.5 / 3)
    assert roc_auc(np.array([0.1, 0.2]), np.array([True, True])) is None
    assert roc_auc(np.array([0.1, 0.2]), np.array([False, False])) is None
    # 2-D inputs are flattened
    assert roc_auc(np.array([[0.1, 0.9], [0.2, 0.8]]), np.array([[False, True], [False, True]])) == 1.0
