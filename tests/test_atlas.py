import numpy as np

from bids_fcd.atlas import hemisphere_of_mm, lobe_of_mm


def test_lobes_at_landmarks():
    pts = np.array([[-30, 40, 20],    # frontal
                    [50, -20, -15],   # temporal
                    [-35, -50, 45],   # parietal
                    [20, -90, 5],     # occipital
                    [-36, 0, 5]])     # insula
    assert lobe_of_mm(pts).tolist() == ["FL", "TL", "PL", "OL", "IL"]
    assert hemisphere_of_mm(pts).tolist() == ["L", "R", "L", "R", "L"]
