import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from bids_fcd.commands import BenchmarkConfig
from bids_fcd.config import SamplerConfig
from bids_fcd.evaluation.calibration import SIZE_GRID, Z_GRID
from bids_fcd.nets.reference import load_reference
from bids_fcd.workflows.benchmark import AUC_TIMESTEPS, SIZE_CLASSES, run_benchmark

ROOT = Path(__file__).resolve().parents[2]

POST_ROWS = ["ablation: drift from each map itself (the earlier default)",
             "ablation: residual only, drift from itself (the earlier default)",
             "ablation: no drift removal, no re-standardisation",
             "ablation: residual only, no drift removal, no re-standardisation", "ablation: no histogram matching",
             "ablation: within-brain z (the paper's z)", "ablation: absolute anomaly",
             "paper's post-processing (absolute, within-brain z)"]
BASELINES = ["baseline: FLAIR z vs reference controls", "baseline: FLAIR asymmetry vs reference controls",
             "baseline: FLAIR minus the FLAIR its own T1w predicts, vs reference controls"]


def _all_controls(bids):
    """Mark every participant of a copied phantom as a control (participants.tsv keeps its BOM)."""
    tsv = bids / "participants.tsv"
    raw = tsv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    col = lines[0].split("\t").index("group")
    rows = [line.split("\t") for line in lines[1:]]
    for r in rows:
        r[col] = "hc"
    tsv.write_text("\ufeff" + "\n".join(["\t".join(lines[0].split("\t"))] + ["\t".join(r) for r in rows]) + "\n",
                   encoding="utf-8")


def test_benchmark_on_the_tiny_phantom(phantom, tiny_model, work_dir, tmp_path):
    out = tmp_path / "bench"
    shutil.copytree(phantom, out / "bids")
    shutil.copytree(phantom, out / "ref-bids")
    _all_controls(out / "ref-bids")
    shutil.copytree(work_dir, out / "work")       # reuse the preprocessing cache (keyed by content)
    shutil.copytree(work_dir, out / "ref-work")
    sampler = SamplerConfig(noise_level=20, steps=5, guidance_scale=5.0, encoding="stochastic", draws=1)
    cfg = BenchmarkConfig(out=str(out), n_fcd=2, n_hc=1, phantom_seed=3, size="tiny", device="cpu",
                          model=str(tiny_model), reference_seed=400, n_reference=3, max_fp_per_control=1.0,
                          sampler=sampler)
    assert run_benchmark(cfg) == 0
    assert json.loads((out / "benchmark_config.json").read_text())["run"]["n_reference"] == 3
    doc = json.loads((out / "results.json").read_text())
    res = doc["results"]
    method = "method (stochastic, L=20, K=5, D=1, s=5)"
    assert list(res) == [method, method + ", residual only", *POST_ROWS, *BASELINES]
    for name, summary in res.items():
        assert summary["n_scored"] == 2 and summary["n_controls"] == 1, name
        assert 0 <= summary["R@5"] <= summary["R@10"] <= 1, name
        assert summary["z_threshold"] in Z_GRID and summary["min_cluster_mm3"] in SIZE_GRID, name
        assert summary["calibration_fp_per_control"] >= 0
        assert len(summary["per_subject"]) == 3
        sub = summary["subgroups"]
        assert sub["n_fcd_2D"] + sub["n_fcd_3D"] == 2 and sub["n_hc_2D"] + sub["n_hc_3D"] == 1, name
        assert sub["smallest_third_max_mm3"] <= sub["largest_third_min_mm3"], name
        found = [sub[f"found_{c}"] for c, _, _ in SIZE_CLASSES]
        assert sum(int(f.split("/")[1]) for f in found) == 2, name
    assert doc["sweeps"] == {}
    assert doc["meta"]["reference"]["n_controls"] == 3 and doc["meta"]["max_fp_per_control"] == 1.0
    aucs = doc["diagnostics"]["classifier_auc_lesion_slice"]
    assert list(aucs) == [f"t={t}" for t in AUC_TIMESTEPS]
    assert all(v is not None and 0.0 <= v <= 1.0 for v in aucs.values())
    # the method's reference, as `bids-fcd reference` would build it from the three reference controls
    ref = load_reference(out / "reference")
    assert ref.ref.n == 3 and ref.post is not None and ref.post.min_cluster_mm3 <= 150
    table = (out / "results.md").read_text()
    assert "| variant | subject sens. | FP clusters/HC | R@5 | R@10 |" in table
    assert table.count("\n") >= 9 and "Classifier AUC" in table
    assert (out / "guidance_gradient.png").stat().st_size > 0
    # benchmarks/cross_source.py scores the test cohort against a reference directory as the participant level
    # does: against the method's own reference it gives the method's row
    spec = importlib.util.spec_from_file_location("cross_source_bench", ROOT / "benchmarks" / "cross_source.py")
    cross = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cross)
    again = cross.cross_score(out, out / "reference", str(tiny_model), None)
    assert again["fp_clusters_per_control"] == res[method]["fp_clusters_per_control"]
    assert [r["detected"] for r in again["per_subject"]] == [r["detected"] for r in res[method]["per_subject"]]
    assert again["reference"]["n_controls"] == 3 and again["found"].endswith("/2")
    # benchmarks/pseudo_healthy_figure.py draws a lesion participant and a control from the benchmark's volumes
    spec = importlib.util.spec_from_file_location("ph_figure_bench", ROOT / "benchmarks" / "pseudo_healthy_figure.py")
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    labels = [r["label"] for r in res[method]["per_subject"]]
    png = tmp_path / "figure.png"
    assert figure.main([str(out), "--labels", labels[0], labels[-1], "--out", str(png), "--model", str(tiny_model),
                        "--conditions", "mirror", "native"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # benchmarks/t1_condition_quality.py reads the benchmark's own volumes: its mirror row is the method's quality
    spec = importlib.util.spec_from_file_location("t1_quality_bench", ROOT / "benchmarks" / "t1_condition_quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    by_condition = quality.quality_by_condition(out, ["mirror"], str(tiny_model))
    assert by_condition["mirror"]["control_mae"] == pytest.approx(res[method]["control_mae"])


def test_synthesis_quality_scores_removal_per_lesion_and_the_controls_error():
    import numpy as np

    from bids_fcd.workflows.benchmark import synthesis_quality
    from bids_fcd.workflows.cohort import Subject

    rng = np.random.default_rng(0)
    shape = (16, 16, 12)  # MONAI's SSIM window is 11 voxels
    mask = np.zeros(shape, bool)
    mask[2:14, 2:14, 1:11] = True
    cortex = mask.copy()
    roi = np.zeros(shape, bool)
    roi[5:8, 5:8, 3:5] = True
    base = (0.5 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    lesional = np.where(roi, base + 0.4, base).astype(np.float32)
    noise = (0.02 * rng.standard_normal(shape)).astype(np.float32)

    def sub(label, group, flair, lesion):
        return Subject(label, group, "FL" if lesion is not None else "n/a", np.zeros((12, 2, 16, 16), np.float32),
                       np.zeros((12, 16, 16), bool), flair, mask, lesion)

    subjects = [sub("01", "fcd", lesional, roi), sub("02", "fcd", lesional, roi), sub("03", "hc", base, None)]
    raw = {"01": base + noise,              # the lesion left out: the residual inside is the lesion's 0.4
           "02": lesional + noise,          # the lesion redrawn: nothing left inside
           "03": base + noise}
    q = synthesis_quality(subjects, raw, cortex, histogram_matching=False)
    per = q["lesion_removal_per_subject"]
    assert set(per) == {"01", "02"}
    assert per["01"] > 10 and abs(per["02"]) < 2
    assert q["lesion_removal_median"] == float(np.median([per["01"], per["02"]]))
    assert abs(q["control_mae"] - float(np.abs(noise[mask]).mean())) < 1e-6
    assert 0.5 < q["control_ssim"] <= 1.0


def test_size_classes_count_found_lesions_per_volume_class():
    from bids_fcd.workflows.benchmark import size_classes

    rows = [{"lesion_mm3": v, "detected": d} for v, d in
            ((40.0, False), (249.9, True), (250.0, True), (999.0, False), (1000.0, True), (5100.0, True))]
    out = size_classes(rows)
    assert out["found_under_250mm3"] == "1/2"
    assert out["found_250_to_1000mm3"] == "1/2"
    assert out["found_over_1000mm3"] == "2/2"
    assert out["sensitivity_250mm3_and_over"] == 0.75
    assert size_classes([])["sensitivity_250mm3_and_over"] is None
