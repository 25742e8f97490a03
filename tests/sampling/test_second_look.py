"""The second look: RePaint-style inpainting of candidate holes with the T1w hidden. What matters: a
hole's result never depends on the FLAIR inside it (nor, with ``mirror``, on the T1w inside it), and
everything outside the holes is the real FLAIR, exactly."""

import pytest
import torch

from bids_fcd.sampling.ddim import ddim_guided_decode
from bids_fcd.sampling.second_look import inpaint_holes, look_t1
from tests.sampling.conftest import tiny_models


def _hole(b: int = 2, size: int = 32) -> torch.Tensor:
    hole = torch.zeros(b, size, size, dtype=torch.bool)
    hole[:, 8:20, 3:12] = True  # one side of the plane only (the mirror of columns 3-11 is 20-28)
    return hole


def _run(stack: torch.Tensor, hole: torch.Tensor, seed: int = 3, **kw) -> torch.Tensor:
    u, c, s, _ = tiny_models()
    brain = torch.ones_like(hole)
    args = {"noise_level": 40, "steps": 4, "scale": 5.0, "draws": 2, "t1_mode": "mirror"} | kw
    return inpaint_holes(u, c, s, stack, hole, brain, generator=torch.Generator().manual_seed(seed), **args)


def test_look_t1_modes():
    t1 = torch.rand(1, 1, 16, 16)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:10, 1:5] = 1
    brain = torch.ones_like(hole)
    assert torch.equal(look_t1(t1, hole, brain, "clean"), t1)
    m = look_t1(t1, hole, brain, "mirror")
    assert torch.equal(m[hole == 0], t1[hole == 0])
    assert torch.equal(m[hole > 0], t1.flip(-1)[hole > 0]), "the hole gets the mirror hemisphere's T1w"
    # where the mirror position is itself in a hole (or not brain) the T1w is blurred, not mirrored
    both = hole.clone()
    both[..., 4:10, 11:15] = 1
    mb = look_t1(t1, both, brain, "mirror")
    assert torch.equal(mb, look_t1(t1, both, brain, "blur"))
    no_brain = brain.clone()
    no_brain[..., 11:15] = 0
    assert torch.equal(look_t1(t1, hole, no_brain, "mirror"), look_t1(t1, hole, brain, "blur"))
    with pytest.raises(ValueError, match="second-look"):
        look_t1(t1, hole, brain, "zero")


def test_outside_the_holes_is_the_real_flair_and_inside_is_regenerated():
    _, _, _, x = tiny_models()
    hole = _hole()
    out = _run(x, hole)
    assert out.shape == (2, 1, 32, 32)
    assert torch.equal(out[:, 0][~hole], x[:, 0][~hole])
    assert (out[:, 0][hole] - x[:, 0][hole]).abs().mean() > 0.05


def test_a_hole_never_sees_its_own_flair_nor_with_mirror_its_own_t1w():
    _, _, _, x = tiny_models()
    hole = _hole()
    base = _run(x, hole)
    y = x.clone()
    y[:, 0][hole] = 1.0  # a bright "lesion" filling the hole
    y[:, 1][hole] = -1.0  # and its T1w
    assert torch.equal(_run(y, hole), base)
    # with the T1w kept clean, the T1w inside the hole does reach the network
    clean = _run(x, hole, t1_mode="clean")
    assert not torch.equal(_run(y, hole, t1_mode="clean"), clean)


def test_seeded_and_draws_averaged():
    _, _, _, x = tiny_models()
    hole = _hole()
    assert torch.equal(_run(x, hole, seed=5), _run(x, hole, seed=5))
    assert not torch.equal(_run(x, hole, seed=5), _run(x, hole, seed=6))
    one = _run(x, hole, draws=1)
    two = _run(x, hole, draws=2)
    assert not torch.equal(one, two)
    with pytest.raises(ValueError, match="draws"):
        _run(x, hole, draws=0)
    with pytest.raises(ValueError, match="divide"):
        _run(x, hole, noise_level=40, steps=3)


def test_paste_with_an_empty_hole_returns_the_context():
    u, c, s, x = tiny_models()
    x0 = x[:, :1]
    empty = torch.zeros_like(x0)
    noise = torch.randn((2, 4, 32, 32), generator=torch.Generator().manual_seed(0))
    out = ddim_guided_decode(u, c, s, torch.randn_like(x0), x[:, 1:], 40, 10, 5.0, context=(x0, empty, noise))
    assert torch.equal(out, x0)
