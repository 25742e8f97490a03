"""benchmarks/speed.py: the tables and the BENCHMARKS.md writer (fast), and a real tiny run (slow)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "speed.py"


def _speed():
    spec = importlib.util.spec_from_file_location("speed_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RES = {"stages": [("import", 2.0), ("n4", 10.0), ("encode", 1.0), ("decode", 6.0), ("decode", 2.0)],
       "total_s": 25.0, "peak_rss_gib": 1.5, "peak_gpu_gib": None, "threads": 2, "load_before": "1.0 1.0 1.0",
       "load_after": "2.0 1.0 1.0", "device_kind": "cpu", "device": "Some CPU, 2 cores", "sampled_slices": 18,
       "grid_slices": 66, "flops": {"unet_gflop": 1.0, "clf_grad_gflop": 0.5, "unet_passes": 6, "clf_passes": 6,
                                    "per_slice_gflop": 9.0, "chunk": 32,
                                    "sampler": {"encoding": "stochastic", "L": 300, "K": 3, "D": 2, "s": 20.0}}}


def test_stage_table_merges_repeats_and_shows_the_unstaged_rest():
    sp = _speed()
    table = sp.stage_table(RES)
    assert "| decode | 8.0 | 32.0 % |" in table
    assert "| unstaged" in table and "| 4.0 | 16.0 % |" in table  # 25 - 21 staged
    lines = "\n".join(sp.summary_lines(RES))
    assert "0.500 s per slice" in lines and "18 of 66 slices" in lines and "GFLOP/s" in lines
    assert "missed" in sp.target_line({**RES, "total_s": 700.0}) and "**met**" in sp.target_line(RES)


def test_bf16_peaks_know_h100_and_h200():
    sp = _speed()
    assert sp.bf16_peak("NVIDIA H200") == 989.0 and sp.bf16_peak("NVIDIA H100 PCIe") == 756.0
    assert sp.bf16_peak("Some CPU") is None


def test_write_benchmarks_keeps_other_sections_and_replaces_its_block(tmp_path):
    sp = _speed()
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Detection\n\nfigures 5/10\n\n## Runtime\n\nold\n")
    data = {"kind": "stages", "preset": "fast", "size": "full", "slices": "all", "device_kind": "cpu",
            "device": "Some CPU", "total_s": 120.0, "per_slice_s": 0.5, "rss_gib": 1.5, "sampler": "stochastic"}
    sp.write_benchmarks(md, "stages-fast-full-all-cpu", "### Stages\n\nfirst", data)
    sp.write_benchmarks(md, "stages-fast-full-all-cpu", "### Stages\n\nsecond", {**data, "total_s": 90.0})
    text = md.read_text()
    assert "figures 5/10" in text and "## Runtime\n\nold" in text
    assert "second" in text and "first" not in text and text.count(sp.SECTION) == 1
    assert "1.5 min (90 s)" in text and "unmeasured (no GPU lent)" in text


def _busy() -> bool:
    """More runnable work than cores: the real run would take minutes instead of about one."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


@pytest.mark.slow
@pytest.mark.skipif(_busy(), reason="machine busy (load > cores): the tiny speed run would take minutes")
def test_speed_script_runs_on_the_tiny_phantom(tmp_path):
    """The real script end to end (tiny phantom, shipped model); about a minute on 2 idle cores."""
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--size", "tiny", "--nprocs", "2"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for name in ("import", "encode", "decode", "histmatch", "anomaly", "score", "clusters", "classifier",
                 "unstaged", "end to end", "s per slice", "peak RSS", "GFLOP/s"):
        assert f"| {name}" in out or name in out, name


def test_nested_stages_are_shown_inside_their_parent_and_not_counted_twice():
    sp = _speed()
    res = {**RES, "total_s": 30.0, "stages": [("report", 5.0), ("write", 20.0)],
           "spans": [("report", 5.0, 12.0, 17.0), ("write", 20.0, 5.0, 25.0)]}
    table = sp.stage_table(res)
    assert "| ↳ report (inside write) | 5.0 |" in table
    assert "| unstaged (logging, BIDS queries, model load, ...) | 10.0 |" in table


def test_detection_figures_are_read_from_the_benchmark_results(tmp_path):
    sp = _speed()
    rel, row = sp.DETECTION_RESULTS["fast"]
    (tmp_path / rel).parent.mkdir(parents=True)
    row_data = {"subject_sensitivity": 0.75, "fp_clusters_per_control": 0.25, "n_scored": 12, "R@10": 0.5}
    (tmp_path / rel).write_text(json.dumps({"results": {row: row_data}}))
    assert sp.detection("fast", tmp_path) == "9 of 12 at 0.25 FP clusters/HC (R@10 0.500)"
    assert sp.detection("paper", tmp_path).startswith("n/a (")  # its file is missing there
    assert sp.detection("nonesuch") == "n/a"
    assert sp.detection("fast").endswith(")")  # the stored results of the checkout are readable
