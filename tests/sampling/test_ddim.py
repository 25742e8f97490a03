import io
import sys

import pytest
import torch

from bids_fcd.sampling.ddim import ddim_guided_decode, ddim_invert, forward_noise, pseudo_healthy, stride_for
from bids_fcd.sampling.guidance import log_prob_grad
from tests.sampling.conftest import tiny_models as _models


def test_golden_guided_sample():
    """Seeded golden values (recorded on CPU, torch 2.13, MONAI 1.6.1); tolerance 1e-4."""
    u, c, s, x = _models()
    out = pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0)
    assert out.shape == (2, 1, 32, 32)
    expected = [-0.2500476837158203, -0.08078183233737946, -0.8615561127662659, -0.19762852787971497,
                -0.644864022731781]
    assert torch.allclose(out.flatten()[:5], torch.tensor(expected), atol=1e-4)
    assert abs(out.sum().item() - (-34.059654235839844)) < 1e-2


@pytest.mark.parametrize(("level", "steps"), [(10, 10), (20, 5)])
def test_decoding_the_inversion_returns_the_input(level, steps):
    """With s = 0 and small L, decode(invert(x)) = x within 1e-4 (max abs, images in [-1, 1])."""
    u, _, s, x = _models()
    stride = stride_for(level, steps, 1000)
    x_l = ddim_invert(u, s, x[:, :1], x[:, 1:], level, stride)
    assert (x_l - x[:, :1]).abs().max() > 1e-3, "the inversion must actually move the sample"
    back = ddim_guided_decode(u, None, s, x_l, x[:, 1:], level, stride, scale=0.0)
    assert (back - x[:, :1]).abs().max() < 1e-4


def test_guidance_moves_towards_healthy():
    u, c, s, x = _models()
    x_t, t = x[:, :1], torch.tensor([10, 10])
    grad = log_prob_grad(c, x_t, t, 0)
    assert grad.shape == x_t.shape and grad.abs().sum() > 0
    before = torch.log_softmax(c(x_t, t), -1)[:, 0]
    after = torch.log_softmax(c(x_t + 1e-2 * grad / grad.norm(), t), -1)[:, 0]
    assert torch.all(after > before)


def test_stride_validation():
    assert stride_for(100, 20, 1000) == 5
    assert stride_for(100, None, 1000) == 1
    with pytest.raises(ValueError, match="must divide --noise-level"):
        stride_for(100, 30, 1000)
    with pytest.raises(ValueError, match="must divide T"):
        stride_for(90, 6, 1000)
    with pytest.raises(ValueError, match="noise level"):
        stride_for(1000, 10, 1000)


def _stochastic(u, c, s, x, seed, **kw):
    kw = {"draws": 1, "batch_size": 32} | kw
    return pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0, encoding="stochastic",
                          generator=torch.Generator().manual_seed(seed), **kw)


def test_forward_noise_is_q_of_x_l_given_x0():
    _, _, s, x = _models()
    x0 = x[:, :1]
    a = s.alphas_cumprod[300]
    assert torch.allclose(forward_noise(x0, s.alphas_cumprod, 300, torch.zeros_like(x0)), a.sqrt() * x0)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    out = forward_noise(x0, s.alphas_cumprod, 300, eps)
    assert torch.allclose(out, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-6)
    assert float(a) < 1.0 and not torch.allclose(out, x0, atol=1e-2)


def test_stochastic_encoding_is_seeded():
    u, c, s, x = _models()
    a, b, other = _stochastic(u, c, s, x, 7), _stochastic(u, c, s, x, 7), _stochastic(u, c, s, x, 8)
    assert a.shape == (2, 1, 32, 32) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert (a - other).abs().max() > 1e-3
    # and it is not the deterministic (inverse DDIM) result
    det = pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0)
    assert (a - det).abs().max() > 1e-3


def test_stochastic_encoding_matches_forward_noise_then_guided_decode():
    u, c, s, x = _models()
    out = _stochastic(u, c, s, x, 7)
    eps = torch.randn((2, 1, 32, 32), generator=torch.Generator().manual_seed(7))
    x_l = forward_noise(x[:, :1], s.alphas_cumprod, 20, eps)
    manual = ddim_guided_decode(u, c, s, x_l, x[:, 1:], 20, stride_for(20, 5, 1000), 5.0)
    assert torch.allclose(out, manual, atol=1e-5)


def test_stochastic_encoding_does_not_depend_on_batch_size():
    u, c, s, _ = _models()
    x = torch.rand(5, 2, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    a = _stochastic(u, c, s, x, 7, batch_size=2, draws=2)
    b = _stochastic(u, c, s, x, 7, batch_size=5, draws=2)
    assert a.shape == (5, 1, 32, 32)
    assert torch.allclose(a, b, atol=1e-5)


def test_draws_are_averaged_in_generator_order():
    u, c, s, x = _models()
    two = _stochastic(u, c, s, x, 7, draws=2)
    g = torch.Generator().manual_seed(7)
    singles = [pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0, encoding="stochastic", draws=1,
                              generator=g) for _ in range(2)]
    assert (singles[0] - singles[1]).abs().max() > 1e-3, "the second draw continues the generator"
    assert torch.allclose(two, (singles[0] + singles[1]) / 2, atol=1e-5)
    assert (two - singles[0]).abs().max() > 1e-4


def test_encoding_arguments_are_checked():
    u, c, s, x = _models()
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0, encoding="stochastic")
    with pytest.raises(ValueError, match="unknown encoding 'forward'"):
        pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0, encoding="forward",
                       generator=torch.Generator())
    with pytest.raises(ValueError, match="draws must be at least 1"):
        _stochastic(u, c, s, x, 0, draws=0)


@pytest.mark.parametrize("encoding", ["deterministic", "stochastic"])
def test_progress_bars_do_not_change_the_sample(monkeypatch: pytest.MonkeyPatch, encoding: str):
    """The sampler on a terminal (bars drawn) gives the same bits as with its log in a file (no bars)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    u, c, s, x = _models()

    def sample():
        gen = torch.Generator().manual_seed(3)
        return pseudo_healthy(u, c, s, x, noise_level=20, steps=5, scale=5.0, encoding=encoding, draws=2,
                              generator=gen, batch_size=1)

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = sample()
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    shown = sample()
    assert "decoding slices" in terminal.getvalue(), "the bar was drawn on the terminal"
    assert torch.equal(quiet, shown)
