"""``--slices paper``: only the paper's central band is sampled; elsewhere pseudo = real, anomaly = 0."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from bids_fcd.config import PostConfig, SamplerConfig
from bids_fcd.nets.checkpoint import LoadedModel
from bids_fcd.workflows import analysis
from bids_fcd.workflows.analysis import PAPER_BAND_MM, analyse, slice_band, synthesise
from tests.sampling.conftest import NET
from tests.sampling.conftest import tiny_models as _models


def _model() -> LoadedModel:
    u, c, _, _ = _models()
    return LoadedModel("tiny", Path("."), "0" * 64, NET, u, c, {}, PostConfig())


def _inputs():
    g = NET.grid
    s = int(np.floor((g.z_max_mm - g.z_min_mm) / g.spacing_mm)) + 1
    rng = np.random.default_rng(0)
    stack = (rng.random((s, 2, *g.shape), dtype=np.float32) * 2 - 1).astype(np.float32)
    mask = np.zeros((s, *g.shape), bool)
    mask[2 : s - 2, 6:26, 6:26] = True
    return stack, mask


SAMPLER = SamplerConfig(noise_level=20, steps=2, draws=1, guidance_scale=5.0, encoding="stochastic")


def test_paper_band_is_z_0_to_50_mm():
    band = slice_band(NET.grid, 22, "paper")
    z = NET.grid.z_min_mm + np.arange(22) * NET.grid.spacing_mm
    assert band.any() and not band.all()
    assert (z[band] >= PAPER_BAND_MM[0]).all() and (z[band] <= PAPER_BAND_MM[1]).all()
    assert slice_band(NET.grid, 22, "all").all()
    with pytest.raises(ValueError, match="--slices"):
        slice_band(NET.grid, 22, "central")


def test_paper_slices_sample_fewer_slices_and_leave_the_rest_unchanged(monkeypatch):
    model, (stack, mask) = _model(), _inputs()
    seen = []
    real_ph = analysis.pseudo_healthy
    monkeypatch.setattr(analysis, "pseudo_healthy", lambda *a, **k: seen.append(a[3].shape[0]) or real_ph(*a, **k))
    cpu = torch.device("cpu")
    every = synthesise(model, stack, mask, SAMPLER, cpu)
    paper = synthesise(model, stack, mask, dataclasses.replace(SAMPLER, slices="paper"), cpu)
    band = slice_band(NET.grid, stack.shape[0], "paper")
    brain = mask.any(axis=(1, 2))
    assert seen == [int(brain.sum()), int((brain & band).sum())] and seen[1] < seen[0]
    assert np.array_equal(paper[~band], stack[~band, 0])
    assert not np.array_equal(paper[band & brain], stack[band & brain, 0])
    assert not np.array_equal(every[~band & brain], stack[~band & brain, 0])


def test_paper_slices_give_exactly_zero_anomaly_outside_the_band():
    model, (stack, mask) = _model(), _inputs()
    post = PostConfig(zscore="within", min_cluster_mm3=0.0)
    res = analyse(model, stack, mask, dataclasses.replace(SAMPLER, slices="paper"), post, torch.device("cpu"))
    band = slice_band(NET.grid, stack.shape[0], "paper")
    out = ~band  # volumes are (W, H, S)
    assert np.array_equal(res.pseudo[..., out], np.ascontiguousarray(stack[:, 0].transpose(2, 1, 0))[..., out])
    assert (res.anomaly[..., out] == 0).all() and (res.z[..., out] == 0).all() and (res.labels[..., out] == 0).all()
    assert np.abs(res.anomaly[..., band]).max() > 0


def test_the_t1w_condition_reaches_the_network_and_changes_the_pseudo_healthy_flair(monkeypatch):
    model, (stack, mask) = _model(), _inputs()
    cpu = torch.device("cpu")
    shown = []
    real_ph = analysis.pseudo_healthy
    monkeypatch.setattr(analysis, "pseudo_healthy", lambda *a, **k: shown.append(a[3].clone()) or real_ph(*a, **k))
    native = synthesise(model, stack, mask, dataclasses.replace(SAMPLER, t1_condition="native"), cpu)
    sym = synthesise(model, stack, mask, dataclasses.replace(SAMPLER, t1_condition="symmetric"), cpu)
    t1_native, t1_sym = shown[0][:, 1].numpy(), shown[1][:, 1].numpy()
    assert np.array_equal(shown[0][:, 0], shown[1][:, 0]), "the FLAIR the network is shown is the same"
    brain = mask[mask.any(axis=(1, 2))]  # the sampled slices; this mask is its own mirror image
    assert np.array_equal(t1_sym[brain], t1_sym[..., ::-1][brain]), "inside the brain the T1w is symmetric"
    assert np.array_equal(t1_sym[~brain], t1_native[~brain]), "outside it the T1w is kept"
    assert not np.array_equal(t1_native, t1_sym) and not np.array_equal(native, sym)
    assert np.array_equal(stack[:, 1], _inputs()[0][:, 1]), "the caller's stack is left as it was"


@pytest.mark.parametrize("shrink", [False, True])
def test_second_look_changes_only_candidate_regions_and_is_seeded(monkeypatch, shrink):
    model, (stack, mask) = _model(), _inputs()
    cpu = torch.device("cpu")
    holes = []
    real = analysis.candidate_regions
    monkeypatch.setattr(analysis, "candidate_regions", lambda *a, **k: holes.append(real(*a, **k)) or holes[-1])
    look = dataclasses.replace(SAMPLER, second_look="inpaint", look_noise_level=40, look_steps=4, look_draws=1,
                               look_shrink=shrink)
    stack[8:12, 0, 10:16, 8:13] += 1.5  # a one-sided bright region: a candidate by its asymmetry
    first = synthesise(model, stack, mask, SAMPLER, cpu)
    second = synthesise(model, stack, mask, look, cpu)
    cand = holes[0].transpose(2, 1, 0)  # (W, H, S) → (S, H, W)
    assert cand.any() and not cand.all()
    assert np.array_equal(second[~cand], first[~cand]), "outside the candidates the first pass stays"
    assert not np.array_equal(second[cand], first[cand])
    assert np.array_equal(synthesise(model, stack, mask, look, cpu), second)
