"""JS-DDPM's loss terms: lesion-weighted Lp norm, focal frequency loss, Kendall uncertainty weighting."""

from __future__ import annotations

import torch


def lp_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
    """mean(|pred − target|^p · w) / mean(w) for (B, 1, H, W) tensors; w > 0 (lesion pixels heavier)."""
    return ((pred - target).abs().pow(p) * weight).mean() / weight.mean()


def focal_frequency_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.2, patch_factor: int = 2,
                         log_matrix: bool = True) -> torch.Tensor:
    """Focal frequency loss (Jiang et al., ICCV 2021) between images (B, C, H, W).

    Each image is cut into ``patch_factor``² patches; with F the orthonormal 2D FFT of a patch and
    d = |F(pred) − F(target)|², the loss is mean(w · d) with the spectrum weight
    w = (√d)^α (``log_matrix``: log(1 + (√d)^α)) divided by its maximum over the patch, clamped to
    [0, 1] and not differentiated (the focus follows the hard frequencies).
    """
    b, c, h, w = pred.shape
    f = patch_factor
    if h % f or w % f:
        raise ValueError(f"image {h}x{w} is not divisible by the FFL patch factor {f}")

    def patches(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(b, c, f, h // f, f, w // f).permute(0, 1, 2, 4, 3, 5)

    diff = torch.fft.fft2(patches(pred.float()), norm="ortho") - torch.fft.fft2(patches(target.float()), norm="ortho")
    d = diff.real**2 + diff.imag**2
    with torch.no_grad():
        wgt = d.sqrt() ** alpha
        if log_matrix:
            wgt = torch.log1p(wgt)
        wgt = wgt / wgt.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
        wgt = torch.nan_to_num(wgt).clamp(0.0, 1.0)
    return (wgt * d).mean()


class KendallWeights(torch.nn.Module):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    ``log_vars`` s_g = log σ_g² (G,) are learned; terms L_k (K,) are summed into groups by
    ``groups`` (K,) and the total is Σ_g ½·exp(−s_g)·L_g + ½·s_g. ``enabled=False`` gives Σ_k L_k
    with fixed weights (s_g not used).
    """

    def __init__(self, groups: tuple[int, ...], initial_log_vars: tuple[float, ...], enabled: bool = True) -> None:
        super().__init__()
        self.register_buffer("groups", torch.tensor(groups, dtype=torch.long))
        self.log_vars = torch.nn.Parameter(torch.tensor(initial_log_vars, dtype=torch.float32),
                                           requires_grad=enabled)
        self.enabled = enabled

    def forward(self, terms: torch.Tensor) -> torch.Tensor:
        """terms (K,) → scalar total loss."""
        if not self.enabled:
            return terms.sum()
        g: torch.Tensor = self.groups  # type: ignore[assignment]
        per_group = torch.zeros_like(self.log_vars).index_add(0, g, terms)
        return (0.5 * torch.exp(-self.log_vars) * per_group + 0.5 * self.log_vars).sum()
