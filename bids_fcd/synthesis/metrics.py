"""Metrics for synthetic image sets, as the synthesis papers report them (pure arrays, no files).

* Unbiased MMD² (Gretton et al. 2012) with a Gaussian kernel, bandwidth by the median heuristic
  on the pooled sample unless given; :func:`mmd_bootstrap` gives a percentile bootstrap 95 % CI.
* MS-SSIM within-set diversity: mean MS-SSIM over distinct pairs of one set (MONAI
  ``MultiScaleSSIMMetric``); lower = more diverse.
* KID (Bińkowski et al. 2018, unbiased MMD² with the cubic polynomial kernel) and a Fréchet
  distance on the features of :class:`RandomFeatures`, a small convolutional network with fixed,
  seeded random weights. **These are not comparable with Inception-based KID/FID figures** (no
  ImageNet weights can be downloaded here): they compare sets with each other on this network only.
* JS-DDPM-specific: mask-image consistency (FLAIR inside generated masks vs outside) and mask
  statistics (area, connected components, centroid).

Bootstraps resample each set independently with replacement (numpy ``Generator``); pairs that
come from the same original item are left out of the within-set kernel sums, so the bootstrap
distribution of the unbiased MMD² centres on the point estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

#: MS-SSIM scale weights of Wang et al. (2003); fewer scales use the first ones, renormalised.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile bootstrap CI (``level``, e.g. 0.95) over ``n_boot`` resamples."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 0

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _flat(x: np.ndarray | torch.Tensor) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return a.reshape(a.shape[0], -1).astype(np.float64)


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) squared Euclidean distances between the rows of a (n, d) and b (m, d), float64, ≥ 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """σ of the median heuristic: the median pairwise distance over the pooled rows of x and y."""
    z = np.concatenate([_flat(x), _flat(y)])
    d = sq_distances(z, z)[np.triu_indices(len(z), k=1)]
    med = float(np.sqrt(np.median(d))) if d.size else 1.0
    return med if med > 0 else 1.0


def _mmd2_from_kernel(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    """Unbiased MMD² from the full kernel blocks, on index draws ix (n,), iy (m,) of the original sets.

    Within-set sums leave out every pair whose two draws are the same original item.
    """
    sxx = kxx[np.ix_(ix, ix)]
    syy = kyy[np.ix_(iy, iy)]
    ox = ix[:, None] != ix[None, :]
    oy = iy[:, None] != iy[None, :]
    if ox.sum() == 0 or oy.sum() == 0:
        raise ValueError("MMD needs at least two distinct items in each set")
    return float((sxx * ox).sum() / ox.sum() + (syy * oy).sum() / oy.sum() - 2.0 * kxy[np.ix_(ix, iy)].mean())


def gaussian_kernels(x: np.ndarray, y: np.ndarray, bandwidth: float) -> tuple[np.ndarray, ...]:
    """k(a, b) = exp(−‖a − b‖² / (2σ²)) blocks (Kxx, Kyy, Kxy) for rows of x (n, d) and y (m, d)."""
    g = -0.5 / bandwidth**2
    return (np.exp(g * sq_distances(x, x)), np.exp(g * sq_distances(y, y)), np.exp(g * sq_distances(x, y)))


def mmd2(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased MMD² between two sets (each (n, ...) items, flattened) with a Gaussian kernel.

    ``bandwidth`` σ; None = :func:`median_bandwidth`. Can be slightly negative when the sets come
    from the same distribution (the estimator is unbiased, not non-negative).
    """
    a, b = _flat(x), _flat(y)
    sigma = bandwidth if bandwidth is not None else median_bandwidth(a, b)
    kxx, kyy, kxy = gaussian_kernels(a, b, sigma)
    return _mmd2_from_kernel(kxx, kyy, kxy, np.arange(len(a)), np.arange(len(b)))


def bootstrap(stat: Callable[[np.ndarray, np.ndarray], float], n_x: int, n_y: int, n_boot: int,
              rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``stat(ix, iy)`` over ``n_boot`` independent resamples of indices 0..n_x−1, 0..n_y−1."""
    vals = np.array([stat(rng.integers(0, n_x, n_x), rng.integers(0, n_y, n_y)) for _ in range(n_boot)])
    q = (1.0 - level) / 2.0
    return float(np.quantile(vals, q)), float(np.quantile(vals, 1.0 - q))


def mmd_bootstrap(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, rng: np.random.Generator,
                  n_boot: int = 1000, bandwidth: float | None = None, level: float = 0.95) -> Estimate:
    """Unbiased MMD² and its bootstrap CI (the bandwidth is fixed from the full pooled sample first)."""
    a, b = _flat(x), _flat(y)
    sigma = bandwidth if bandwidth is not None else median_bandwidth(a, b)
    kxx, kyy, kxy = gaussian_kernels(a, b, sigma)
    value = _mmd2_from_kernel(kxx, kyy, kxy, np.arange(len(a)), np.arange(len(b)))
    lo, hi = bootstrap(lambda ix, iy: _mmd2_from_kernel(kxx, kyy, kxy, ix, iy), len(a), len(b), n_boot, rng, level)
    return Estimate(value, lo, hi, level, n_boot)


def split_half_mmd(x: np.ndarray | torch.Tensor, rng: np.random.Generator, n_boot: int = 1000,
                   bandwidth: float | None = None, groups: np.ndarray | None = None) -> Estimate:
    """Real-vs-real reference: MMD² between two random halves of one set, with its bootstrap CI.

    ``groups`` (n,) (e.g. subject labels) keeps every group in one half, so the halves are
    subject-disjoint like a train/test split.
    """
    a = _flat(x)
    if groups is None:
        perm = rng.permutation(len(a))
        half = np.zeros(len(a), bool)
        half[perm[: len(a) // 2]] = True
    else:
        g = np.asarray(groups)
        labels = rng.permutation(np.unique(g))
        half = np.isin(g, labels[: len(labels) // 2])
    return mmd_bootstrap(a[half], a[~half], rng, n_boot, bandwidth)


# ---------------------------------------------------------------------------------------------- MS-SSIM


def ms_ssim_weights(shape: tuple[int, ...], kernel_size: int) -> tuple[float, ...]:
    """The most MS-SSIM scales (≤ 5) that MONAI accepts for images of ``shape`` and ``kernel_size``,
    with Wang et al.'s weights renormalised to sum to 1."""
    for n in range(len(MS_SSIM_WEIGHTS), 0, -1):
        div = max(1, n - 1) ** 2  # MONAI 1.6's size check
        if all(s // div > kernel_size - 1 for s in shape):
            w = np.array(MS_SSIM_WEIGHTS[:n])
            return tuple(float(v) for v in w / w.sum())
    raise ValueError(f"images of shape {shape} are too small for MS-SSIM with kernel {kernel_size}; use a "
                     "smaller kernel_size")


def ms_ssim_pairs(a: torch.Tensor, b: torch.Tensor, kernel_size: int = 7, data_range: float = 2.0) -> torch.Tensor:
    """MS-SSIM of paired images a, b (B, C, *spatial) (2D or 3D), values in a range of width
    ``data_range`` ([−1, 1] → 2); returns (B,) float. Identical images give 1."""
    from monai.metrics import MultiScaleSSIMMetric

    spatial = tuple(a.shape[2:])
    # MS-SSIM's luminance term needs non-negative images: shift [−1, 1] onto [0, 2]
    lo = torch.minimum(a.amin(), b.amin())
    metric = MultiScaleSSIMMetric(spatial_dims=len(spatial), data_range=data_range, kernel_size=kernel_size,
                                  weights=ms_ssim_weights(spatial, kernel_size), reduction="none")
    out = metric(a.float() - lo, b.float() - lo)
    if not isinstance(out, torch.Tensor):
        raise TypeError("MultiScaleSSIMMetric returned a sequence; expected a tensor")
    return out.reshape(out.shape[0], -1).mean(dim=1)


def _pairs(n: int, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(P, 2) distinct index pairs i < j: all of them, or ``max_pairs`` drawn without replacement."""
    ii, jj = np.triu_indices(n, k=1)
    allp = np.stack([ii, jj], axis=1)
    if len(allp) <= max_pairs:
        return allp
    return allp[np.sort(rng.choice(len(allp), max_pairs, replace=False))]


def ms_ssim_diversity(x: np.ndarray | torch.Tensor, rng: np.random.Generator, max_pairs: int = 2000,
                      n_boot: int = 1000, kernel_size: int = 7, data_range: float = 2.0,
                      batch: int = 256) -> Estimate:
    """Within-set MS-SSIM: mean over distinct pairs of items of x (n, C, *spatial), with a CI from
    resampling pairs. Higher = the set's items look more alike (less diverse)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    if t.shape[0] < 2:
        raise ValueError("MS-SSIM diversity needs at least two images")
    pr = _pairs(t.shape[0], max_pairs, rng)
    vals = torch.cat([ms_ssim_pairs(t[pr[k:k + batch, 0]], t[pr[k:k + batch, 1]], kernel_size, data_range)
                      for k in range(0, len(pr), batch)]).numpy().astype(np.float64)
    boots = np.array([vals[rng.integers(0, len(vals), len(vals))].mean() for _ in range(n_boot)])
    return Estimate(float(vals.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)), 0.95,
                    n_boot)


# ---------------------------------------------------------------------------------------------- features


class RandomFeatures(torch.nn.Module):
    """A fixed random convolutional feature extractor for KID / Fréchet distances offline.

    Three stride-2 3×3(×3) convolutions with ReLU, weights drawn once from a seeded
    ``torch.Generator`` (He-normal), never trained. Features: per-level channel mean and standard
    deviation, concatenated: (B, 2·Σwidths). Not comparable with Inception features.
    """

    def __init__(self, in_channels: int = 1, spatial_dims: int = 2, widths: tuple[int, ...] = (16, 32, 64),
                 seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        conv = torch.nn.Conv2d if spatial_dims == 2 else torch.nn.Conv3d
        layers, c = [], in_channels
        for w in widths:
            m = conv(c, w, 3, stride=2, padding=1)
            fan_in = c * 3**spatial_dims
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
            layers.append(m)
            c = w
        self.layers = torch.nn.ModuleList(layers)
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, *spatial) → (B, 2·Σwidths) float32."""
        feats = []
        h = x.float()
        for layer in self.layers:
            h = torch.relu(layer(h))
            flat = h.flatten(2)
            feats += [flat.mean(dim=2), flat.std(dim=2)]
        return torch.cat(feats, dim=1)


def features(x: np.ndarray | torch.Tensor, net: RandomFeatures, batch: int = 128) -> np.ndarray:
    """(n, C, *spatial) images → (n, F) float64 features of ``net``."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    return torch.cat([net(t[k:k + batch]) for k in range(0, len(t), batch)]).double().numpy()


def polynomial_kernels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """KID's kernel k(a, b) = (a·b / d + 1)³ blocks (Kxx, Kyy, Kxy)."""
    d = x.shape[1]
    return (((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3)


def kid(fx: np.ndarray, fy: np.ndarray, rng: np.random.Generator, n_boot: int = 1000) -> Estimate:
    """Kernel distance (unbiased MMD², cubic polynomial kernel) between feature sets (n, F), (m, F)."""
    kxx, kyy, kxy = polynomial_kernels(fx, fy)
    value = _mmd2_from_kernel(kxx, kyy, kxy, np.arange(len(fx)), np.arange(len(fy)))
    lo, hi = bootstrap(lambda ix, iy: _mmd2_from_kernel(kxx, kyy, kxy, ix, iy), len(fx), len(fy), n_boot, rng)
    return Estimate(value, lo, hi, 0.95, n_boot)


def frechet(fx: np.ndarray, fy: np.ndarray) -> float:
    """Fréchet distance ‖μx − μy‖² + tr(Σx + Σy − 2(ΣxΣy)^½) between feature sets (n, F), (m, F)."""
    from scipy import linalg

    mx, my = fx.mean(0), fy.mean(0)
    cx, cy = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
    root = linalg.sqrtm(cx @ cy)
    root = np.real(root)
    return float(((mx - my) ** 2).sum() + np.trace(cx + cy - 2.0 * root))


def frechet_bootstrap(fx: np.ndarray, fy: np.ndarray, rng: np.random.Generator, n_boot: int = 200) -> Estimate:
    """Fréchet distance and its bootstrap CI (fewer resamples by default: each costs a matrix sqrt)."""
    lo, hi = bootstrap(lambda ix, iy: frechet(fx[ix], fy[iy]), len(fx), len(fy), n_boot, rng)
    return Estimate(frechet(fx, fy), lo, hi, 0.95, n_boot)


# ---------------------------------------------------------------------------------------------- masks


def binarise(mask: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """Generated mask channel (..., H, W) in [−1, 1] → bool lesion mask: M > 0, then connected
    components (8-connected in-plane) smaller than ``min_pixels`` dropped."""
    m = np.asarray(mask) > 0
    if min_pixels <= 1:
        return m
    flat = m.reshape(-1, *m.shape[-2:])
    out = np.zeros_like(flat)
    for k, sl in enumerate(flat):
        lab, n = ndimage.label(sl, structure=np.ones((3, 3)))
        if n:
            sizes = ndimage.sum(sl, lab, index=np.arange(1, n + 1))
            out[k] = np.isin(lab, 1 + np.flatnonzero(sizes >= min_pixels))
    return out.reshape(m.shape)


def near_binary_fraction(mask: np.ndarray, tol: float = 0.2) -> float:
    """Fraction of mask values within ``tol`` of −1 or +1 (1 = perfectly binary)."""
    m = np.asarray(mask, np.float64)
    return float((np.abs(np.abs(m) - 1.0) <= tol).mean())


def flair_ratio(images: np.ndarray, masks: np.ndarray, brain_threshold: float = -0.95) -> float:
    """Mask-image consistency: mean FLAIR inside the lesion masks / mean FLAIR in the rest of the brain.

    ``images`` (n, H, W) in [−1, 1] (shifted by +1 so that background is 0 and the ratio is of
    positive intensities), ``masks`` (n, H, W) bool. Brain = image > ``brain_threshold``. NaN when
    no mask pixel exists.
    """
    img = np.asarray(images, np.float64) + 1.0
    m = np.asarray(masks, bool)
    brain = (np.asarray(images) > brain_threshold) & ~m
    if not m.any() or not brain.any():
        return float("nan")
    return float(img[m].mean() / img[brain].mean())


def gradient_energy(images: np.ndarray, brain_threshold: float = -0.95) -> float:
    """Sharpness: mean in-plane gradient magnitude |∇I| (finite differences, per pixel) inside the brain
    (image > ``brain_threshold`` at both ends of the difference) of (n, H, W) images. Blurred
    synthetic images score lower than real ones, which pixel MMD with a wide kernel hardly sees."""
    img = np.asarray(images, np.float64)
    inside = img > brain_threshold
    gy = np.abs(np.diff(img, axis=-2))[inside[..., 1:, :] & inside[..., :-1, :]]
    gx = np.abs(np.diff(img, axis=-1))[inside[..., :, 1:] & inside[..., :, :-1]]
    both = np.concatenate([gy, gx])
    return float(both.mean()) if both.size else float("nan")


@dataclass(frozen=True)
class MaskStats:
    """Per-set lesion-mask statistics (over slices with at least one lesion pixel unless noted)."""

    n: int
    empty_fraction: float
    area_mean: float
    area_median: float
    components_mean: float
    centroid_row_mean: float
    centroid_col_mean: float


def mask_stats(masks: np.ndarray) -> MaskStats:
    """Statistics of bool masks (n, H, W): fraction empty, area (pixels), connected components
    (8-connected) per slice, mean centroid (row, col) in pixels."""
    m = np.asarray(masks, bool)
    areas = m.reshape(len(m), -1).sum(axis=1)
    full = m[areas > 0]
    comps, rows, cols = [], [], []
    for sl in full:
        comps.append(ndimage.label(sl, structure=np.ones((3, 3)))[1])
        r, c = np.nonzero(sl)
        rows.append(r.mean())
        cols.append(c.mean())
    nan = float("nan")
    return MaskStats(len(m), float((areas == 0).mean()) if len(m) else nan,
                     float(areas[areas > 0].mean()) if len(full) else nan,
                     float(np.median(areas[areas > 0])) if len(full) else nan,
                     float(np.mean(comps)) if comps else nan, float(np.mean(rows)) if rows else nan,
                     float(np.mean(cols)) if cols else nan)
