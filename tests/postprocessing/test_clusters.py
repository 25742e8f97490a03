import numpy as np

from bids_fcd.postprocessing.clusters import find_clusters


def test_clusters_ranked_filtered_and_labelled():
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-40, -40, -40]   # voxel (20, 20, 20) is the origin
    z = np.zeros((40, 40, 40), np.float32)
    z[5:9, 30:34, 28:32] = 3.0           # left (x<0), anterior, superior: FL
    z[6, 31, 29] = 4.0
    z[30:34, 30:34, 28:32] = 5.0         # right FL, higher peak → rank 1
    z[20, 5, 20] = 9.0                   # a single voxel (8 mm^3): below min size
    labels, cl = find_clusters(z, aff, threshold=1.65, min_size_mm3=50, max_clusters=10)
    assert [c.index for c in cl] == [1, 2]
    assert cl[0].hemisphere == "R" and cl[1].hemisphere == "L"
    assert cl[0].peak_z == 5.0 and cl[1].peak_z == 4.0
    assert cl[0].lobe == "FL" and abs(cl[0].size_mm3 - 64 * 8) < 1e-6
    assert labels[20, 5, 20] == 0 and labels[31, 31, 29] == 1 and labels[6, 31, 29] == 2
    assert cl[1].peak_mm == (-28.0, 22.0, 18.0)
