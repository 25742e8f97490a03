"""benchmarks/detection_by_size.py: size-class rows and the table from a stored results.json."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "detection_by_size.py"


def _script():
    spec = importlib.util.spec_from_file_location("detection_by_size_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_count_found_lesions_per_class_and_skip_controls(tmp_path):
    per_subject = [{"label": "00001", "group": "fcd", "lesion_mm3": 120.0, "detected": False},
                   {"label": "00002", "group": "fcd", "lesion_mm3": 600.0, "detected": True},
                   {"label": "00003", "group": "fcd", "lesion_mm3": 4000.0, "detected": True},
                   {"label": "00004", "group": "hc", "lesion_mm3": None, "detected": None}]
    doc = {"results": {"method": {"per_subject": per_subject, "fp_clusters_per_control": 0.25, "R@10": 0.7}}}
    run = tmp_path / "bench-a"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(doc))
    b = _script()
    rows = b.rows_of(doc, "bench-a")
    row = rows["bench-a: method"]
    assert row["found"] == "2/3"
    assert (row["found_under_250mm3"], row["found_250_to_1000mm3"], row["found_over_1000mm3"]) == ("0/1", "1/1", "1/1")
    assert row["fp_clusters_per_control"] == 0.25
    text = b.table(rows)
    assert "| bench-a: method | 2/3 | 0.25 | 0.7 | 0/1 | 1/1 | 1/1 |" in text
    out = tmp_path / "rows.json"
    assert b.main([str(run), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["bench-a: method"]["found"] == "2/3"
