import json

import numpy as np
import torch

from bids_fcd.config import GridConfig, PostConfig
from bids_fcd.nets.checkpoint import load_model, save_model, verify
from bids_fcd.nets.networks import build_classifier, build_unet
from bids_fcd.training.presets import PRESETS
from bids_fcd.workflows.benchmark import Subject
from bids_fcd.workflows.calibrate import sweep_post, write_post

GRID = GridConfig(shape=(24, 24), spacing_mm=4.0, center_mm=(0.0, 0.0), z_min_mm=-40.0, z_max_mm=40.0)


def _subject(label, group, rng):
    shape = (24, 24, 21)
    mask = np.zeros(shape, bool)
    mask[3:21, 3:21, 3:18] = True
    anomaly = np.where(mask, rng.random(shape) * 0.2, 0).astype(np.float32)
    roi = None
    if group == "fcd":
        roi = np.zeros(shape, bool)
        roi[8:12, 8:12, 8:12] = True
        anomaly[roi] += 1.0
    else:  # a control with one bright voxel: only the minimum cluster size can remove it
        anomaly[15, 15, 12] += 1.0
    return Subject(label, group, "FL" if roi is not None else "n/a", np.zeros((21, 2, 24, 24), np.float32),
                   np.zeros((21, 24, 24), bool), anomaly, mask, roi), anomaly


def test_sweep_keeps_sensitivity_and_bounds_false_positives():
    rng = np.random.default_rng(0)
    pairs = [_subject(f"{i:02d}", g, rng) for i, g in enumerate(["fcd", "fcd", "hc", "hc"])]
    subjects = [p[0] for p in pairs]
    maps = {p[0].label: p[1] for p in pairs}
    post, table = sweep_post(subjects, maps, GRID, PostConfig(smoothing_fwhm_mm=0.0), max_fp_per_control=0.0)
    chosen = next(t for t in table if t["z_threshold"] == post.z_threshold and
                  t["min_cluster_mm3"] == post.min_cluster_mm3)
    assert chosen["sensitivity"] == 1.0 and chosen["fp_clusters_per_control"] == 0.0
    assert any(t["fp_clusters_per_control"] > 0 for t in table), "low thresholds must show the control's blob"


def test_write_post_renews_checksums(tmp_path):
    net = PRESETS["tiny"].net
    save_model(tmp_path / "m", build_unet(net), build_classifier(net), net)
    write_post(tmp_path / "m", PostConfig(z_threshold=3.5, min_cluster_mm3=300.0), {"note": "t"})
    verify(tmp_path / "m")
    m = load_model(str(tmp_path / "m"), torch.device("cpu"))
    assert m.post.z_threshold == 3.5 and m.post.min_cluster_mm3 == 300.0
    assert json.loads((tmp_path / "m" / "config.json").read_text())["meta"]["calibration"] == {"note": "t"}
