"""The participant page's interactive viewer: NiiVue over volumes embedded in the page.

The page must open from ``file://`` without a server or network, where a browser cannot fetch
neighbouring files, so every volume travels inside the page as base64 of a gzipped NIfTI (in a
``<script type="text/plain">`` block the browser does not execute) and NiiVue reads it with
``NVImage.loadFromBase64``. The scripts themselves (the vendored NiiVue bundle and
``bids-fcd-viewer.js``, the glue) are classic scripts, one copy per output directory under
``OUTPUT_DIR/assets/`` (:func:`install_assets`), linked relatively from every page.

Size: images are stored as uint8 with the NIfTI scale factors nibabel chooses for their range
(min-max, nothing clipped), so the values the viewer reads out are the derivative's to within half a
quantisation step (:func:`quantisation_step`). The z-map is stored as int16 in fixed steps of
:data:`Z_STEP` (the read-out's two decimals), and the T1w scanner coordinates as their affine part
(a 3 x 4 matrix in the page's configuration, fitted to the brain's voxels) plus the residual in fixed
steps of :data:`NATIVE_STEP_MM`: full-range int16 scaling would spend most of the page on noise in the
low bits (a full-size participant's page at 1.5 mm fell from 8.1 to about 4 MB). A range too wide for a
fixed step falls back to min-max scaling. Label maps keep their integers.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bids_fcd.bids import derivatives as deriv
from bids_fcd.reports import figures

log = logging.getLogger(__name__)

#: The packaged assets (vendored NiiVue and the glue script), copied to ``OUTPUT_DIR/assets/``.
ASSETS_SRC = Path(__file__).with_name("assets")
ASSETS_DIR = "assets"
NIIVUE_JS = "niivue.umd.js"
VIEWER_JS = "bids-fcd-viewer.js"
#: Scripts every page loads, in order (paths relative to OUTPUT_DIR).
SCRIPTS = (f"{ASSETS_DIR}/{NIIVUE_JS}", f"{ASSETS_DIR}/{VIEWER_JS}")
#: Files copied next to the scripts (the bundle's licence travels with it).
ASSET_FILES = (NIIVUE_JS, VIEWER_JS, "NIIVUE-LICENSE.txt")
#: Nodes sampled from the report's overlay colour map for NiiVue (same colours as the figures).
COLORMAP_NODES = 9
#: Okabe-Ito colours (RGB 0-255) of the cluster outlines by rank (cycled), and of the lesion mask.
CLUSTER_RGB = ((230, 159, 0), (0, 158, 115), (204, 121, 167), (240, 228, 66), (213, 94, 0), (0, 114, 178))
LESION_RGB = (86, 180, 233)
#: Storage step of the embedded z-map (z units): the read-out shows two decimals.
Z_STEP = 0.01
#: Storage step of the residual of the T1w scanner coordinates after their affine part (mm); the
#: read-out shows one decimal.
NATIVE_STEP_MM = 0.1


@dataclass(frozen=True)
class Volume:
    """One embedded volume: ``key`` (element id suffix), ``label`` (shown), ``kind`` (background,
    overlay, label or coordinate), the base64 text of its gzipped NIfTI, and display range / scale
    step. A coordinate volume holds what is left of one scanner coordinate after its affine part,
    ``affine_row`` (4,): the coordinate is value + affine_row · (x, y, z, 1) in template mm."""

    key: str
    label: str
    kind: str
    base64: str
    cal_min: float
    cal_max: float
    step: float
    affine_row: tuple[float, ...] | None = None


def nifti_gz(arr: np.ndarray, affine: np.ndarray, dtype: type, label: bool = False,
             step: float | None = None) -> bytes:
    """A gzipped single-file NIfTI-1 of ``arr`` ((X, Y, Z), any float/int/bool) stored as ``dtype``.

    Float data stored as an integer type get nibabel's min-max scale factors (``scl_slope``,
    ``scl_inter``), or, with ``step`` (see :func:`fixed_step`), round(arr / step) with
    ``scl_slope = step`` and ``scl_inter = 0``; ``label`` sets the NIfTI label intent (NiiVue then
    draws it with a lookup table). The gzip stream carries no time stamp, so equal input gives equal
    bytes.
    """
    import nibabel as nib

    data = np.asarray(arr)
    data = data.astype(np.uint8) if data.dtype == bool else data
    if step is not None and not label:
        img = nib.Nifti1Image(np.rint(data.astype(np.float64) / step).astype(dtype), np.asarray(affine, float))
        img.header.set_slope_inter(step, 0.0)
    else:
        img = nib.Nifti1Image(data if label else data.astype(np.float32), np.asarray(affine, float))
    img.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm")
    img.header.set_sform(np.asarray(affine, float), code=4)  # 4 = MNI152 (template space)
    img.header.set_qform(np.asarray(affine, float), code=4)
    if label:
        img.header.set_intent("label")
    return gzip.compress(img.to_bytes(), compresslevel=9, mtime=0)


def quantisation_step(arr: np.ndarray, dtype: type) -> float:
    """The value of one integer step when float ``arr`` is stored as ``dtype`` (min-max scaling)."""
    info = np.iinfo(dtype)
    span = float(np.max(arr) - np.min(arr)) if np.size(arr) else 0.0
    return span / (int(info.max) - int(info.min)) if span > 0 else 0.0


def fixed_step(arr: np.ndarray, dtype: type, step: float) -> float | None:
    """``step`` if round(arr / step) fits ``dtype``; else None (the caller then stores ``arr`` min-max
    scaled, :func:`quantisation_step`)."""
    info = np.iinfo(dtype)
    if not np.size(arr):
        return step
    lo, hi = float(np.min(arr)) / step, float(np.max(arr)) / step
    return step if info.min <= np.floor(lo) and np.ceil(hi) <= info.max else None


def native_affine(native: np.ndarray, affine: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The affine part of the T1w scanner coordinates and what is left of them.

    Args:
        native: (3, X, Y, Z) scanner mm of each grid voxel, NaN where unknown.
        affine: (4, 4) the grid's voxel-to-template-mm affine.
        mask: (X, Y, Z) bool, the voxels the fit uses (those with finite coordinates among them).

    Returns:
        ``A`` (3, 4) float64 with native[a] ≈ A[a] · (x, y, z, 1) at each voxel's template mm
        (least squares; zeros where fewer than four voxels are usable), and the residual
        (3, X, Y, Z) float32, 0 where ``native`` is NaN.
    """
    native = np.asarray(native, np.float64)
    shape = native.shape[1:]
    ijk1 = np.concatenate([np.indices(shape, dtype=np.float64), np.ones((1, *shape))]).reshape(4, -1)
    xyz1 = (np.asarray(affine, np.float64) @ ijk1).T
    flat = native.reshape(3, -1).T
    use = np.asarray(mask, bool).ravel() & np.isfinite(flat).all(axis=1)
    coef = np.zeros((3, 4))
    if use.sum() >= 4:
        coef = np.linalg.lstsq(xyz1[use], flat[use], rcond=None)[0].T
    resid = np.nan_to_num(flat - xyz1 @ coef.T, nan=0.0).T.reshape(3, *shape)
    return coef, resid.astype(np.float32)


def volumes(data: Any) -> list[Volume]:
    """The embedded volumes of a :class:`~bids_fcd.reports.participant.ReportInputs`, in NiiVue's
    layer order: FLAIR, pseudo-healthy FLAIR, T1w (backgrounds, one shown at a time), z-map
    (overlay), clusters (outlines), the ground-truth lesion (outline) where one exists, and, where
    ``data.native_mm`` is given, its three scanner-mm coordinates (never drawn, only read out; int16,
    steps of about 0.003 mm over a 200 mm field).

    FLAIR and pseudo-healthy share the FLAIR's grey window so that they compare directly.
    """
    aff = np.asarray(data.affine, float)
    mask = np.asarray(data.mask, bool)
    flair, pseudo, t1w = (np.asarray(v, np.float32) for v in (data.flair, data.pseudo, data.t1w))
    z = np.asarray(data.z, np.float32)
    labels = np.asarray(data.labels)
    lo, hi = figures.grey_window(flair, mask)  # the figures' grey window, so both views agree
    t_lo, t_hi = figures.grey_window(t1w, mask)
    images = (("flair", "FLAIR", flair, lo, hi), ("pseudo", "pseudo-healthy FLAIR", pseudo, lo, hi),
              ("t1w", "T1w", t1w, t_lo, t_hi))
    out = [Volume(k, lab, "background", _b64(nifti_gz(v, aff, np.uint8)), wl, wh, quantisation_step(v, np.uint8))
           for k, lab, v, wl, wh in images]
    zmax = float(max(np.max(z) if z.size else 0.0, float(data.z_threshold) + 1.0))
    zstep = fixed_step(z, np.int16, Z_STEP)
    out.append(Volume("z", "z-map", "overlay", _b64(nifti_gz(z, aff, np.int16, step=zstep)), float(data.z_threshold),
                      zmax, zstep or quantisation_step(z, np.int16)))
    ldtype = np.uint8 if labels.size == 0 or int(labels.max()) <= 255 else np.int16
    out.append(Volume("clusters", "clusters", "label", _b64(nifti_gz(labels.astype(ldtype), aff, ldtype, label=True)),
                      0.0, float(labels.max()) if labels.size else 0.0, 1.0))
    if data.roi is not None and np.asarray(data.roi).any():
        out.append(Volume("lesion", "lesion mask", "label",
                          _b64(nifti_gz(np.asarray(data.roi, bool), aff, np.uint8, label=True)), 0.0, 1.0, 1.0))
    native = getattr(data, "native_mm", None)
    if native is not None:
        native = np.asarray(native, np.float32)
        if native.shape != (3, *np.shape(flair)):
            raise ValueError(f"native_mm has shape {native.shape}, expected (3, *{np.shape(flair)}): one scanner-mm "
                             "coordinate per axis and grid voxel")
        coef, resid = native_affine(native, aff, mask)
        for axis, name in enumerate("xyz"):
            comp = resid[axis]
            step = fixed_step(comp, np.int16, NATIVE_STEP_MM)
            out.append(Volume(f"native_{name}", f"T1w scanner {name} (mm)", "coordinate",
                              _b64(nifti_gz(comp, aff, np.int16, step=step)), float(comp.min()), float(comp.max()),
                              step or quantisation_step(comp, np.int16), tuple(float(c) for c in coef[axis])))
    return out


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def overlay_colormap() -> dict[str, list[int]]:
    """The report's overlay colour map (:func:`bids_fcd.reports.figures.overlay_cmap`) as NiiVue's
    ``{R, G, B, A, I}`` nodes (0-255)."""
    cmap = figures.overlay_cmap()
    pos = np.linspace(0.0, 1.0, COLORMAP_NODES)
    rgba = np.rint(np.asarray(cmap(pos)) * 255).astype(int)
    return {"R": rgba[:, 0].tolist(), "G": rgba[:, 1].tolist(), "B": rgba[:, 2].tolist(),
            "A": [int(v) for v in np.rint(pos * 255)], "I": [int(v) for v in np.rint(pos * 255)]}


def label_colormap(n: int, names: list[str], rgb: tuple[tuple[int, int, int], ...]) -> dict[str, list[Any]]:
    """A NiiVue label table for labels 0..n: 0 clear, k coloured ``rgb[(k-1) % len(rgb)]``, alpha 0
    (the viewer draws label maps as outlines, where NiiVue makes the border opaque)."""
    cols = [(0, 0, 0)] + [rgb[(k - 1) % len(rgb)] for k in range(1, n + 1)]
    return {"R": [c[0] for c in cols], "G": [c[1] for c in cols], "B": [c[2] for c in cols], "A": [0] * (n + 1),
            "I": list(range(n + 1)), "labels": ["", *names]}


def viewer_config(data: Any, vols: list[Volume], peaks: list[dict[str, Any]],
                  start_mm: tuple[float, float, float]) -> dict[str, Any]:
    """The JSON the glue script reads: volumes (key, label, kind, window), colour maps, the
    cluster peaks (``rank``, ``mm``) and the crosshair's starting point (template mm)."""
    n = int(np.asarray(data.labels).max()) if np.size(data.labels) else 0
    luts = {"clusters": label_colormap(n, [f"cluster {k}" for k in range(1, n + 1)], CLUSTER_RGB),
            "lesion": label_colormap(1, ["lesion mask"], (LESION_RGB,))}
    return {"volumes": [{"key": v.key, "label": v.label, "kind": v.kind, "cal_min": v.cal_min, "cal_max": v.cal_max,
                         "step": v.step, **({"lut": luts[v.key]} if v.key in luts else {}),
                         **({"affine_row": list(v.affine_row)} if v.affine_row is not None else {})} for v in vols],
            "overlay_colormap": overlay_colormap(), "threshold": float(data.z_threshold), "peaks": peaks,
            "start_mm": [round(float(c), 3) for c in start_mm], "space": "MNI152NLin2009aSym"}


def viewer_html(data: Any, peaks: list[dict[str, Any]], start_mm: tuple[float, float, float]) -> str:
    """The viewer section: canvas, controls, status line, the embedded volumes and configuration.

    The scripts are not included (:func:`scripts_html`, at the end of the page). Before the glue
    script runs, the status line says what the viewer needs, so a page whose scripts are blocked
    still explains itself; the static figures below it never depend on the viewer.
    """
    esc = html.escape
    vols = volumes(data)
    cfg = viewer_config(data, vols, peaks, start_mm)
    zmax = next(v.cal_max for v in vols if v.key == "z")
    thr = float(data.z_threshold)
    zstep = 0.1
    backgrounds = "".join(f"<option value='{esc(v.key)}'>{esc(v.label)}</option>" for v in vols
                          if v.kind == "background")
    lesion = any(v.key == "lesion" for v in vols)
    controls = (
        "<div class='viewer-controls viewer-live'>"
        f"<label>image <select id='viewer-background'>{backgrounds}</select></label>"
        "<label><input type='checkbox' id='viewer-z' checked> z-map</label>"
        f"<label>z &gt; <input type='range' id='viewer-threshold' min='0' max='{zmax:.1f}' step='{zstep}' "
        f"value='{thr:g}'> <output id='viewer-threshold-value'>{thr:.1f}</output></label>"
        "<label>opacity <input type='range' id='viewer-opacity' min='0' max='1' step='0.05' value='0.8'></label>"
        "<label><input type='checkbox' id='viewer-clusters' checked> cluster outlines</label>"
        + ("<label><input type='checkbox' id='viewer-lesion' checked> lesion mask</label>" if lesion else "")
        + "</div>")
    blocks = "".join(f"<script type='text/plain' id='bids-fcd-volume-{esc(v.key)}'>{v.base64}</script>" for v in vols)
    config = json.dumps(cfg, separators=(",", ":")).replace("</", "<\\/")
    return (
        "<div id='viewer' data-viewer-state='pending' data-volumes-loaded='0'>"
        "<p id='viewer-status' class='small'>The interactive viewer needs JavaScript and WebGL2 and the "
        "<code>assets/</code> folder of the output directory beside this page; the static figures below show "
        "the same results.</p>"
        f"{controls}<div class='viewer-canvas viewer-live'><canvas id='viewer-canvas'></canvas></div>"
        "<p class='small viewer-live' id='viewer-readout'>&nbsp;</p>"
        "<p class='small viewer-live'>Click or drag in any plane to move the crosshair; scroll to step through slices; "
        "click a row of the cluster table to jump to that cluster's peak. Template space "
        f"({esc(cfg['space'])}, mm); neurological convention (left on the left). Images stored as 8-bit and the "
        "z-map as 16-bit with scale factors: read-outs are within half a step of the derivatives.</p>"
        f"{blocks}<script type='application/json' id='bids-fcd-viewer-config'>{config}</script></div>")


def scripts_html() -> str:
    """The ``<script src>`` tags of the viewer (relative to OUTPUT_DIR, where the pages sit)."""
    return "".join(f"<script src='{html.escape(s)}'></script>" for s in SCRIPTS)


#: CSS of the viewer section (appended to the page style).
CSS = """
#viewer{background:#1b1b1b;border:1px solid #333;border-radius:6px;padding:8px 12px;margin:10px 0}
.viewer-controls{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;font-size:.9em;margin:4px 0 8px}
.viewer-canvas{width:100%;height:560px;background:#000}#viewer-canvas{width:100%;height:100%;display:block}
#viewer[data-viewer-state='no-webgl2'] .viewer-live,#viewer[data-viewer-state='no-script'] .viewer-live,
#viewer[data-viewer-state='failed'] .viewer-live{display:none}
#cluster-table tr[data-peak-mm]{cursor:pointer}#cluster-table tr[data-peak-mm]:hover td{background:#2a2a2a}
#cluster-table tr.current td{background:#3a2a00}
"""


def install_assets(root: Path) -> list[Path]:
    """Copy the viewer's scripts and licence to ``root/assets/`` (atomically; unchanged files are
    left alone) and return their paths. One copy serves every page of the output directory."""
    out = []
    for name in ASSET_FILES:
        src, dst = ASSETS_SRC / name, Path(root) / ASSETS_DIR / name
        if not src.is_file():
            raise FileNotFoundError(f"viewer asset {src} is missing from the installed package: reinstall bids-fcd "
                                    "(the package data bids_fcd/reports/assets/* must be installed)")
        content = src.read_bytes()
        if not (dst.is_file() and dst.read_bytes() == content):
            with deriv.atomic_path(dst) as tmp:
                tmp.write_bytes(content)
        out.append(dst)
    return out
