import numpy as np
import torch

from bids_fcd.training.datasets import SliceDataset, SubjectSlices, slice_targets


def _subject(lobe, lesion_slices):
    stack = np.zeros((4, 2, 8, 8), np.float32)
    mask = np.ones((4, 8, 8), bool)
    roi = np.zeros((4, 8, 8), bool)
    for s in lesion_slices:
        roi[s, 3, 3] = True
    return SubjectSlices("01", stack, mask, roi if lesion_slices else None, lobe)


def test_targets_follow_lesion_slices_and_multi_lobe():
    t = slice_targets(_subject("TL,PL", [1, 2]))
    assert np.allclose(t[0], [1, 0, 0, 0, 0, 0]) and np.allclose(t[3], [1, 0, 0, 0, 0, 0])
    assert np.allclose(t[1], [0, 0, 0.5, 0.5, 0, 0])
    assert np.allclose(slice_targets(_subject("n/a", [])), np.eye(6)[[0, 0, 0, 0]])


def test_dataset_balance_and_channels():
    ds = SliceDataset([_subject("FL", [2]), _subject("n/a", [])], channels=1)
    assert len(ds) == 8 and ds[0][0].shape == (1, 8, 8)
    assert int((ds.labels == 1).sum()) == 1
    w = ds.sample_weights()
    # the lesion slice weighs as much as all 7 healthy slices together
    assert torch.isclose(w[ds.labels == 1].sum(), w[ds.labels == 0].sum())


def test_loss_weights_temper_the_class_imbalance():
    ds = SliceDataset([_subject("FL", [2]), _subject("n/a", [])], channels=1)
    w = ds.loss_weights()
    assert w.shape == (6,)
    assert torch.all(w[2:] == 0), "absent classes weigh nothing"
    assert torch.isclose(w[:2].mean(), torch.tensor(1.0))
    assert torch.isclose(w[1] / w[0], torch.tensor(7.0) ** 0.5)   # 7 healthy : 1 lesion slice, power 0.5
    assert torch.isclose(ds.loss_weights(power=1.0)[1] / ds.loss_weights(power=1.0)[0], torch.tensor(7.0))
