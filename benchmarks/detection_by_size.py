"""Detection per lesion-volume class from stored ``bids-fcd benchmark`` results, one table for one or more runs.

Reads each ``OUT/results.json`` (a row per variant, each with its ``per_subject`` list) and prints, per
variant: lesions found by the top-ranked cluster, false-positive clusters per control, R@10, and the found/total
count in each class of :data:`bids_fcd.workflows.benchmark.SIZE_CLASSES` (< 250, 250-1000, > 1000 mm³). Use it
to compare runs made on the same cohort (e.g. two models, or two T1w conditions) in one table.

Usage: python benchmarks/detection_by_size.py OUT [OUT ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from bids_fcd.workflows.benchmark import size_classes

log = logging.getLogger("detection_by_size")

COLUMNS = ("found", "fp_clusters_per_control", "R@10", "found_under_250mm3", "found_250_to_1000mm3",
           "found_over_1000mm3", "z_threshold", "min_cluster_mm3", "lesion_removal_median", "control_mae")


def rows_of(results: dict[str, Any], run: str) -> dict[str, dict[str, Any]]:
    """One row per variant of a results.json: the columns above (found as "k/n")."""
    out = {}
    for variant, summary in results["results"].items():
        lesions = [r for r in summary["per_subject"] if r.get("lesion_mm3")]
        found = sum(bool(r["detected"]) for r in lesions)
        row = {"found": f"{found}/{len(lesions)}", **size_classes(lesions)}
        row.update({k: summary.get(k) for k in COLUMNS if k in summary})
        out[f"{run}: {variant}"] = row
    return out


def table(rows: dict[str, dict[str, Any]]) -> str:
    """A markdown table of :func:`rows_of`'s rows."""

    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else "–" if v is None else str(v)

    lines = ["| run: variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    lines += ["| " + name + " | " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |" for name, r in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="benchmark output directories (each with results.json)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows: dict[str, dict[str, Any]] = {}
    for run in args.runs:
        rows.update(rows_of(json.loads((run / "results.json").read_text()), run.name))
    log.info("%s", table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
