"""The patched (masked inpainting) encoding: tiling, T1w hiding, and the property that matters:
a voxel's pseudo-healthy value never depends on its own FLAIR or its hidden margin."""

import numpy as np
import pytest
import torch

from bids_fcd.config import NetConfig
from bids_fcd.nets.networks import build_scheduler, build_unet, epsilon_unet
from bids_fcd.sampling.ddim import pseudo_healthy
from bids_fcd.sampling.patches import hide_t1, patched_timesteps, tile_masks

NET = NetConfig(unet_channels=(8, 16), unet_attention=(False, False), unet_head_channels=8, norm_num_groups=8,
                kind="inpaint", prediction_type="sample")


@pytest.mark.parametrize("core,margin,offset", [(4, 2, (0, 0)), (5, 3, (2, 7)), (6, 0, (1, 1))])
def test_cores_partition_the_plane_and_holes_keep_the_margin(core, margin, offset):
    cores, holes = tile_masks(20, 17, core, margin, offset)
    assert cores.shape == holes.shape == (9, 20, 17)
    assert (cores.sum(axis=0) == 1).all(), "every pixel is regenerated in exactly one pass"
    assert (holes | ~cores).all(), "a core lies inside its hole"
    from scipy import ndimage

    for p in range(9):
        grown = ndimage.binary_dilation(cores[p], np.ones((2 * margin + 1,) * 2)) if margin else cores[p]
        assert (holes[p] | ~grown).all(), "the hole covers the core grown by the margin"
        assert holes[p].sum() < holes[p].size, "clean context is left in every pass"


def test_margin_must_be_below_core():
    with pytest.raises(ValueError, match="margin"):
        tile_masks(16, 16, 4, 4)


def test_hide_t1_modes():
    t1 = torch.rand(1, 1, 16, 16)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:12, 4:12] = 1
    assert torch.equal(hide_t1(t1, hole, "clean"), t1)
    z = hide_t1(t1, hole, "zero")
    assert (z[hole > 0] == 0).all() and torch.equal(z[hole == 0], t1[hole == 0])
    b = hide_t1(t1, hole, "blur")
    assert torch.equal(b[hole == 0], t1[hole == 0]) and b[hole > 0].std() < t1[hole > 0].std()
    with pytest.raises(ValueError):
        hide_t1(t1, hole, "nope")


def test_timesteps_descend_from_L():
    assert patched_timesteps(999, 2) == [999, 500]
    assert patched_timesteps(999, 1) == [999]
    with pytest.raises(ValueError):
        patched_timesteps(3, 5)


def _random_unet() -> torch.nn.Module:
    """A UNet with random weights everywhere (MONAI zero-initialises its output layer)."""
    torch.manual_seed(0)
    unet = build_unet(NET).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0.0, 0.1)
    return unet


def _run(stack, seed=0, batch_size=64, **kw):
    unet = _random_unet()
    gen = torch.Generator().manual_seed(seed)
    return pseudo_healthy(unet, None, build_scheduler(NET), stack, 999, 2, 0.0, batch_size, "patched", 1, gen,
                          mask=torch.ones(stack.shape[0], 16, 16, dtype=torch.bool), patch=(4, 2, "zero"), **kw)


def test_a_voxel_never_sees_its_own_flair():
    stack = torch.rand(2, 2, 16, 16) * 2 - 1
    base = _run(stack)
    changed = stack.clone()
    changed[1, 0, 7, 9] += 5.0  # a bright one-pixel "lesion" in the FLAIR
    after = _run(changed)
    assert torch.allclose(after[1, 0, 7, 9], base[1, 0, 7, 9], atol=1e-6)
    assert not torch.allclose(after, base), "the pixel is context for its neighbours' passes"
    t1 = stack.clone()
    t1[1, 1, 7, 9] += 5.0  # the T1w inside the hole is hidden too (mode zero)
    assert torch.allclose(_run(t1)[1, 0, 7, 9], base[1, 0, 7, 9], atol=1e-6)


def test_patched_is_seeded_and_batch_size_invariant():
    stack = torch.rand(3, 2, 16, 16) * 2 - 1
    a = _run(stack, batch_size=64)
    assert torch.equal(a, _run(stack, batch_size=5))
    assert not torch.equal(a, _run(stack, seed=1))


def test_inpainting_model_runs_the_whole_slice_encodings():
    unet = epsilon_unet(_random_unet(), NET)
    stack = torch.rand(2, 2, 16, 16) * 2 - 1
    out = pseudo_healthy(unet, None, build_scheduler(NET), stack, 100, 2, 0.0, 8, "stochastic", 1,
                         torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 16, 16) and torch.isfinite(out).all()
