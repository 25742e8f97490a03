"""The T1w condition (``--t1-condition``): what the network is shown of the T1w."""

import numpy as np
import pytest

from bids_fcd.config import SamplerConfig
from bids_fcd.sampling.condition import conditioned_stack


def _stack_and_mask(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    stack = rng.normal(size=(3, 2, 12, 16)).astype(np.float32)
    mask = np.zeros((3, 12, 16), bool)
    mask[:, 2:10, 1:13] = True  # not symmetric in W: columns 13-14 are brain only on one side of the mirror
    return stack, mask


def test_native_is_the_input_itself():
    stack, mask = _stack_and_mask(np.random.default_rng(0))
    assert conditioned_stack(stack, mask, "native") is stack


@pytest.mark.parametrize("condition", ["symmetric", "mirror"])
def test_a_one_sided_t1w_sign_is_weakened_and_the_flair_is_kept(condition):
    stack, mask = _stack_and_mask(np.random.default_rng(1))
    stack[:, 1] = 0.0
    stack[1, 1, 4:7, 3:6] = 2.0  # a one-sided T1w sign; its mirror columns 10-12 are brain
    out = conditioned_stack(stack, mask, condition)
    assert out is not stack and out.dtype == stack.dtype
    assert np.array_equal(out[:, 0], stack[:, 0]), "the FLAIR channel is never changed"
    inside = out[1, 1, 4:7, 3:6]
    mirrored = out[1, 1, 4:7, 10:13]
    w = {"symmetric": 0.5, "mirror": 1.0}[condition]
    assert np.allclose(inside, 2.0 * (1 - w)) and np.allclose(mirrored, 2.0 * w)
    assert np.array_equal(stack[1, 1, 4:7, 3:6], np.full((3, 3), 2.0, np.float32)), "the input is not modified"


def test_symmetric_is_mirror_symmetric_inside_brain_and_its_mirror_and_unchanged_elsewhere():
    stack, mask = _stack_and_mask(np.random.default_rng(2))
    out = conditioned_stack(stack, mask, "symmetric")[:, 1]
    both = mask & mask[..., ::-1]
    assert both.any() and (mask & ~both).any()
    assert np.array_equal(out[both], out[..., ::-1][both])
    assert np.array_equal(out[~both], stack[:, 1][~both])
    assert not np.array_equal(out[both], stack[:, 1][both])


def test_a_flair_only_stack_is_returned_as_is():
    stack, mask = _stack_and_mask(np.random.default_rng(3))
    flair_only = stack[:, :1]
    assert conditioned_stack(flair_only, mask, "mirror") is flair_only


def test_unknown_conditions_are_refused_with_the_flag():
    stack, mask = _stack_and_mask(np.random.default_rng(4))
    with pytest.raises(ValueError, match="--t1-condition"):
        conditioned_stack(stack, mask, "flipped")
    with pytest.raises(ValueError, match="--t1-condition"):
        SamplerConfig(t1_condition="flipped")  # type: ignore[arg-type]
