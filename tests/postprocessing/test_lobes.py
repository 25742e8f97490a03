import numpy as np

from bids_fcd.config import LOBES
from bids_fcd.postprocessing.lobes import participant_lobe_probabilities


def test_lobe_probabilities_sum_to_one():
    p = np.full((4, 6), 0.02)
    p[:, 0] = 0.9
    p[2] = [0.1, 0.02, 0.8, 0.04, 0.02, 0.02]
    out = participant_lobe_probabilities(p, np.array([0.5, 0.5, 0.5, 0.0]))
    assert list(out) == list(LOBES)
    assert abs(sum(out.values()) - 1) < 1e-9
    assert max(out, key=out.get) == "TL"
