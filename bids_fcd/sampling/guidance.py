"""Classifier guidance towards the healthy class (Dhariwal & Nichol 2021; Wolleb et al. 2022)."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA; nothing on CPU (CPU results stay bit-identical to float32 runs)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def log_prob_grad(classifier: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, target: int) -> torch.Tensor:
    """∇ₓ log C(target | x_t, t).

    Safe to call inside ``torch.inference_mode()`` (the sampler does): the gradient is computed
    with inference mode switched off on fresh (cloned) copies of ``x_t`` and ``t``, since inference
    tensors cannot take part in autograd. On CUDA the classifier runs under bf16 autocast; the
    log-softmax and the returned gradient are float32.

    Args:
        classifier: logits (B, n_classes) from (x_t (B, 1, H, W), t (B,)).
        x_t: noisy FLAIR (B, 1, H, W); not modified.
        t: timesteps (B,) long.
        target: class index (0 = healthy, h).
    Returns:
        (B, 1, H, W) gradient, same dtype as ``x_t``.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x_t.detach().clone().requires_grad_(True)
        tt = t.detach().clone()
        with autocast(x.device):
            logits = classifier(x, tt)
        logp = torch.log_softmax(logits.float(), dim=-1)[:, target]
        (grad,) = torch.autograd.grad(logp.sum(), x)
    return grad.detach().to(x_t.dtype)
