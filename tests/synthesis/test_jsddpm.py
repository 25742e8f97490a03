"""JS-DDPM: tokens and their embedding, self-conditioning, Kendall weights, training, sampling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bids_fcd.config import from_dict, to_dict
from bids_fcd.synthesis import jsddpm as J
from bids_fcd.synthesis.config import JSDDPM_PRESETS, JSDDPMConfig
from bids_fcd.synthesis.data import make_token, z_bins
from bids_fcd.synthesis.losses import KendallWeights, focal_frequency_loss
from bids_fcd.synthesis.metrics import binarise, near_binary_fraction

TINY = JSDDPM_PRESETS["tiny"]


def _pairs(n: int = 24, seed: int = 610) -> tuple[torch.Tensor, torch.Tensor]:
    """Toy pairs: a bright disc in the FLAIR exactly where the mask is +1 (lesion tokens), none for controls."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    x = torch.full((n, 2, 16, 16), -1.0)
    brain = ((yy - 7.5) ** 2 + (xx - 7.5) ** 2) < 49
    x[:, 0][:, brain] = 0.0
    tok = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        z = int(torch.randint(0, 30, (1,), generator=g))
        lesion = i % 2 == 0
        if lesion:
            cy, cx = (int(v) for v in torch.randint(4, 12, (2,), generator=g))
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < 5
            x[i, 0][disc] = 0.9
            x[i, 1][disc] = 1.0
        tok[i] = int(make_token(z, int(lesion), 30))
    return x, tok


def test_tokens_encode_z_bin_and_pathology() -> None:
    assert int(make_token(7, 1, 30)) == 37 and int(make_token(29, 0, 30)) == 29
    with pytest.raises(ValueError, match="z-bin"):
        make_token(30, 0, 30)
    with pytest.raises(ValueError, match="pathology"):
        make_token(3, 2, 30)
    zb = z_bins(66, 30)
    assert zb[0] == 0 and zb[-1] == 29 and np.all(np.diff(zb) >= 0) and len(np.unique(zb)) == 30


def test_token_embedding_splits_and_differs() -> None:
    torch.manual_seed(0)
    emb = J.TokenEmbedding(30, 2, 16, 32)
    z, p = emb.split(torch.tensor([0, 29, 30, 59]))
    assert z.tolist() == [0, 29, 0, 29] and p.tolist() == [0, 0, 1, 1]
    e = emb(torch.tensor([5, 35, 6]))
    assert e.shape == (3, 32)
    assert not torch.allclose(e[0], e[1])  # pathology changes the embedding
    assert not torch.allclose(e[0], e[2])  # so does the z-bin
    sin = emb.z_sinusoidal
    assert torch.linalg.norm(sin[5] - sin[6]) < torch.linalg.norm(sin[5] - sin[25])  # neighbours start close
    with pytest.raises(ValueError, match="tokens"):
        emb(torch.tensor([60]))
    model = J.JSDDPM(TINY.net)
    assert isinstance(model.unet.class_embedding, J.TokenEmbedding)


def test_self_conditioning_on_and_off() -> None:
    torch.manual_seed(0)
    on = J.JSDDPM(TINY.net)
    with torch.no_grad():  # MONAI zero-initialises the output convolution: give it weights
        for p in on.unet.out.parameters():
            p.normal_(0.0, 0.1)
    assert on.unet.conv_in.conv.in_channels == 4
    x, tok = _pairs(4)
    t = torch.tensor([10, 20, 30, 40])
    with torch.no_grad():
        a = on(x, t, tok, None)
        b = on(x, t, tok, torch.zeros_like(x))
        c = on(x, t, tok, x.clone())
    assert a.shape == (4, 2, 16, 16)
    assert torch.equal(a, b)  # no estimate = zeros
    assert not torch.allclose(a, c)  # the estimate reaches the network
    off = J.JSDDPM(dataclasses.replace(TINY.net, self_conditioning=False))
    assert off.unet.conv_in.conv.in_channels == 2
    with pytest.raises(ValueError, match="self-conditioning"):
        off(x, t, tok, x)

    calls = []
    on.register_forward_hook(lambda *_: calls.append(1))
    w = KendallWeights((0, 1, 2), (0.0, 0.0, 0.5))
    acp = J.build_scheduler(TINY.net).alphas_cumprod.float()
    for prob, expected in ((1.0, 2), (0.0, 1)):
        calls.clear()
        out = J.training_loss(on, w, x, tok, acp, TINY.net, TINY.loss, prob, torch.Generator().manual_seed(1))
        assert out.self_conditioned == (prob == 1.0)
        assert len(calls) == expected


def test_x0_conversions_round_trip() -> None:
    g = torch.Generator().manual_seed(611)
    x0, eps = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    a = torch.tensor([0.9, 0.5, 0.1]).view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    for pred in ("sample", "epsilon", "v_prediction"):
        target = J.target_for(x0, eps, a, pred)
        assert torch.allclose(J.to_x0(target, x_t, a, pred), x0, atol=1e-5), pred


def test_focal_frequency_loss_is_zero_for_equal_images_and_grows() -> None:
    g = torch.Generator().manual_seed(612)
    a = torch.rand(2, 1, 16, 16, generator=g)
    assert float(focal_frequency_loss(a, a)) == 0.0
    small = focal_frequency_loss(a + 0.01 * torch.rand(2, 1, 16, 16, generator=g), a)
    big = focal_frequency_loss(a + 0.5 * torch.rand(2, 1, 16, 16, generator=g), a)
    assert 0 < float(small) < float(big)


def test_kendall_weights_move_and_training_lowers_the_loss() -> None:
    x, tok = _pairs()
    cfg = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, steps=40))
    torch.manual_seed(0)
    fresh = J.JSDDPM(cfg.net)
    result = J.train(cfg, x, tok)
    start = torch.tensor(cfg.loss.initial_log_vars)
    moved = (result.weighting.log_vars.detach() - start).abs()
    assert (moved > 1e-3).all()

    def held_out_loss(model: torch.nn.Module) -> float:  # same t, noise and coins for both models
        w = KendallWeights(cfg.loss.groups, cfg.loss.initial_log_vars, enabled=False)
        acp = J.build_scheduler(cfg.net).alphas_cumprod.float()
        gen = torch.Generator().manual_seed(99)
        with torch.no_grad():
            return float(np.mean([float(J.training_loss(model, w, x, tok, acp, cfg.net, cfg.loss, 0.5, gen).total)
                                  for _ in range(8)]))

    assert held_out_loss(result.ema) < 0.8 * held_out_loss(fresh)
    assert result.log[-1]["step"] == 40 and "log_vars" in result.log[-1]


def test_training_is_deterministic_and_checks_shapes() -> None:
    x, tok = _pairs(8)
    cfg = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, steps=4, log_every=2))
    a, b = J.train(cfg, x, tok), J.train(cfg, x, tok)
    for (ka, va), (kb, vb) in zip(a.ema.state_dict().items(), b.ema.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    with pytest.raises(ValueError, match="expects"):
        J.train(cfg, torch.zeros(4, 2, 8, 8), tok[:4])


def test_sampling_is_seeded_binary_masks_after_threshold() -> None:
    x, tok = _pairs()
    cfg = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, steps=40))
    model = J.train(cfg, x, tok).ema
    tokens = torch.tensor([35, 35, 5, 5, 40, 10])
    s1 = J.sample(model, cfg.net, tokens, cfg.sample, seed=3)
    s2 = J.sample(model, cfg.net, tokens, cfg.sample, seed=3)
    s3 = J.sample(model, cfg.net, tokens, cfg.sample, seed=4)
    assert s1.shape == (6, 2, 16, 16)
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
    assert s1.min() >= -1 and s1.max() <= 1
    # the mask channel lands near ±1 (clamped x̂_0) and thresholding at 0 gives a bool mask
    assert near_binary_fraction(s1[:, 1].numpy(), tol=0.5) > 0.8
    m = binarise(s1[:, 1].numpy())
    assert m.dtype == bool and m.shape == (6, 16, 16)


def test_sampling_with_eta_zero_and_other_predictions() -> None:
    x, tok = _pairs(8)
    for pred in ("epsilon", "v_prediction"):
        net = dataclasses.replace(TINY.net, prediction=pred)
        cfg = dataclasses.replace(TINY, net=net, train=dataclasses.replace(TINY.train, steps=3))
        model = J.train(cfg, x, tok).ema
        s = J.sample(model, net, tok[:3], dataclasses.replace(cfg.sample, eta=0.0), seed=0)
        assert torch.isfinite(s).all() and s.shape == (3, 2, 16, 16)


def test_config_round_trips_through_json() -> None:
    for cfg in JSDDPM_PRESETS.values():
        assert from_dict(JSDDPMConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="prediction"):
        dataclasses.replace(TINY.net, prediction="x0")
