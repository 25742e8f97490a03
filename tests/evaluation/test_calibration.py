import numpy as np

from bids_fcd.evaluation.calibration import SIZE_GRID, Z_GRID, choose, fp_table

AFF = np.diag([2.0, 2.0, 2.0, 1.0])  # 8 mm^3 voxels
AFF[:3, 3] = [-20.0, -20.0, -20.0]
Z = (3.0, 4.0, 5.0, 6.0, 7.0)
SIZES = (50.0, 100.0, 150.0, 250.0)


def _maps():
    """Control 1: a 27-voxel (216 mm^3) blob at z = 4 and an 8-voxel (64 mm^3) blob at z = 6; control 2: nothing."""
    a = np.zeros((20, 20, 20), np.float32)
    a[2:5, 2:5, 2:5] = 4.0
    a[12:14, 12:14, 12:14] = 6.0
    return [a, np.zeros_like(a)]


def _row(table, z, size):
    (row,) = [t for t in table if t["z_threshold"] == z and t["min_cluster_mm3"] == size]
    return row["fp_clusters_per_control"]


def test_table_counts_a_blob_below_its_z_and_above_its_size_only():
    table = fp_table(_maps(), AFF, Z, SIZES)
    assert len(table) == len(Z) * len(SIZES)
    assert {(t["z_threshold"], t["min_cluster_mm3"]) for t in table} == {(z, s) for z in Z for s in SIZES}
    # z > 3: both blobs; the small one only for sizes <= 64 mm^3, the large one up to 216 mm^3
    assert [_row(table, 3.0, s) for s in SIZES] == [1.0, 0.5, 0.5, 0.0]   # averaged over the 2 controls
    # the large blob (z = 4) is not counted at z > 4 (strict threshold); the small one (z = 6) still is
    assert [_row(table, 4.0, s) for s in SIZES] == [0.5, 0.0, 0.0, 0.0]
    assert [_row(table, 5.0, s) for s in SIZES] == [0.5, 0.0, 0.0, 0.0]
    assert [_row(table, z, s) for z in (6.0, 7.0) for s in SIZES] == [0.0] * 8
    # counts never grow with a stricter threshold or a larger minimum size
    for s in SIZES:
        col = [_row(table, z, s) for z in Z]
        assert col == sorted(col, reverse=True)


def test_choose_lowest_threshold_within_budget_and_size_capped():
    table = fp_table(_maps(), AFF, Z, SIZES)
    # budget 0.5 per control: z > 3 with >= 100 mm^3 fits
    assert (choose(table, 0.5)["z_threshold"], choose(table, 0.5)["min_cluster_mm3"]) == (3.0, 100.0)
    # budget 0: z > 3 would fit only with 250 mm^3, which is above the 150 mm^3 cap; next: z > 4, >= 100
    c = choose(table, 0.0)
    assert (c["z_threshold"], c["min_cluster_mm3"]) == (4.0, 100.0) and c["fp_clusters_per_control"] == 0.0
    # a larger cap allows the 250 mm^3 setting at the lower threshold
    c = choose(table, 0.0, max_min_size_mm3=250.0)
    assert (c["z_threshold"], c["min_cluster_mm3"]) == (3.0, 250.0)
    # a generous budget: the lowest threshold, smallest size
    c = choose(table, 1.0)
    assert (c["z_threshold"], c["min_cluster_mm3"]) == (3.0, 50.0)


def test_choose_strictest_pair_when_nothing_fits():
    a = np.zeros((20, 20, 20), np.float32)
    a[2:5, 2:5, 2:5] = 20.0          # above every threshold of the grid, 216 mm^3
    table = fp_table([a], AFF, Z, SIZES)
    assert all(t["fp_clusters_per_control"] == 1.0 for t in table if t["min_cluster_mm3"] <= 150)
    c = choose(table, 0.5)
    assert (c["z_threshold"], c["min_cluster_mm3"]) == (7.0, 150.0)   # never the 250 mm^3 that would fit
    assert c["fp_clusters_per_control"] == 1.0


def test_default_grids():
    assert Z_GRID[0] == 2.0 and Z_GRID[-1] == 10.0 and list(Z_GRID) == sorted(Z_GRID)
    assert max(SIZE_GRID) <= 150.0
    table = fp_table(_maps(), AFF)
    assert len(table) == len(Z_GRID) * len(SIZE_GRID)
    assert choose(table, 0.0)["min_cluster_mm3"] <= 150.0
