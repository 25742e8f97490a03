"""The participant report: ``OUTPUT_DIR/sub-<label>[_ses-<s>].html`` and its figures.

Layout follows fMRIPrep: the page sits at the top of OUTPUT_DIR, its figures under
``sub-<label>/[ses-<s>/]figures/`` with names from :func:`bids_fcd.bids.derivatives.derivative_path`,
linked relatively so the page works when opened from disk. A neuroradiologist reads it top
down: the model warning, a one-line summary, the clusters (table, then each top cluster through
its peak in three planes), the overview, the lobe classifier, QC, then methods and provenance.
"""

from __future__ import annotations

import datetime
import html
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.bids import derivatives as deriv
from bids_fcd.config import LOBE_WORDS
from bids_fcd.reports import figures, methods, pdf, viewer

log = logging.getLogger(__name__)

#: Figure kinds → their role in the registry of outputs (:data:`bids_fcd.bids.derivatives.OUTPUTS`).
#: One file per kind per participant, always all five.
FIGURES: dict[str, str] = {kind: f"figure_{kind}" for kind in
                           ("clusters", "glassbrain", "lobes", "registration", "brainmask")}
#: The top clusters shown in the cluster figure.
MAX_CLUSTER_VIEWS = 3
#: Below this largest class probability the lobe classifier's answer gets a caveat.
LOW_CONFIDENCE = 0.5
#: Cerebellum in MNI152NLin2009aSym mm: below z and behind y (the lobe atlas has no label there).
CEREBELLUM_Z_MM, CEREBELLUM_Y_MM = -30.0, -40.0
#: Deep grey matter (caudate, putamen, pallidum, thalamus) in template mm: |x|, y, z ranges. The
#: template's grey-matter map includes it, so it is excluded by this box.
DEEP_GREY_MM = ((6.0, 22.0), (-35.0, 20.0), (-8.0, 18.0))
#: A peak is cortical when template grey matter probability reaches this within CORTEX_RADIUS_MM.
CORTEX_GM, CORTEX_RADIUS_MM = 0.3, 4.0
#: The cluster rows' T1w scanner-mm centre (the workflow prefixes the T1w table's columns with native_).
NATIVE_CENTRE_KEYS = ("native_center_x", "native_center_y", "native_center_z")
#: Lobe words by code: the one vocabulary of :data:`bids_fcd.config.LOBE_WORDS`.
LOBE_NAMES = LOBE_WORDS
NON_CORTICAL = "non-cortical"
CONVENTION = ("Neurological convention (nilearn's default): the participant's left is on the left of axial and "
              "coronal views, as the L and R letters mark; sagittal views have anterior to the right.")


class ReportError(RuntimeError):
    """Some part of a report failed; ``written`` lists the files that were written anyway."""

    def __init__(self, message: str, written: list[Path]) -> None:
        super().__init__(message)
        self.written = written


@dataclass(frozen=True)
class ReportInputs:
    """Everything a participant report shows; arrays are (X, Y, Z) on the model grid.

    ``t1w``/``flair``/``pseudo``: float32 normalised images (brain p1 → -1, p50 → 0.6, background
    -1). ``z``: float32 anomaly z-map. ``mask``: bool brain. ``labels``: int clusters by rank
    (1 = highest peak z). ``roi``: bool ground-truth lesion, or None. ``clusters``: rows of the
    cluster table (keys of ``TABLE_COLUMNS``, maybe the T1w table's as ``native_<column>``, or
    ``center_native_x/y/z``). ``affine``: (4, 4)
    voxel → MNI152NLin2009aSym mm. ``reference``: {"path", "n", "age_range", "dataset"} or None.
    ``settings``: flat run settings (see :func:`bids_fcd.reports.methods.setting` for the keys read).
    ``native_mm``: optional (3, X, Y, Z) float32, each grid voxel's position in the T1w's scanner mm
    (the template → T1w transform applied to the voxel centres; NaN where undefined): the viewer then
    reads out scanner mm beside template mm.
    """

    subject: str
    session: str | None
    affine: np.ndarray
    t1w: np.ndarray
    flair: np.ndarray
    pseudo: np.ndarray
    z: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    roi: np.ndarray | None
    clusters: list[dict[str, object]]
    lobe_probabilities: dict[str, float]
    z_threshold: float
    min_cluster_mm3: float
    model_name: str
    model_sha256: str
    model_dir: Path
    reference: dict[str, object] | None
    settings: dict[str, object]
    native_mm: np.ndarray | None = None

    @property
    def prefix(self) -> str:
        """``sub-<label>[_ses-<s>]``."""
        return deriv.participant_prefix(self.subject, self.session)


def report_path(root: Path, subject: str, session: str | None) -> Path:
    """``root/sub-<label>[_ses-<s>].html`` (fMRIPrep's place for the report)."""
    return deriv.output_path(root, subject, session, "report")


def figure_paths(root: Path, subject: str, session: str | None) -> dict[str, Path]:
    """The participant's figure files by kind (keys of :data:`FIGURES`)."""
    return {k: deriv.output_path(root, subject, session, role) for k, role in FIGURES.items()}


# ------------------------------------------------------------------------- pure rules


def report_lobe(peak_mm: tuple[float, float, float], lobe: str, cortical: bool | None) -> str:
    """The lobe a report shows for a cluster: the table's lobe, or ``non-cortical`` when the peak is
    in the cerebellum (z < -30 mm and y < -40 mm), in deep grey matter (:data:`DEEP_GREY_MM`) or,
    where known (``cortical``), away from the template's grey matter.

    The coordinate lobe atlas labels every point, so cerebellar or deep peaks would otherwise be
    called temporal, occipital or parietal.
    """
    x, y, z = (float(v) for v in peak_mm)
    if z < CEREBELLUM_Z_MM and y < CEREBELLUM_Y_MM:
        return NON_CORTICAL
    (ax, ay, az) = DEEP_GREY_MM
    if ax[0] <= abs(x) <= ax[1] and ay[0] <= y <= ay[1] and az[0] <= z <= az[1]:
        return NON_CORTICAL
    if cortical is False:
        return NON_CORTICAL
    return lobe


def cortical_at(points_mm: list[tuple[float, float, float]], gm_img: Any = None) -> list[bool | None]:
    """Whether template grey matter (probability ≥ :data:`CORTEX_GM`) lies within
    :data:`CORTEX_RADIUS_MM` of each point; None per point when the template cannot be read.

    Args:
        gm_img: a nibabel image of grey-matter probability in template mm (default: nilearn's
            MNI152 GM at 1 mm, through :func:`bids_fcd.atlas.load_template`).
    """
    if not points_mm:
        return []
    try:
        if gm_img is None:
            from bids_fcd.atlas import load_template

            gm_img = load_template(resolution=1)["gm"]
        gm = np.asarray(gm_img.dataobj, np.float32)
        inv = np.linalg.inv(gm_img.affine)
    except Exception as exc:  # noqa: BLE001 - any failure here only removes the refinement
        log.warning("template grey matter not available (%s); cortical check limited to the cerebellum rule", exc)
        return [None] * len(points_mm)
    vox = float(np.mean(np.abs(np.diag(gm_img.affine)[:3])))
    r = int(np.ceil(CORTEX_RADIUS_MM / vox))
    g = np.arange(-r, r + 1)
    off = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    off = off[np.linalg.norm(off * vox, axis=1) <= CORTEX_RADIUS_MM]
    out: list[bool | None] = []
    for p in points_mm:
        ijk = np.rint(inv[:3, :3] @ np.asarray(p, float) + inv[:3, 3]).astype(int) + off
        ok = np.all((ijk >= 0) & (ijk < np.array(gm.shape)), axis=1)
        vals = gm[tuple(ijk[ok].T)] if ok.any() else np.zeros(1)
        out.append(bool(vals.max() >= CORTEX_GM))
    return out


def lobe_caveats(probabilities: dict[str, float], top_cluster_lobe: str | None) -> list[str]:
    """Warnings to print beside the lobe classifier's probabilities.

    Args:
        probabilities: class → probability (``healthy`` and the lobes).
        top_cluster_lobe: the report lobe of the top cluster (``non-cortical`` allowed), or None
            when the participant has no cluster.
    Returns:
        Sentences, empty when the classifier is confident and agrees with the clusters.
    """
    out: list[str] = []
    if not probabilities:
        return out
    best = max(probabilities, key=lambda k: probabilities[k])
    lobes = {k: v for k, v in probabilities.items() if k != "healthy"}
    top_lobe = max(lobes, key=lambda k: lobes[k]) if lobes else None
    p_healthy = probabilities.get("healthy")
    if probabilities[best] < LOW_CONFIDENCE:
        out.append(f"Low confidence: the most likely class ({LOBE_NAMES.get(best, best)}) has probability "
                   f"{probabilities[best]:.2f} < {LOW_CONFIDENCE:g}.")
    if top_cluster_lobe is None:
        if p_healthy is not None and p_healthy < LOW_CONFIDENCE:
            out.append(f"No cluster was found, yet the classifier gives P(healthy) = {p_healthy:.2f}: its "
                       "probabilities are a slice-wise aggregate and are not calibrated per participant; trust "
                       "the z-map over the classifier here.")
    elif top_cluster_lobe == NON_CORTICAL:
        out.append("The top cluster is not in cortex, so the classifier's lobe cannot be checked against it.")
    elif best == "healthy":
        out.append(f"The classifier favours healthy (P = {probabilities[best]:.2f}) although the z-map has "
                   f"clusters (top cluster: {LOBE_NAMES.get(top_cluster_lobe, top_cluster_lobe)}).")
    elif top_lobe is not None and top_lobe != top_cluster_lobe:
        out.append(f"The classifier's lobe ({LOBE_NAMES.get(top_lobe, top_lobe)}) differs from the top "
                   f"cluster's ({LOBE_NAMES.get(top_cluster_lobe, top_cluster_lobe)}).")
    return out


def cluster_peaks(labels: np.ndarray, z: np.ndarray, affine: np.ndarray, n: int) -> list[tuple[float, float, float]]:
    """Template-mm peak of clusters 1..n (argmax of z inside each label), fewer if fewer exist."""
    out = []
    for k in range(1, n + 1):
        inside = labels == k
        if not inside.any():
            break
        idx = np.unravel_index(int(np.argmax(np.where(inside, z, -np.inf))), z.shape)
        out.append(figures.voxel_to_mm(affine, [float(i) for i in idx]))
    return out


# ------------------------------------------------------------------------- HTML

_CSS = """
body{background:#111;color:#e8e8e8;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0}
main{max-width:1180px;margin:auto;padding:0 18px 40px}
h1{font-size:1.6em;margin:.6em 0 .2em}h2{border-bottom:1px solid #333;padding-bottom:.2em;margin-top:1.6em}
a{color:#56B4E9}code{color:#F0E442}
nav{position:sticky;top:0;background:#1b1b1b;border-bottom:1px solid #333;padding:6px 18px;z-index:2}
nav a{margin-right:14px;font-size:.92em}
.banner{background:#4a1d00;border:2px solid #E69F00;border-radius:6px;padding:10px 16px;margin:14px 0}
.banner .big{font-size:1.15em;margin:.2em 0}
.caveat{background:#2c2600;border-left:4px solid #F0E442;padding:6px 12px;margin:8px 0}
.error{background:#3a0d0d;border-left:4px solid #D55E00;padding:6px 12px;margin:8px 0}
.summary{background:#1b1b1b;border:1px solid #333;border-radius:6px;padding:8px 14px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #3a3a3a;padding:3px 8px;text-align:left}
th{background:#222}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.fig{width:100%;max-width:980px;height:auto;background:#000;display:block;margin:6px 0}
img.half{max-width:620px;width:100%}
.small{font-size:.85em;color:#aaa}pre,.methods{background:#1b1b1b;border:1px solid #333;padding:8px 12px;
white-space:pre-wrap}
details summary{cursor:pointer;color:#56B4E9}
table.card td,table.card th{font-size:.88em}
"""


def relative_link(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (a link that works from disk)."""
    return Path(os.path.relpath(path, root)).as_posix()


def page(title: str, body: str, nav: list[tuple[str, str]] | None = None, css: str = "", scripts: str = "") -> str:
    """A complete HTML document with the report style (plus ``css``), ``scripts`` at the end of the body."""
    links = "".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in (nav or []))
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}{css}</style></head><body>"
            + (f"<nav>{links}</nav>" if links else "") + f"<main>{body}</main>{scripts}</body></html>\n")


def _cluster_table(rows: list[dict[str, Any]]) -> str:
    cols = [("rank", "rank"), ("hemisphere", "hemi"), ("report_lobe", "lobe"), ("size_mm3", "volume (mm³)"),
            ("peak_z", "peak z"), ("peak_mm", "peak, template mm (x, y, z)"),
            ("center_mm", "centre, template mm (x, y, z)")]
    if any(r.get("center_native", "n/a") != "n/a" for r in rows):
        cols.append(("center_native", "centre, T1w scanner mm (x, y, z)"))
    shown = {"index", "hemisphere", "lobe", "size_mm3", "peak_z", "peak_x", "peak_y", "peak_z_mm", "center_x",
             "center_y", "center_z", "report_lobe", "rank", "peak_mm", "center_mm", "center_native"}
    extra = [k for k in rows[0] if not k.startswith(("native_", "center_native_")) and k not in shown]
    cols += [(k, k) for k in extra]
    head = "<tr>" + "".join(f"<th>{html.escape(t)}</th>" for _, t in cols) + "</tr>"
    body = []
    for r in rows:
        cells = []
        peak = _peak(r)
        for k, _ in cols:
            v = r.get(k, "")
            if k == "report_lobe" and v in LOBE_NAMES:
                v = f"{v} ({LOBE_NAMES[v]})"
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = html.escape(methods.format_value(v))
            if k == "rank" and peak is not None:
                text = f"<a href='#viewer' title='show this peak in the viewer'>{text}</a>"
            cells.append(f"<td class='{'num' if num else ''}'>{text}</td>")
        attr = f" data-peak-mm='{peak[0]:g} {peak[1]:g} {peak[2]:g}'" if peak is not None else ""
        body.append(f"<tr{attr}>" + "".join(cells) + "</tr>")
    return f"<table id='cluster-table'>{head}{''.join(body)}</table>"


def _triple(r: dict[str, Any], keys: tuple[str, str, str]) -> str:
    if not all(k in r and r[k] not in (None, "", "n/a") for k in keys):
        return "n/a"
    return ", ".join(f"{float(r[k]):.1f}" for k in keys)  # type: ignore[arg-type]


def _peak(r: dict[str, Any]) -> tuple[float, float, float] | None:
    """A table row's peak in template mm, or None when the row lacks it."""
    try:
        x, y, z = (float(r[k]) for k in ("peak_x", "peak_y", "peak_z_mm"))
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y, z) if np.all(np.isfinite((x, y, z))) else None


def table_rows(data: ReportInputs, cortical: list[bool | None]) -> list[dict[str, Any]]:
    """The cluster table rows as the report shows them (``report_lobe`` with non-cortical)."""
    rows = []
    for i, r in enumerate(data.clusters):
        row: dict[str, Any] = dict(r)
        peak = _peak(row)
        row["rank"] = r.get("index", i + 1)
        lobe = str(r.get("lobe", "n/a"))
        row["report_lobe"] = (report_lobe(peak, lobe, cortical[i] if i < len(cortical) else None)
                              if peak is not None else lobe)
        row["peak_mm"] = _triple(r, ("peak_x", "peak_y", "peak_z_mm"))
        row["center_mm"] = _triple(r, ("center_x", "center_y", "center_z"))
        for keys in (NATIVE_CENTRE_KEYS, ("center_native_x", "center_native_y", "center_native_z")):
            if keys[0] in r:
                row["center_native"] = _triple(r, keys)
        rows.append(row)
    return rows


def write_participant_report(root: Path, data: ReportInputs) -> list[Path]:
    """Write ``root/<prefix>.html`` and its figures under ``root/sub-<label>/[ses-<s>/]figures/``.

    Each figure is made on its own: one that fails is logged and replaced in the page by the error,
    the page is still written, and then :class:`ReportError` is raised (with ``written``) so the
    caller can count the failure without losing anything.

    Returns:
        Every path written: the page, the five figures of :data:`FIGURES`, the one-page PDF
        (:func:`bids_fcd.reports.pdf.pdf_path`) and the viewer's scripts under ``root/assets/``
        (:data:`bids_fcd.reports.viewer.ASSET_FILES`, one copy for every page of ``root``).
    """
    t0 = time.time()
    root = Path(root)
    figs = figure_paths(root, data.subject, data.session)
    written: list[Path] = []
    errors: dict[str, str] = {}

    def make(kind: str, fn: Any, *args: Any) -> None:
        try:
            fn(figs[kind], *args)
            written.append(figs[kind])
        except Exception as exc:  # noqa: BLE001 - a figure must not take the report down
            log.error("%s: report figure %s failed: %s", data.prefix, figs[kind].name, exc)
            log.debug("traceback", exc_info=True)
            errors[kind] = f"{type(exc).__name__}: {exc}"

    n_views = min(MAX_CLUSTER_VIEWS, len(data.clusters))
    peaks = cluster_peaks(np.asarray(data.labels), np.asarray(data.z), data.affine, n_views)
    table_peaks = [_peak(r) for r in data.clusters]
    known = cortical_at([p for p in table_peaks if p is not None])
    cortical = [known.pop(0) if p is not None else None for p in table_peaks]
    rows = table_rows(data, cortical)
    views: list[tuple[str, tuple[float, float, float]]]
    if peaks:
        views = [(f"Cluster {i + 1}: {r['hemisphere']} {LOBE_NAMES.get(r['report_lobe'], r['report_lobe'])}, "
                  f"peak z {float(r['peak_z']):.2f}, {float(r['size_mm3']):.0f} mm³ — through the peak "
                  f"({p[0]:.0f}, {p[1]:.0f}, {p[2]:.0f}) mm", p) for i, (r, p) in enumerate(zip(rows, peaks,
                                                                                                strict=False))]
    else:
        p, zval = highest_z(data)
        views = [(f"No cluster: slices through the highest z in the brain, {zval:.2f}, at "
                  f"({p[0]:.0f}, {p[1]:.0f}, {p[2]:.0f}) mm", p)]
    make("clusters", figures.cluster_figure, data, views)
    make("glassbrain", figures.glass_brain_figure, data, peaks)
    make("lobes", figures.lobe_bar_figure, data.lobe_probabilities, LOBE_NAMES)
    mask = np.asarray(data.mask, bool)
    try:
        outlines = figures.template_outlines(data.affine, tuple(np.shape(data.t1w)))
    except Exception as exc:  # noqa: BLE001
        log.error("%s: template not available for the registration figure: %s", data.prefix, exc)
        outlines = []
        errors["registration"] = f"template not available: {exc}"
    if outlines:
        make("registration", figures.qc_outline_figure, data.t1w, data.affine, mask, outlines,
             "Registration: template outline (orange: brain, blue: white matter) over the T1w in template space")
    mask_img = figures.as_image(mask.astype(np.float32), data.affine)
    make("brainmask", figures.qc_outline_figure, data.flair, data.affine, mask, [(mask_img, figures.ORANGE)],
         "Skull stripping: brain-mask outline (orange) over the FLAIR in template space")

    summary_pdf = pdf.pdf_path(root, data.subject, data.session)
    try:  # before the page, so that the page can show a failure
        pdf.write_participant_pdf(summary_pdf, data, rows, views, summary_text(data, rows), banner_text(data),
                                  methods_text(data), LOBE_NAMES)
        written.append(summary_pdf)
    except Exception as exc:  # noqa: BLE001 - the PDF must not take the report down
        log.error("%s: report PDF %s failed: %s", data.prefix, summary_pdf.name, exc)
        log.debug("traceback", exc_info=True)
        errors["pdf"] = f"{type(exc).__name__}: {exc}"
    try:
        written += viewer.install_assets(root)
    except OSError as exc:
        log.error("%s: viewer scripts not installed: %s", data.prefix, exc)
        errors["viewer"] = f"{type(exc).__name__}: {exc}"
    page_path = report_path(root, data.subject, data.session)
    page_path.parent.mkdir(parents=True, exist_ok=True)
    deriv.write_text(page_path, render_participant(root, data, figs, rows, errors, views[0][1]))
    written.append(page_path)
    log.info("%s: report %s (%.1f s)", data.prefix, page_path.name, time.time() - t0)
    if errors:
        raise ReportError(f"{data.prefix}: report parts failed: {', '.join(sorted(errors))}", written)
    return written


def highest_z(data: ReportInputs) -> tuple[tuple[float, float, float], float]:
    """Template mm and value of the highest z inside the brain mask."""
    zin = np.where(np.asarray(data.mask, bool), data.z, -np.inf)
    idx = np.unravel_index(int(np.argmax(zin)), zin.shape)
    return figures.voxel_to_mm(data.affine, [float(i) for i in idx]), float(data.z[idx])


def summary_text(data: ReportInputs, rows: list[dict[str, Any]]) -> str:
    """The page's one-line summary as plain text (for the PDF)."""
    if not rows:
        return f"No cluster of z > {data.z_threshold:g} (≥ {data.min_cluster_mm3:g} mm³)."
    r = rows[0]
    text = (f"{len(rows)} cluster(s) of z > {data.z_threshold:g} (≥ {data.min_cluster_mm3:g} mm³). Top: "
            f"{r['hemisphere']} {LOBE_NAMES.get(r['report_lobe'], r['report_lobe'])}, peak z {float(r['peak_z']):.2f}, "
            f"{float(r['size_mm3']):.0f} mm³, peak at {r['peak_mm']} mm (template).")
    probs = data.lobe_probabilities
    if probs:
        best = max(probs, key=lambda k: probs[k])
        text += f" Lobe classifier: {LOBE_NAMES.get(best, best)} ({probs[best]:.2f})."
    return text


def banner_text(data: ReportInputs) -> str:
    """The page's banner as plain text: the synthetic-model warning (with the model card's first
    validation figures) or the research-software line."""
    if not methods.is_synthetic_model(data.model_dir, data.model_name):
        return "Research software: not for clinical decisions."
    figs = " ".join(re.sub(r"[*`]", "", f) for f in methods.validation_figures(data.model_dir)[:2])
    return (f"Model {data.model_name} was trained on synthetic (phantom) data, not on patients. Results are not "
            "validated on real MRI. NOT FOR CLINICAL USE." + (f" Model card: {figs}" if figs else ""))


def methods_text(data: ReportInputs) -> str:
    """The methods paragraph of the page (plain text)."""
    return methods.boilerplate(data.settings, data.model_name, data.reference, data.z_threshold,
                               data.min_cluster_mm3, methods.software_versions())[0]


def render_participant(root: Path, data: ReportInputs, figs: dict[str, Path], rows: list[dict[str, Any]],
                       errors: dict[str, str], start_mm: tuple[float, float, float] | None = None) -> str:
    """The participant page's HTML; the viewer's crosshair starts at ``start_mm`` (template mm;
    default: the top cluster's peak, else the highest z in the brain)."""
    esc = html.escape

    def img(kind: str, alt: str, cls: str = "fig") -> str:
        if kind in errors:
            return f"<div class='error'>Figure {esc(figs[kind].name)} failed: {esc(errors[kind])}</div>"
        return f"<img class='{cls}' src='{esc(relative_link(figs[kind], root))}' alt='{esc(alt)}'>"

    b: list[str] = [f"<h1>{esc(data.prefix)}</h1>",
                    f"<p class='small'>bids-fcd report, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
                    f"model <code>{esc(data.model_name)}</code> ({esc(data.model_sha256[:12])}).</p>"]
    synthetic = methods.is_synthetic_model(data.model_dir, data.model_name)
    if synthetic:
        b.append(methods.synthetic_banner_html(data.model_dir, data.model_name))
    else:
        b.append("<p class='small'>Research software: not for clinical decisions.</p>")
    top_lobe = rows[0]["report_lobe"] if rows else None
    caveats = lobe_caveats(data.lobe_probabilities, top_lobe)
    probs = data.lobe_probabilities
    best = max(probs, key=lambda k: probs[k]) if probs else None
    zsrc = (f"against a normative reference of {data.reference.get('n', 'n/a')} controls" if data.reference
            else "within the brain (no normative reference)")
    if rows:
        r = rows[0]
        top = (f"<b>{len(rows)} cluster(s)</b> of z &gt; {data.z_threshold:g} (≥ {data.min_cluster_mm3:g} mm³). "
               f"Top: <b>{esc(str(r['hemisphere']))} {esc(LOBE_NAMES.get(r['report_lobe'], r['report_lobe']))}</b>, "
               f"peak z {float(r['peak_z']):.2f}, {float(r['size_mm3']):.0f} mm³, peak at {esc(r['peak_mm'])} mm.")
    else:
        top = f"<b>No cluster</b> of z &gt; {data.z_threshold:g} (≥ {data.min_cluster_mm3:g} mm³)."
    cls = (f" Lobe classifier: {esc(LOBE_NAMES.get(best, best))} ({probs[best]:.2f})"
           + (" — see the caveat below." if caveats else ".") if best else "")
    b.append(f"<div class='summary' id='summary'><p>{top}{cls}</p><p class='small'>z scored {esc(zsrc)}. "
             f"{esc(CONVENTION)}</p></div>")

    b.append("<h2 id='clusters'>Clusters</h2>")
    b.append(_cluster_table(rows) if rows else "<p>No cluster above threshold.</p>")
    b.append("<p class='small'>Lobe from template coordinates; <i>non-cortical</i> where the peak is in the "
             "cerebellum, in deep grey matter, or more than 4 mm from template grey matter. Volumes in template space."
             + (" Click a row to show its peak in the viewer." if rows else "") + "</p>")
    summary_pdf = pdf.pdf_path(root, data.subject, data.session)
    if "pdf" in errors:
        b.append(f"<div class='error'>The one-page PDF {esc(summary_pdf.name)} failed: {esc(errors['pdf'])}</div>")
    else:
        b.append(f"<p class='small'>One-page summary for the record: <a id='report-pdf' "
                 f"href='{esc(relative_link(summary_pdf, root))}'>{esc(summary_pdf.name)}</a>.</p>")
    b.append("<h2 id='viewer-section'>Viewer</h2>")
    located = [(r.get("rank"), p) for r in rows if (p := _peak(r)) is not None]
    if start_mm is None:
        start_mm = located[0][1] if located else highest_z(data)[0]
    try:
        b.append(viewer.viewer_html(data, [{"rank": k, "mm": list(p)} for k, p in located], start_mm))
    except Exception as exc:  # noqa: BLE001 - the viewer must not take the page down
        log.error("%s: report viewer failed: %s", data.prefix, exc)
        log.debug("traceback", exc_info=True)
        errors["viewer"] = f"{type(exc).__name__}: {exc}"
        b.append(f"<div class='error' id='viewer'>The viewer could not be made: {esc(errors['viewer'])}. The static "
                 "figures below show the same results.</div>")
    legend = (f"Rows: FLAIR, pseudo-healthy FLAIR, z &gt; {data.z_threshold:g} over the FLAIR (colour bar in z); "
              "columns: sagittal, coronal, axial through the peak.")
    if data.roi is not None and np.asarray(data.roi).any():
        legend += " Blue outline: ground-truth lesion mask."
    b.append(f"<p class='small'>{legend} {esc(CONVENTION)}</p>")
    b.append(img("clusters", "top clusters through their peaks"))
    b.append("<h2 id='overview'>Overview</h2>")
    b.append(img("glassbrain", "glass brain of all clusters"))
    b.append("<p class='small'>Glass brain (maximum projection) of every cluster's z; blue markers at the peaks "
             "of the top clusters.</p>")

    b.append("<h2 id='lobes'>Lobe classifier</h2>")
    b.extend(f"<div class='caveat'>{esc(c)}</div>" for c in caveats)
    b.append(img("lobes", "lobe probabilities", "fig half"))
    b.append("<p class='small'>The classifier's probabilities aggregated over slices (the dashed line marks 0.5). "
             "The z-map and clusters, not the classifier, locate the anomaly.</p>")

    b.append("<h2 id='qc'>Quality control</h2>")
    b.append(img("registration", "template outline over the T1w"))
    b.append(img("brainmask", "brain-mask outline over the FLAIR"))
    b.append("<p class='small'>Check that the outlines follow the brain: a misregistration or a skull-stripping "
             "error invalidates the clusters in that region.</p>")

    versions = methods.software_versions()
    text, cited = methods.boilerplate(data.settings, data.model_name, data.reference, data.z_threshold,
                                      data.min_cluster_mm3, versions)
    b.append("<h2 id='methods'>Methods</h2><p class='small'>This paragraph may be pasted into a paper's methods "
             "(edit as needed), with the references below.</p>")
    b.append(f"<div class='methods' id='boilerplate'>{esc(text)}</div>")
    b.append("<h3>References</h3>" + methods.references_html(cited))

    b.append("<h2 id='provenance'>Model, reference and settings</h2>")
    ref = data.reference
    prov = {"model": data.model_name, "model sha256": data.model_sha256, "model directory": str(data.model_dir),
            "z threshold": data.z_threshold, "minimum cluster (mm³)": data.min_cluster_mm3,
            "reference": (f"{ref.get('path')} (n = {ref.get('n')}, age {ref.get('age_range')}, "
                          f"{ref.get('dataset')})" if ref else "none: z within the brain")}
    b.append(_kv_table({**prov, **data.settings}, "settings"))
    b.append("<h3>Software</h3>" + _kv_table(versions, "software"))
    if errors:
        b.append("<h2 id='errors'>Errors</h2>" + "".join(
            f"<div class='error'>{esc(k)}: {esc(v)}</div>" for k, v in errors.items()))
    nav = [("summary", "Summary"), ("clusters", "Clusters"), ("viewer-section", "Viewer"), ("overview", "Overview"),
           ("lobes", "Lobes"), ("qc", "QC"), ("methods", "Methods"), ("provenance", "Settings")]
    return page(f"bids-fcd: {data.prefix}", "\n".join(b), nav, css=viewer.CSS, scripts=viewer.scripts_html())


def _kv_table(d: dict[str, Any], ident: str) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(methods.format_value(v))}</td></tr>"
                   for k, v in d.items())
    return f"<table id='{ident}'>{rows}</table>"
