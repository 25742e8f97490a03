"""Classifier guidance towards the healthy class (Dhariwal & Nichol 2021; Wolleb et al. 2022)."""

from __future__ import annotations

import torch


def log_prob_grad(classifier: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, target: int) -> torch.Tensor:
    """∇ₓ log C(target | x_t, t).

    Args:
        classifier: logits (B, n_classes) from (x_t (B, 1, H, W), t (B,)).
        x_t: noisy FLAIR (B, 1, H, W); not modified.
        t: timesteps (B,) long.
        target: class index (0 = healthy, h).
    Returns:
        (B, 1, H, W) gradient, same dtype as ``x_t``.
    """
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        logp = torch.log_softmax(classifier(x, t), dim=-1)[:, target]
        (grad,) = torch.autograd.grad(logp.sum(), x)
    return grad.detach()
