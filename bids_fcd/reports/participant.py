"""Per-participant HTML report: anomaly z-map over the FLAIR, pseudo-healthy, clusters, lobes."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np


def _png(fig) -> str:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def slice_figure(real: np.ndarray, pseudo: np.ndarray, z: np.ndarray, labels: np.ndarray, k: int,
                 z_threshold: float) -> str:
    """PNG (base64) of axial slice ``k``: FLAIR, pseudo-healthy, z-map over FLAIR. Inputs (W, H, S)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, img, title in ((axes[0], real, "FLAIR"), (axes[1], pseudo, "pseudo-healthy FLAIR")):
        ax.imshow(img[:, :, k].T, origin="lower", cmap="gray", vmin=-1, vmax=1)
        ax.set_title(title)
    axes[2].imshow(real[:, :, k].T, origin="lower", cmap="gray", vmin=-1, vmax=1)
    zz = np.ma.masked_less(z[:, :, k].T, z_threshold)
    axes[2].imshow(zz, origin="lower", cmap="hot", vmin=z_threshold, vmax=max(z_threshold + 1, float(z.max())))
    if labels[:, :, k].any():
        axes[2].contour(labels[:, :, k].T > 0, levels=[0.5], colors="cyan", linewidths=0.8)
    axes[2].set_title(f"z > {z_threshold:g}")
    for ax in axes:
        ax.axis("off")
    out = _png(fig)
    plt.close(fig)
    return out


def write_report(path: Path, title: str, figures: list[tuple[str, str]], cluster_rows: list[dict[str, object]],
                 lobe_probs: dict[str, float], settings: dict[str, object]) -> None:
    """Write a self-contained HTML file (images embedded)."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             "<p><b>Research software.</b> Not for clinical decisions. The anomaly map shows where the FLAIR "
             "differs from a synthesised pseudo-healthy FLAIR.</p>", "<h2>Lobe probabilities</h2><table>"]
    parts += [f"<tr><td>{esc(k)}</td><td>{v:.3f}</td></tr>" for k, v in lobe_probs.items()]
    parts.append("</table><h2>Clusters</h2>")
    if cluster_rows:
        cols = list(cluster_rows[0])
        parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(str(r[c]))}</td>" for c in cols) + "</tr>" for r in cluster_rows]
        parts.append("</table>")
    else:
        parts.append("<p>No cluster above threshold.</p>")
    for caption, png in figures:
        parts.append(f"<h3>{esc(caption)}</h3><img src='data:image/png;base64,{png}'/>")
    parts.append("<h2>Settings</h2><pre>" + esc("\n".join(f"{k}: {v}" for k, v in settings.items())) + "</pre>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
