"""The free-response curve: monotone, operating point, hits from a lesion mask."""

from __future__ import annotations

import numpy as np

from bids_fcd.evaluation.froc import Marks, froc_curve, marks_from_map


def _cohort() -> list[Marks]:
    return [Marks((6.0, 3.0), (True, False), False),   # top cluster hits
            Marks((5.0, 4.5), (False, True), False),   # only the second hits
            Marks((2.5,), (False,), False),            # missed
            Marks((), (), False),                      # no cluster at all
            Marks((4.0, 2.2), None, True),             # controls
            Marks((), None, True)]


def test_froc_is_monotone_and_counts() -> None:
    marks = _cohort()
    curve = froc_curve(marks, [2.0, 2.4, 3.5, 4.8, 5.5, 7.0])
    assert curve["n_patients"] == 4 and curve["n_controls"] == 2
    for key in ("sensitivity_top", "sensitivity_any", "fp_per_control"):
        v = np.asarray(curve[key], float)
        assert np.all(np.diff(v) <= 1e-12), key
    assert curve["sensitivity_top"][0] == 0.25 and curve["sensitivity_any"][0] == 0.5
    assert curve["fp_per_control"] == [1.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert curve["sensitivity_any"][3] == 0.25  # at 4.8 the 4.5 hit is gone, the 6.0 one stays
    assert curve["sensitivity_top"][-1] == 0.0
    assert all(a >= t for a, t in zip(curve["sensitivity_any"], curve["sensitivity_top"], strict=True))


def test_froc_default_cutoffs_and_no_controls() -> None:
    curve = froc_curve([Marks((3.0,), (True,), False)])
    assert curve["threshold"] == [3.0] and curve["fp_per_control"] == [None]


def test_marks_from_map_hits_the_lesion() -> None:
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    z = np.zeros((20, 20, 20), np.float32)
    z[3:6, 3:6, 3:6] = 5.0          # on the lesion
    z[14:17, 14:17, 14:17] = 7.0    # far away, higher peak: the top cluster misses
    roi = np.zeros(z.shape, bool)
    roi[3:6, 3:6, 3:6] = True
    m = marks_from_map(z, roi, aff, 3.0, 8.0, 20, control=False)
    assert m.scores == (7.0, 5.0) and m.hits == (False, True)
    curve = froc_curve([m, marks_from_map(z, None, aff, 3.0, 8.0, 20, control=True)], [3.0, 6.0])
    assert curve["sensitivity_top"] == [0.0, 0.0] and curve["sensitivity_any"] == [1.0, 0.0]
    assert curve["fp_per_control"] == [2.0, 1.0]
