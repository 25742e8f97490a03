"""The one-page PDF summary of a participant, for the patient's record.

One A4 portrait page made with matplotlib's PDF backend (no browser needed): the banner (the
synthetic-model warning or the research-software line), the summary, the top clusters through
their peaks in three planes (z above the threshold over the FLAIR), the cluster table and the
methods paragraph. The file carries no creation date, so the same input gives the same bytes.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.bids import derivatives as deriv
from bids_fcd.reports import figures, methods

log = logging.getLogger(__name__)

A4_INCHES = (8.27, 11.69)
#: Rows of the cluster table printed (the rest are counted; the HTML page has them all).
MAX_TABLE_ROWS = 8
#: Relative widths of the printed table's columns (:func:`table_cells`).
COL_WIDTHS = (0.06, 0.06, 0.14, 0.11, 0.07, 0.28, 0.28)
#: Height of one cluster's three-plane view (inches): at most, and below which the page is crowded.
MAX_VIEW_INCHES, MIN_VIEW_INCHES = 1.65, 1.0
#: Characters per line of the methods paragraph at its font size.
METHODS_WRAP = 150
INK, MUTED, WARN_BG, WARN_EDGE = "#111111", "#555555", "#fff1d6", figures.ORANGE


def pdf_path(root: Path, subject: str, session: str | None) -> Path:
    """``root/sub-<label>/[ses-<s>/]figures/sub-<label>[_ses-<s>]_report.pdf``."""
    return deriv.output_path(root, subject, session, "report_pdf")


def table_cells(rows: Sequence[dict[str, Any]], names: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the printed cluster table (the first :data:`MAX_TABLE_ROWS` rows)."""
    head = ["rank", "hemi", "lobe", "volume (mm³)", "peak z", "peak, template mm", "centre, T1w mm"]
    cells = []
    for r in list(rows)[:MAX_TABLE_ROWS]:
        lobe = str(r.get("report_lobe", r.get("lobe", "n/a")))
        cells.append([methods.format_value(r.get("rank", "")), str(r.get("hemisphere", "n/a")),
                      names.get(lobe, lobe), f"{float(r['size_mm3']):.0f}" if "size_mm3" in r else "n/a",
                      f"{float(r['peak_z']):.2f}" if "peak_z" in r else "n/a", str(r.get("peak_mm", "n/a")),
                      str(r.get("center_native", "n/a"))])
    return head, cells


def write_participant_pdf(path: Path, data: Any, rows: Sequence[dict[str, Any]],
                          views: Sequence[tuple[str, tuple[float, float, float]]], summary: str,
                          banner: str, methods_text: str, names: dict[str, str]) -> None:
    """Write the one-page PDF.

    Args:
        data: a :class:`~bids_fcd.reports.participant.ReportInputs` (arrays (X, Y, Z) on the grid).
        rows: the report's cluster rows (:func:`~bids_fcd.reports.participant.table_rows`).
        views: (caption, cut point in template mm) per top cluster (≤ 3), as in the cluster figure.
        summary, banner, methods_text: plain-text lines for the page. names: lobe code → name.
    """
    import matplotlib
    from nilearn import plotting

    aff = data.affine
    flair = figures.as_image(data.flair, aff)
    zpos = np.where(data.z > data.z_threshold, data.z, 0.0).astype(np.float32)
    zmax = float(max(np.max(zpos), data.z_threshold + 1.0))
    zimg = figures.as_image(zpos, aff)
    roi = (figures.as_image(data.roi, aff) if data.roi is not None and np.asarray(data.roi).any() else None)
    cmap = figures.overlay_cmap()
    W, H = A4_INCHES
    with figures.pyplot() as plt, matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 8}):
        from matplotlib.backends.backend_pdf import PdfPages

        fig = plt.figure(figsize=A4_INCHES, facecolor="white")
        y = 1.0 - 0.45 / H
        fig.text(0.05, y, f"{data.prefix} — bids-fcd participant summary", fontsize=15, weight="bold", color=INK,
                 va="top")
        y -= 0.34 / H
        fig.text(0.05, y, textwrap.fill(banner, 120), fontsize=8.5, color=INK, va="top",
                 bbox={"facecolor": WARN_BG, "edgecolor": WARN_EDGE, "boxstyle": "round,pad=0.5"})
        y -= (0.30 + 0.14 * banner.count("\n") + 0.14 * (len(banner) // 120)) / H
        fig.text(0.05, y, textwrap.fill(summary, 125), fontsize=8.5, color=INK, va="top")
        y -= (0.22 + 0.14 * (len(summary) // 125)) / H
        # What follows the views, in inches: the table (header + rows + an overflow line), the
        # methods (heading + wrapped lines at 6.2 pt x 1.25) and the footer; the views get the rest.
        head, cells = table_cells(rows, names)
        methods_wrapped = textwrap.fill(methods_text, METHODS_WRAP)
        below = ((0.2 * (len(cells) + 1) + 0.3 if cells else 0.25) + 0.3 + 0.108 * (methods_wrapped.count("\n") + 1)
                 + 0.75)
        row_h = min(MAX_VIEW_INCHES, (y * H - below) / max(len(views), 1) - 0.3)
        for title, cut in views:
            fig.text(0.05, y, title, fontsize=8.5, weight="bold", color=INK, va="top")
            rect = (0.04, y - (row_h + 0.12) / H, 0.84, row_h / H)
            d = plotting.plot_stat_map(zimg, bg_img=flair, display_mode="ortho", cut_coords=cut, figure=fig,
                                       axes=rect, black_bg=False, threshold=data.z_threshold, cmap=cmap,
                                       vmin=data.z_threshold, vmax=zmax, symmetric_cbar=False, colorbar=False,
                                       dim=-0.3, draw_cross=False, annotate=True, resampling_interpolation="nearest")
            if roi is not None:
                figures.contours(d, roi, figures.BLUE, 1.0)
            cax = fig.add_axes((0.9, y - (row_h - 0.1) / H, 0.015, (row_h - 0.4) / H))
            from matplotlib.cm import ScalarMappable
            from matplotlib.colors import Normalize

            fig.colorbar(ScalarMappable(Normalize(data.z_threshold, zmax), cmap), cax=cax).set_label("z")
            y -= (row_h + 0.3) / H
        if cells:
            n = len(cells) + 1
            height = 0.2 * n / H
            ax = fig.add_axes((0.05, y - height, 0.9, height))
            ax.axis("off")
            tab = ax.table(cellText=cells, colLabels=head, loc="upper left", cellLoc="left", colLoc="left",
                           bbox=(0.0, 0.0, 1.0, 1.0), colWidths=COL_WIDTHS)
            tab.auto_set_font_size(False)
            tab.set_fontsize(7.5)
            for (r, _), cell in tab.get_celld().items():
                cell.set_edgecolor("#bbbbbb")
                if r == 0:
                    cell.set_facecolor("#eeeeee")
            y -= height + 0.1 / H
            if len(rows) > len(cells):
                fig.text(0.05, y, f"… and {len(rows) - len(cells)} more cluster(s): see the HTML report.",
                         fontsize=7.5, color=MUTED, va="top")
                y -= 0.2 / H
        else:
            fig.text(0.05, y, "No cluster above threshold.", fontsize=8.5, color=INK, va="top")
            y -= 0.25 / H
        fig.text(0.05, y - 0.05 / H, "Methods", fontsize=9, weight="bold", color=INK, va="top")
        fig.text(0.05, y - 0.25 / H, methods_wrapped, fontsize=6.2, color=INK, va="top", linespacing=1.25)
        fig.text(0.05, 0.3 / H, textwrap.fill(
            f"Model {data.model_name} ({data.model_sha256[:12]}). Research software: not for clinical decisions. "
            f"The page {data.prefix}.html in the output directory has every cluster, the interactive viewer, quality "
            "control and provenance.", 160), fontsize=6.5, color=MUTED, va="bottom")
        if row_h < MIN_VIEW_INCHES:
            log.warning("%s: the PDF summary is crowded (views %.1f in high)", data.prefix, row_h)
        path.parent.mkdir(parents=True, exist_ok=True)
        with deriv.atomic_path(path) as tmp:
            with PdfPages(tmp, metadata={"CreationDate": None, "ModDate": None, "Title": f"{data.prefix} bids-fcd",
                                         "Creator": "bids-fcd"}) as pages:
                pages.savefig(fig, facecolor="white")
        plt.close(fig)
