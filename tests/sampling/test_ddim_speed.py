"""Issue #13: inference mode, chunking invariance, no host synchronisation in the step loop."""

import builtins

import pytest
import torch

from bids_fcd.sampling import ddim
from bids_fcd.sampling.ddim import class_probabilities, maybe_compile, pseudo_healthy
from bids_fcd.sampling.guidance import log_prob_grad
from bids_fcd.timing import record
from tests.sampling.conftest import tiny_models as _models


def _stack(n: int, seed: int = 4) -> torch.Tensor:
    return torch.rand(n, 2, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_sampler_runs_in_inference_mode_and_guidance_still_acts():
    u, c, s, x = _models()
    kw = {"noise_level": 20, "steps": 5, "encoding": "stochastic", "draws": 1}
    guided = pseudo_healthy(u, c, s, x, scale=5.0, generator=torch.Generator().manual_seed(7), **kw)
    plain = pseudo_healthy(u, c, s, x, scale=0.0, generator=torch.Generator().manual_seed(7), **kw)
    assert not guided.requires_grad and guided.is_inference()
    assert (guided - plain).abs().max() > 1e-4, "the guidance gradient must still change the sample"


def test_guidance_gradient_works_inside_inference_mode():
    _, c, _, x = _models()
    t = torch.tensor([10, 10])
    outside = log_prob_grad(c, x[:, :1], t, 0)
    with torch.inference_mode():
        xi, ti = x[:, :1].clone(), t.clone()  # inference tensors, as the sampler passes them
        inside = log_prob_grad(c, xi, ti, 0)
    assert inside.abs().sum() > 0 and torch.equal(inside, outside)


@pytest.mark.parametrize("encoding", ["stochastic", "deterministic"])
def test_chunking_is_bit_identical_on_cpu(encoding, monkeypatch):
    """batch_size 2 vs 64 (CPU micro-batches shrunk to 4 so that 5 slices x 2 draws span 3 chunks)."""
    monkeypatch.setattr(ddim, "CPU_MICRO_BATCH", 4)
    u, c, s, _ = _models()
    x = _stack(5)
    run = {bs: pseudo_healthy(u, c, s, x, noise_level=20, steps=2, scale=5.0, batch_size=bs, encoding=encoding,
                              draws=2, generator=torch.Generator().manual_seed(7)) for bs in (2, 64)}
    assert run[2].shape == (5, 1, 32, 32)
    assert torch.equal(run[2], run[64])
    assert torch.equal(class_probabilities(c, x[:, :1], 2), class_probabilities(c, x[:, :1], 64))


def test_sampler_reports_encode_and_decode_stages():
    u, c, s, x = _models()
    with record() as rec:
        pseudo_healthy(u, c, s, x, noise_level=20, steps=2, scale=5.0)
    assert [name for name, _ in rec] == ["encode", "decode"]
    assert all(sec >= 0 for _, sec in rec)


def test_no_host_synchronisation_in_the_step_loop(monkeypatch):
    """``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()`` or ``print`` inside the sampler fail the test."""
    u, c, s, x = _models()

    def forbidden(*_a, **_k):
        raise AssertionError("host synchronisation inside the sampler")

    for name in ("item", "cpu", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    monkeypatch.setattr(builtins, "print", forbidden)
    out = pseudo_healthy(u, c, s, x, noise_level=20, steps=2, scale=5.0, encoding="stochastic", draws=2,
                         generator=torch.Generator().manual_seed(1))
    monkeypatch.undo()
    assert torch.isfinite(out).all()


def test_cpu_uses_fixed_micro_batches_and_compile_is_off_by_default():
    assert ddim.chunk_size(torch.device("cpu"), 64) == ddim.CPU_MICRO_BATCH
    assert ddim.chunk_size(torch.device("cuda"), 64) == 64
    with pytest.raises(ValueError, match="batch size"):
        ddim.chunk_size(torch.device("cpu"), 0)
    u, _, _, _ = _models()
    assert maybe_compile(u, False) is u and maybe_compile(None, True) is None
