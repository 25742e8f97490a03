"""The cohort page ``OUTPUT_DIR/group.html``: failures first, then detection, thumbnails, the table.

Links are relative (the page sits at OUTPUT_DIR beside the participant pages), so the page works
when opened from disk; the free-response curve is inline SVG.
"""

from __future__ import annotations

import datetime
import html
import logging
import math
from pathlib import Path
from typing import Any

from bids_fcd.bids import derivatives as deriv
from bids_fcd.reports import figures, methods
from bids_fcd.reports.participant import figure_paths, page, relative_link, report_path
from bids_fcd.reports.pdf import pdf_path

log = logging.getLogger(__name__)

#: The participant figure shown as the thumbnail (a kind of :data:`participant.FIGURES`).
THUMBNAIL = "glassbrain"
_THUMB_CSS = ("<style>.thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumb{background:#1b1b1b;border:1px solid #333;"
              "border-radius:4px;padding:6px;width:300px}.thumb img{width:100%;height:auto;background:#000}"
              ".thumb .cap{font-size:.85em}.metrics td{font-variant-numeric:tabular-nums}</style>")
METRIC_LABELS = {
    "n_participants": "participants", "n_scored": "patients with a lesion mask (scored)",
    "n_controls": "healthy controls", "binarisation": "binarisation",
    "subject_sensitivity": "subject sensitivity (top cluster hits the lesion)",
    "fp_clusters_per_control": "false-positive clusters per control", "fp_clusters_per_patient":
    "false-positive clusters per patient", "R@5": "R@5 (lesion slices)", "R@10": "R@10 (lesion slices)",
    "peak_hit@10": "peak hit within 10 pixels (lesion slices)", "fp_pixels_per_slice":
    "false-positive pixels per brain slice", "dice_z": "Dice of the clusters", "dice_best_per_subject":
    "Dice at each participant's best threshold (oracle)", "lobe_accuracy": "lobe classifier accuracy",
}


def _subject_session(row: dict[str, Any]) -> tuple[str, str | None]:
    sub = str(row["participant_id"]).removeprefix("sub-")
    ses = row.get("session")
    return sub, (str(ses) if ses not in (None, "", "n/a") else None)


def write_group_report(out_dir: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str],
                       crashes: list[dict[str, str]], summary: dict[str, Any] | None, froc: dict[str, Any] | None,
                       threshold: float, models: list[str] | None = None) -> Path:
    """Write ``OUTPUT_DIR/group.html`` and return its path.

    Args:
        rows: the group summary rows (keys ``columns``). crashes: crash records (``participant``,
            ``message``). summary: cohort metrics (``cohort_summary``) or None. froc: the curve of
            :func:`bids_fcd.evaluation.froc.froc_curve` or None (no lesion masks). threshold: the
            cluster-forming z threshold (nan when participants differ). models: names of the models
            the participants were run with (a warning banner when one was trained on synthetic data).
    """
    out_dir = Path(out_dir)
    esc = html.escape
    b: list[str] = [_THUMB_CSS, "<h1>bids-fcd: cohort</h1>",
                    f"<p class='small'>Group report, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}: "
                    f"{len(rows)} participant(s) with outputs, {len(crashes)} failed. "
                    "Research software: not for clinical decisions.</p>"]
    synthetic = sorted({m for m in models or [] if m.lower().startswith("phantom")})
    if synthetic:
        b.append("<div class='banner' id='synthetic-model'><p class='big'>Model(s) "
                 + ", ".join(f"<code>{esc(m)}</code>" for m in synthetic) + " trained on <b>synthetic (phantom) "
                 "data</b>, not on patients: these results are a demonstration, not detections. <b>Not for clinical "
                 "use.</b> Each participant page quotes the model card.</p></div>")
    elif models:
        b.append(f"<p class='small'>Model(s): {esc(', '.join(sorted(set(models))))}.</p>")
    if crashes:
        b.append("<h2 id='failed'>Failed participants</h2><table id='crashes'><tr><th>participant</th>"
                 "<th>error</th><th>record</th></tr>")
        for c in crashes:
            rec = Path(c.get("path", ""))
            link = (f"<a href='{esc(relative_link(rec, out_dir))}'>{esc(rec.name)}</a>" if c.get("path") else "")
            b.append(f"<tr><td>{esc(c['participant'])}</td><td class='error'>{esc(c['message'])}</td>"
                     f"<td>{link}</td></tr>")
        b.append("</table>")
    if summary is not None and summary.get("n_scored"):
        b.append("<h2 id='detection'>Detection</h2>")
        b.append("<table class='metrics' id='metrics'>" + "".join(
            f"<tr><th>{esc(METRIC_LABELS.get(k, k))}</th><td>{esc(methods.format_value(v))}</td></tr>"
            for k, v in summary.items()) + "</table>")
        if froc is not None and froc.get("n_controls") and froc.get("n_patients"):
            b.append("<h3>Free-response curve</h3>")
            b.append(f"<div id='froc'>{figures.froc_figure_svg(froc, threshold)}</div>")
            b.append(f"<p class='small'>Marks are each participant's clusters (z &gt; {threshold:g}), scored by "
                     "their peak z; raising the cut-off on the peak z from the run's threshold trades sensitivity "
                     f"for false positives. {froc['n_patients']} patient(s) with a lesion mask, {froc['n_controls']} "
                     "control(s); a hit is a cluster that overlaps the lesion or whose centre lies within 10 mm of "
                     "it. Lower thresholds need a new participant-level run.</p>")
        elif froc is not None:
            b.append("<p class='small'>No free-response curve: it needs both patients with lesion masks and "
                     "healthy controls.</p>")
    b.append("<h2 id='participants'>Participants</h2><div class='thumbs'>")
    for r in rows:
        sub, ses = _subject_session(r)
        thumb = figure_paths(out_dir, sub, ses)[THUMBNAIL]
        rep = report_path(out_dir, sub, ses)
        label = f"sub-{sub}" + (f" ses-{ses}" if ses else "")
        cap = (f"<b>{esc(label)}</b> ({esc(str(r.get('group', 'n/a')))}): {esc(str(r.get('n_clusters', 'n/a')))} "
               f"cluster(s)" + (f", top {esc(str(r['top_cluster_hemisphere']))} {esc(str(r['top_cluster_lobe']))} "
                                f"z {float(r['top_cluster_peak_z']):.1f}" if r.get("top_cluster_lobe") else ""))
        img = (f"<img src='{esc(relative_link(thumb, out_dir))}' alt='{esc(label)} glass brain'>"
               if thumb.exists() else "<div class='small'>no figure</div>")
        inner = f"{img}<div class='cap'>{cap}</div>"
        b.append("<div class='thumb'>" + (f"<a href='{esc(relative_link(rep, out_dir))}'>{inner}</a>" if rep.exists()
                                           else inner + "<div class='small'>no report</div>")
                 + _pdf_link(out_dir, sub, ses, "small") + "</div>")
    b.append("</div>")
    b.append("<h2 id='table'>Summary table</h2><p class='small'>The content of group_summary.tsv; columns are "
             "described in group_summary.json, cohort metrics are in group_detection.json.</p>")
    b.append("<div style='overflow-x:auto'><table id='summary-table'><tr>"
             + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
    for r in rows:
        sub, ses = _subject_session(r)
        rep = report_path(out_dir, sub, ses)
        cells = []
        for col in columns:
            v = r.get(col)
            text = esc(_cell(v))
            if col == "participant_id" and rep.exists():
                text = f"<a href='{esc(relative_link(rep, out_dir))}'>{text}</a>" + _pdf_link(out_dir, sub, ses, "")
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f"<td class='{'num' if num else ''}'>{text}</td>")
        b.append("<tr>" + "".join(cells) + "</tr>")
    b.append("</table></div>")
    nav = [("failed", "Failed")] if crashes else []
    nav += [("detection", "Detection")] if summary is not None and summary.get("n_scored") else []
    nav += [("participants", "Participants"), ("table", "Table")]
    path = out_dir / "group.html"
    deriv.write_text(path, page("bids-fcd: cohort", "\n".join(b), nav))
    log.info("group level: %s", path)
    return path


def _pdf_link(out_dir: Path, sub: str, ses: str | None, cls: str) -> str:
    """`` (PDF)`` linking the participant's one-page summary, or "" when it was not written."""
    path = pdf_path(out_dir, sub, ses)
    if not path.exists():
        return ""
    return (f" <span class='{cls}'>(<a class='report-pdf' href='{html.escape(relative_link(path, out_dir))}'>PDF</a>)"
            "</span>")


def _cell(v: Any) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return methods.format_value(v)
