"""Synthetic slices mixed into the product's classifier data: sizes, labels, grid, training, AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_fcd.config import LOBES, GridConfig
from bids_fcd.synthesis import augment as A
from bids_fcd.training.datasets import SliceDataset, SubjectSlices


def subject(name: str, lesion: bool, lobe: str = "FL", s: int = 12, h: int = 16, seed: int = 0) -> SubjectSlices:
    rng = np.random.default_rng(seed)
    stack = rng.uniform(-1, 1, (s, 2, h, h)).astype(np.float32)
    mask = np.zeros((s, h, h), bool)
    mask[:, 2:14, 2:14] = True
    roi = None
    if lesion:
        roi = np.zeros((s, h, h), bool)
        roi[5:8, 6:9, 6:9] = True
        stack[5:8, 0, 6:9, 6:9] = 1.8
    return SubjectSlices(name, stack, mask, roi, lobe if lesion else "n/a")


def fake_samples(n: int, h: int = 8, empty: int = 0) -> np.ndarray:
    x = np.full((n, 2, h, h), -1.0, np.float32)
    x[:, 0, 1:7, 1:7] = 0.0
    x[empty:, 1, 3:5, 3:5] = 1.0
    return x


def test_matched_sources_sizes_and_determinism() -> None:
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    assert len(A.matched_sources(10, 0.0, rng())) == 0
    assert np.array_equal(A.matched_sources(10, 2.0, rng()), np.repeat(np.arange(10), 2))
    half = A.matched_sources(10, 1.5, rng())
    assert len(half) == 15 and np.bincount(half, minlength=10).max() == 2
    assert np.array_equal(half, A.matched_sources(10, 1.5, rng()))
    with pytest.raises(ValueError):
        A.matched_sources(10, -1.0, rng())


def test_mixing_synthetic_slices_grows_the_dataset_as_configured() -> None:
    real = [subject("01", True), subject("02", False, seed=1)]
    base = SliceDataset(real, channels=1)
    les = A.lesion_slices(real, n_bins=30)
    assert len(les) == 3 and {ls.slice_index for ls in les} == {5, 6, 7} and les[0].lobe == "FL"
    src = A.matched_sources(len(les), 2.0, np.random.default_rng(0))
    syn, dropped = A.synthetic_subjects(fake_samples(len(src), h=16, empty=1), [les[i].lobe for i in src], 2.0)
    assert dropped == 1
    mixed = SliceDataset(real + syn, channels=1)
    assert len(mixed) == len(base) + len(src) - 1
    assert int((mixed.labels > 0).sum()) == int((base.labels > 0).sum()) + len(src) - 1
    assert mixed.labels[len(base):].eq(LOBES.index("FL")).all()
    assert syn[0].subject.startswith(A.SYNTHETIC_PREFIX) and (syn[0].stack[:, 1] == -1).all()


def test_synthetic_lobes_make_one_pseudo_subject_each() -> None:
    subs, dropped = A.synthetic_subjects(fake_samples(4), ["TL", "FL", "TL", "PL"], 2.0)
    assert dropped == 0 and [s.lobe for s in subs] == ["FL", "PL", "TL"] and len(subs[2].stack) == 2
    with pytest.raises(ValueError):
        A.synthetic_subjects(fake_samples(4), ["TL"], 2.0)


def test_downsample_subject_keeps_small_lesions_and_clips_flair() -> None:
    sub = subject("01", True)
    sub.stack[0, 0, 0, 0] = 5.0
    d = A.downsample_subject(sub, 2, 2.0)
    assert d.stack.shape == (12, 2, 8, 8) and d.mask.shape == (12, 8, 8)
    assert d.roi is not None and d.roi[5:8].any() and not d.roi[:5].any()
    assert d.stack[:, 0].max() <= 2.0 + 1e-6
    assert A.coarse_grid(GridConfig(), 2).shape == (48, 48) and A.coarse_grid(GridConfig(), 2).spacing_mm == 4.0
    with pytest.raises(ValueError):
        A.coarse_grid(GridConfig(shape=(95, 96)), 2)


def test_classifier_training_same_steps_deterministic_and_auc() -> None:
    real = [subject("01", True), subject("02", False, seed=1), subject("03", True, "TL", seed=2)]
    net = A.classifier_net(GridConfig(shape=(16, 16), spacing_mm=8.0), preset="tiny")
    ds = SliceDataset(real, channels=1)
    cfg = A.ClassifierRunConfig(epochs=2, draws_per_epoch=16, batch_size=8, lr=1e-3, seed=0)
    r1, r2 = A.train_classifier(net, cfg, ds), A.train_classifier(net, cfg, ds)
    assert r1.steps == 4 and r1.log == [{**e, "seconds": r1.log[i]["seconds"]} for i, e in enumerate(r2.log)]
    big = SliceDataset(real + A.synthetic_subjects(fake_samples(20, h=16), ["FL"] * 20, 2.0)[0], channels=1)
    assert A.train_classifier(net, cfg, big).steps == r1.steps  # the same steps with more slices
    x = ds.x[:, :1]
    lesion = (ds.labels > 0).numpy()
    auc = A.auc_per_t(r1.classifier, net, x, lesion, [0, 100], seed=5)
    assert set(auc) == {"t=0", "t=100"} and all(v is not None and 0.0 <= v <= 1.0 for v in auc.values())
    assert auc == A.auc_per_t(r2.classifier, net, x, lesion, [0, 100], seed=5)
    before = torch.random.get_rng_state()
    A.train_classifier(net, cfg, ds)
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's RNG is left alone


def test_on_epoch_sees_every_epoch_and_does_not_change_training() -> None:
    real = [subject("01", True), subject("02", False, seed=1)]
    net = A.classifier_net(GridConfig(shape=(16, 16), spacing_mm=8.0), preset="tiny")
    ds = SliceDataset(real, channels=1)
    cfg = A.ClassifierRunConfig(epochs=3, draws_per_epoch=8, batch_size=8, seed=2)
    seen: list[int] = []
    x, lesion = ds.x[:, :1], (ds.labels > 0).numpy()

    def probe(epoch: int, clf: torch.nn.Module) -> None:
        seen.append(epoch)
        assert not clf.training
        A.auc_per_t(clf, net, x, lesion, [0], seed=0)

    with_probe = A.train_classifier(net, cfg, ds, on_epoch=probe)
    plain = A.train_classifier(net, cfg, ds)
    assert seen == [1, 2, 3]
    assert [e["loss"] for e in with_probe.log] == [e["loss"] for e in plain.log]
