"""Report figures (matplotlib Agg + nilearn): QC outlines, cluster views, glass brain, lobe bars.

Every function takes arrays on the model grid (W, H, S) = (x, y, z) in RAS voxel order with the
grid's (4, 4) voxel → MNI152NLin2009aSym mm affine, writes one file and returns nothing. Images
are drawn by nilearn, whose slices are in *neurological* convention (the participant's left on
the left of axial and coronal views) and carry L/R letters. Colours: a sequential, perceptually
uniform, colour-blind-safe overlay map (inferno without its near-black end, so weak anomalies stay
visible on a dark background) and outlines from the Okabe-Ito palette.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.io import atomic_path

log = logging.getLogger(__name__)

#: Okabe-Ito colours (colour-blind safe) for outlines and bars.
ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
                                                        "#D55E00", "#CC79A7")
#: Ground-truth lesion outline (cyan-blue: apart from every colour of the overlay map).
LESION_COLOUR = SKY
#: Where the overlay map starts inside matplotlib's ``inferno`` (0 = black, 1 = pale yellow).
OVERLAY_START = 0.35
FIG_BG = "black"
TEXT = "#e8e8e8"
DPI = 90


@contextmanager
def pyplot() -> Iterator[Any]:
    """matplotlib.pyplot on the Agg backend, with nilearn's chatter (empty contours …) silenced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield plt


def overlay_cmap():  # untyped: matplotlib Colormap
    """``inferno`` from :data:`OVERLAY_START` to 1: dark red → orange → yellow, never near black."""
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    base = matplotlib.colormaps["inferno"]
    return LinearSegmentedColormap.from_list("bids_fcd_overlay", base(np.linspace(OVERLAY_START, 1.0, 256)))


def as_image(arr: np.ndarray, affine: np.ndarray):  # untyped: nibabel image
    """A float32 NIfTI image of a grid array (for nilearn)."""
    import nibabel as nib

    return nib.Nifti1Image(np.asarray(arr, np.float32), affine)


def grey_window(vol: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Grey window of a normalised image: -1 (background) to the brain's 99.5th percentile."""
    vals = vol[mask] if mask is not None and mask.any() else vol[vol > -1]
    hi = float(np.percentile(vals, 99.5)) if vals.size else 1.0
    return -1.0, max(hi, -0.5)


def voxel_to_mm(affine: np.ndarray, ijk: Sequence[float]) -> tuple[float, float, float]:
    """Voxel index → mm through ``affine``."""
    xyz = affine[:3, :3] @ np.asarray(ijk, float) + affine[:3, 3]
    return float(xyz[0]), float(xyz[1]), float(xyz[2])


def _cuts(mask: np.ndarray, affine: np.ndarray, axis: int, n: int) -> list[float]:
    """``n`` cut positions (mm) along ``axis`` spread over the mask's extent (10th-90th percentile)."""
    idx = np.argwhere(mask)[:, axis] if mask.any() else np.arange(mask.shape[axis])
    vox = np.linspace(np.percentile(idx, 10), np.percentile(idx, 90), n)
    return [float(affine[axis, axis] * v + affine[axis, 3]) for v in vox]


def _save(fig: Any, path: Path) -> None:
    """Save a figure atomically (its format from ``path``'s extension)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=DPI, facecolor=fig.get_facecolor())


def contours(display: Any, img: Any, colour: str, width: float = 1.0, style: str = "solid") -> None:
    display.add_contours(img, levels=[0.5], colors=[colour], linewidths=width, linestyles=style)


def qc_outline_figure(path: Path, background: np.ndarray, affine: np.ndarray, mask: np.ndarray,
                      outlines: Sequence[tuple[Any, str]], title: str, n_cuts: int = 5) -> None:
    """Outlines over an image in three planes: rows axial, coronal, sagittal; ``n_cuts`` slices each.

    Args:
        background: (W, H, S) float image (normalised, background -1). mask: (W, H, S) bool brain,
            used for the grey window and to place the cuts.
        outlines: (nibabel image, colour) pairs; each image is outlined at 0.5 (any grid: nilearn
            draws in mm).
    """
    from nilearn import plotting

    vmin, vmax = grey_window(background, mask)
    bg = as_image(background, affine)
    with pyplot() as plt:
        fig = plt.figure(figsize=(12, 6.6), facecolor=FIG_BG)
        fig.suptitle(title, color=TEXT, fontsize=11, y=0.995)
        for row, (mode, axis) in enumerate((("z", 2), ("y", 1), ("x", 0))):
            rect = (0.0, 0.66 - row * 0.325, 1.0, 0.31)
            d = plotting.plot_anat(bg, display_mode=mode, cut_coords=_cuts(mask, affine, axis, n_cuts), figure=fig,
                                   axes=rect, black_bg=True, vmin=vmin, vmax=vmax, dim=0, annotate=True,
                                   draw_cross=False, colorbar=False)
            for img, colour in outlines:
                contours(d, img, colour, 0.9)
        _save(fig, path)
        plt.close(fig)


def template_outlines(affine: np.ndarray, shape: tuple[int, int, int]):  # untyped: list of (image, colour)
    """The template's brain outline (orange) and white-matter boundary (sky blue) on the model grid.

    nilearn's 1 mm images are sampled (linear) at the grid's voxel centres, which is far faster than
    letting nilearn contour the 1 mm volumes slice by slice.
    """
    from scipy import ndimage

    from bids_fcd.atlas import load_template

    tpl = load_template(resolution=1)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), 0).reshape(3, -1).astype(float)
    xyz = affine[:3, :3] @ ijk + affine[:3, 3:4]
    out = []
    for key, colour in (("mask", ORANGE), ("wm", SKY)):
        img = tpl[key]
        inv = np.linalg.inv(img.affine)
        vox = inv[:3, :3] @ xyz + inv[:3, 3:4]
        vals = ndimage.map_coordinates(np.asarray(img.dataobj, np.float32), vox, order=1, cval=0.0)
        out.append((as_image(vals.reshape(shape), affine), colour))
    return out


def cluster_figure(path: Path, data: Any, views: Sequence[tuple[str, tuple[float, float, float]]]) -> None:
    """For each view: rows FLAIR | pseudo-healthy FLAIR | z over FLAIR, each sagittal, coronal, axial.

    Args:
        data: a :class:`bids_fcd.reports.participant.ReportInputs`.
        views: (title, cut point in template mm) per block, e.g. one per top cluster through its peak.
            Overlays show z above ``data.z_threshold``; the ground-truth lesion (``data.roi``) is
            outlined in :data:`LESION_COLOUR` in every panel.
    """
    from nilearn import plotting

    aff = data.affine
    flair, pseudo = as_image(data.flair, aff), as_image(data.pseudo, aff)
    vmin, vmax = grey_window(data.flair, data.mask)
    zpos = np.where(data.z > data.z_threshold, data.z, 0.0).astype(np.float32)
    zmax = float(max(np.max(zpos), data.z_threshold + 1.0))
    zimg = as_image(zpos, aff)
    roi = as_image(data.roi, aff) if data.roi is not None and np.asarray(data.roi).any() else None
    cmap = overlay_cmap()
    n = len(views)
    row_h, head = 2.35, 0.42
    height = n * (3 * row_h + head)
    with pyplot() as plt:
        fig = plt.figure(figsize=(9.6, height), facecolor=FIG_BG)
        for b, (title, cut) in enumerate(views):
            top = 1.0 - b * (3 * row_h + head) / height
            fig.text(0.01, top - 0.3 * head / height, title, color=TEXT, fontsize=11, va="center", ha="left",
                     weight="bold")
            rows = (("FLAIR", flair, None), ("pseudo-healthy FLAIR", pseudo, None),
                    (f"z > {data.z_threshold:g} over FLAIR", flair, zimg))
            for r, (label, bg, stat) in enumerate(rows):
                y0 = top - (head + (r + 1) * row_h) / height
                rect = (0.0, y0, 0.93, row_h / height * 0.97)
                if stat is None:
                    d = plotting.plot_anat(bg, display_mode="ortho", cut_coords=cut, figure=fig, axes=rect,
                                           black_bg=True, vmin=vmin, vmax=vmax, dim=0, draw_cross=False,
                                           annotate=True, colorbar=False, title=label)
                else:
                    d = plotting.plot_stat_map(stat, bg_img=bg, display_mode="ortho", cut_coords=cut, figure=fig,
                                               axes=rect, black_bg=True, threshold=data.z_threshold, cmap=cmap,
                                               vmin=data.z_threshold, vmax=zmax, symmetric_cbar=False,
                                               colorbar=False, dim=0, draw_cross=False, annotate=True, title=label,
                                               resampling_interpolation="nearest")
                    _colorbar(fig, (0.945, y0 + 0.1 * row_h / height, 0.014, 0.75 * row_h / height), cmap,
                              data.z_threshold, zmax)
                if roi is not None:
                    contours(d, roi, LESION_COLOUR, 1.3)
        _save(fig, path)
        plt.close(fig)


def _colorbar(fig: Any, rect: tuple[float, float, float, float], cmap: Any, vmin: float, vmax: float) -> None:
    """A vertical colour bar in z units at ``rect`` (figure fraction)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ax = fig.add_axes(rect)
    cb = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap), cax=ax)
    cb.ax.tick_params(colors=TEXT, labelsize=8)
    cb.outline.set_edgecolor("#666666")
    ax.set_title("z", color=TEXT, fontsize=9)


def _label_colorbar(display: Any, text: str) -> None:
    """Put ``text`` (the unit) beside a nilearn display's colour bar, where nilearn exposes it."""
    ax = getattr(display, "_colorbar_ax", None)
    if ax is not None:
        ax.set_title(text, color=TEXT, fontsize=9)


def glass_brain_figure(path: Path, data: Any, peaks_mm: Sequence[tuple[float, float, float]]) -> None:
    """Glass brain (sagittal, coronal, axial) of the clusters' z, peaks of the top clusters marked."""
    from nilearn import plotting

    zc = np.where(data.labels > 0, data.z, 0.0).astype(np.float32)
    with pyplot() as plt:
        fig = plt.figure(figsize=(8.4, 2.9), facecolor=FIG_BG)
        if zc.max() > 0:
            d = plotting.plot_glass_brain(as_image(zc, data.affine), display_mode="ortho", figure=fig, black_bg=True,
                                          threshold=data.z_threshold, cmap=overlay_cmap(), vmin=data.z_threshold,
                                          vmax=float(max(zc.max(), data.z_threshold + 1.0)), symmetric_cbar=False,
                                          plot_abs=False, colorbar=True, cbar_tick_format="%.1f", annotate=True,
                                          title=f"clusters (z > {data.z_threshold:g})")
            _label_colorbar(d, "z")
            if peaks_mm:
                d.add_markers(list(peaks_mm), marker_color=LESION_COLOUR, marker_size=30)
        else:
            plotting.plot_glass_brain(None, display_mode="ortho", figure=fig, black_bg=True, annotate=True,
                                      title="no cluster above threshold")
        _save(fig, path)
        plt.close(fig)


def lobe_bar_figure(path: Path, probabilities: dict[str, float], names: dict[str, str]) -> None:
    """Horizontal bars of the lobe classifier's probabilities; the largest highlighted."""
    with pyplot() as plt:
        keys = list(probabilities)
        vals = [float(probabilities[k]) for k in keys]
        best = int(np.argmax(vals)) if vals else -1
        fig, ax = plt.subplots(figsize=(5.6, 0.42 * len(keys) + 0.9), facecolor=FIG_BG)
        ax.set_facecolor(FIG_BG)
        colours = [ORANGE if i == best else (SKY if k == "healthy" else "#8a8a8a") for i, k in enumerate(keys)]
        y = np.arange(len(keys))[::-1]
        ax.barh(y, vals, color=colours, height=0.65)
        ax.set_yticks(y, [f"{names.get(k, k)} ({k})" if k != "healthy" else "healthy" for k in keys])
        for yy, v in zip(y, vals, strict=True):
            ax.text(min(v + 0.01, 0.88), yy, f"{v:.2f}", va="center", color=TEXT, fontsize=9)
        ax.axvline(0.5, color=TEXT, lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability", color=TEXT)
        ax.tick_params(colors=TEXT)
        for s in ax.spines.values():
            s.set_color("#666666")
        fig.tight_layout()
        _save(fig, path)
        plt.close(fig)


def froc_figure_svg(froc: dict[str, Any], operating_threshold: float) -> str:
    """The free-response curve as inline SVG text (no XML header): sensitivity against FP clusters
    per control, top-cluster and any-cluster hits; the run's threshold marked."""
    import io

    with pyplot() as plt:
        fig, ax = plt.subplots(figsize=(6.0, 4.0), facecolor=FIG_BG)
        ax.set_facecolor(FIG_BG)
        x = np.asarray(froc["fp_per_control"], float)
        for key, colour, label in (("sensitivity_any", SKY, "any cluster hits the lesion"),
                                   ("sensitivity_top", ORANGE, "top cluster hits the lesion")):
            ax.step(x, np.asarray(froc[key], float), where="post", color=colour, lw=1.8, label=label)
        thr = np.asarray(froc["threshold"], float)
        i = int(np.argmin(np.abs(thr - operating_threshold)))
        ax.plot([x[i]], [froc["sensitivity_top"][i]], "o", color=YELLOW, ms=7,
                label=f"operating point (z > {operating_threshold:g})")
        ax.set_xlabel("false-positive clusters per control", color=TEXT)
        ax.set_ylabel("subject sensitivity", color=TEXT)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.tick_params(colors=TEXT)
        for s in ax.spines.values():
            s.set_color("#666666")
        ax.grid(color="#333333", lw=0.6)
        leg = ax.legend(loc="lower right", facecolor="#1a1a1a", edgecolor="#444444", fontsize=8)
        for t in leg.get_texts():
            t.set_color(TEXT)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", facecolor=fig.get_facecolor())
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]
