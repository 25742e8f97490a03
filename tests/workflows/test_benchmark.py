import json
import shutil
from types import SimpleNamespace

from bids_fcd.config import SamplerConfig
from bids_fcd.workflows.benchmark import run_benchmark


def test_benchmark_on_the_tiny_phantom(phantom, tiny_model, work_dir, tmp_path):
    out = tmp_path / "bench"
    shutil.copytree(phantom, out / "bids")
    shutil.copytree(work_dir, out / "work")   # reuse the preprocessing cache (keyed by content)
    args = SimpleNamespace(out=str(out), n_fcd=2, n_hc=1, phantom_seed=3, size="tiny", device="cpu",
                           model=str(tiny_model), flair_only_model=None, sweeps=False)
    assert run_benchmark(args, SamplerConfig(noise_level=20, steps=5, guidance_scale=5.0)) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    names = list(res)
    assert names[0].startswith("method (s=5")
    assert {"ablation: no histogram matching", "ablation: no guidance (s=0)", "baseline: FLAIR z-score vs controls",
            "baseline: FLAIR asymmetry"} <= set(names)
    for summary in res.values():
        assert summary["n_scored"] == 2 and summary["n_controls"] == 1
        assert 0 <= summary["R@5"] <= summary["R@10"] <= 1
        assert len(summary["per_subject"]) == 3
    table = (out / "results.md").read_text()
    assert table.count("\n") >= 7 and "| R@5 | R@10 |" in table
