"""Cohort scoring: who counts as a control (issue #18: ``control`` was counted as a patient)."""

import numpy as np
import pytest

from bids_fcd.bids.participants import CONTROL_GROUPS, is_control
from bids_fcd.evaluation.scoring import cohort_summary, score_subject


@pytest.mark.parametrize("code", ["hc", "HC", "control", "Control ", "controls", "healthy"])
def test_control_codes_are_controls(code: str) -> None:
    assert is_control(code)
    rows = [{"group": code, "n_clusters": 2, "fp_clusters": 2}, {"group": code, "n_clusters": 0, "fp_clusters": 0}]
    summary = cohort_summary(rows, 3.0)
    assert summary["n_controls"] == 2
    assert summary["fp_clusters_per_control"] == pytest.approx(1.0)


@pytest.mark.parametrize("code", ["fcd", "patient", "", "n/a"])
def test_other_codes_are_not_controls(code: str) -> None:
    assert not is_control(code)
    assert cohort_summary([{"group": code, "n_clusters": 3}], 3.0)["n_controls"] == 0


def test_control_codes_documented() -> None:
    assert "hc" in CONTROL_GROUPS and "control" in CONTROL_GROUPS


def test_score_subject_detects_top_cluster_on_lesion() -> None:
    shape = (12, 12, 6)
    roi = np.zeros(shape, bool)
    roi[4:7, 4:7, 2:4] = True
    labels = roi.astype(int)
    z = roi.astype(np.float32) * 5
    row = score_subject(z, labels, [np.array([5.0, 5.0, 2.5])], np.ones(shape, bool), roi, np.eye(4))
    assert row["detected"] is True and row["fp_clusters"] == 0
