"""Synthetic report inputs on a small grid: a smooth 'brain', a bright FLAIR blob as the lesion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bids_fcd.config import LOBES, GridConfig
from bids_fcd.postprocessing.clusters import find_clusters
from bids_fcd.preprocessing.grid import grid_affine
from bids_fcd.reports.participant import ReportInputs

ROOT = Path(__file__).resolve().parents[2]
PHANTOM_MODEL = ROOT / "models" / "phantom-default"
GRID = GridConfig(shape=(56, 48), spacing_mm=3.0, center_mm=(0.0, -18.0), z_min_mm=-50.0, z_max_mm=67.0)
#: The tests' "T1w scanner" space: template mm shifted by this (mm), NaN outside the brain.
NATIVE_SHIFT_MM = (1.0, -2.0, 3.0)


def make_inputs(lesion_mm: tuple[float, float, float] | None = (-30.0, 10.0, 30.0), with_roi: bool = True,
                model_dir: Path = PHANTOM_MODEL, model_name: str = "phantom-default",
                probs: dict[str, float] | None = None, seed: int = 0,
                extra_blobs: tuple[tuple[float, float, float], ...] = (), grid: GridConfig = GRID) -> ReportInputs:
    """Report inputs on a 48x56x40 grid (or ``grid``); a lesion blob at ``lesion_mm`` (template mm) or none."""
    aff, shape = grid_affine(grid)
    rng = np.random.default_rng(seed)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    xyz = ijk @ aff[:3, :3].T + aff[:3, 3]
    ell = ((xyz[..., 0] / 68) ** 2 + ((xyz[..., 1] + 18) / 95) ** 2 + ((xyz[..., 2] - 10) / 72) ** 2)
    mask = ell < 1.0
    t1 = np.where(mask, 0.6 + 0.3 * np.cos(xyz[..., 0] / 6) * np.cos(xyz[..., 1] / 7), -1.0).astype(np.float32)
    flair = np.where(mask, 0.4 + 0.2 * np.sin(xyz[..., 2] / 5), -1.0).astype(np.float32)
    flair += np.where(mask, rng.normal(0, 0.05, shape), 0).astype(np.float32)
    pseudo = flair.copy()
    z = np.where(mask, rng.normal(0, 0.7, shape), 0).astype(np.float32)
    roi = None
    for k, centre in enumerate(([lesion_mm] if lesion_mm is not None else []) + list(extra_blobs)):
        d = np.linalg.norm(xyz - np.asarray(centre), axis=-1)
        z += (7.0 - k * 1.5) * np.exp(-((d / 7.0) ** 2)) * mask
        flair += 0.5 * (d < 8) * mask
        if k == 0 and with_roi:
            roi = (d < 8) & mask
    labels, clusters = find_clusters(z, aff, 3.0, 100.0, 20)
    if probs is None:
        probs = dict(zip(LOBES, (0.05, 0.7, 0.1, 0.05, 0.05, 0.05), strict=True))
    return ReportInputs(
        subject="01", session=None, affine=aff, t1w=t1, flair=flair, pseudo=pseudo, z=z, mask=mask,
        labels=labels, roi=roi, clusters=[{**c.row(), "native_center_x": c.center_mm[0] + 1.0,
                                           "native_center_y": c.center_mm[1] - 2.0, "native_center_z": 12.5,
                                           "native_size_mm3": 1.0} for c in clusters], lobe_probabilities=probs, z_threshold=3.0,
        native_mm=np.where(mask, np.moveaxis(xyz + np.asarray(NATIVE_SHIFT_MM), -1, 0), np.nan).astype(np.float32),
        min_cluster_mm3=100.0, model_name=model_name, model_sha256="ab" * 32, model_dir=model_dir,
        reference={"path": "phantom-default/reference", "n": 20, "age_range": "20-60", "dataset": "phantom seed 400"},
        settings={"encoding": "stochastic", "noise_level": 300, "steps": 3, "draws": 2, "guidance_scale": 20.0,
                  "histogram_matching": True, "registration": "syn"})


@pytest.fixture
def patient() -> ReportInputs:
    return make_inputs()


#: The figure files of one participant without session (the stored list the end-to-end test keeps).
EXPECTED_FIGURES = ("sub-{s}_desc-brainmask_FLAIR.svg", "sub-{s}_desc-clusters_FLAIR.png",
                    "sub-{s}_desc-glassbrain_statmap.png", "sub-{s}_desc-lobes_probabilities.svg",
                    "sub-{s}_desc-registration_T1w.svg")


@pytest.fixture(scope="session")
def report_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTPUT_DIR holding two reports: sub-01, a patient with a lesion mask, a frontal lesion and a
    cerebellar cluster; sub-02, a control without cluster whose classifier says P(healthy) = 0.1."""
    import dataclasses

    from bids_fcd.reports.participant import write_participant_report

    root = tmp_path_factory.mktemp("reports") / "derivatives"
    write_participant_report(root, make_inputs(extra_blobs=((20.0, -62.0, -40.0),)))
    control = make_inputs(lesion_mm=None, with_roi=False, probs=dict(zip(
        LOBES, (0.1, 0.5, 0.1, 0.1, 0.1, 0.1), strict=True)), seed=1)
    write_participant_report(root, dataclasses.replace(control, subject="02"))
    return root


def shipped_grid() -> GridConfig:
    """The grid of the shipped model (``bids_fcd/models/phantom-default``), where the product's pages are."""
    import json

    from bids_fcd.config import from_dict
    from bids_fcd.nets.locate import resolve_model

    return from_dict(GridConfig, json.loads((resolve_model("phantom-default") / "config.json").read_text())["net"]["grid"])


def make_anatomical_inputs(grid: GridConfig | None = None, lesion_mm: tuple[float, float, float] = (-30.0, 10.0, 30.0),
                           seed: int = 0) -> ReportInputs:
    """Report inputs with real anatomy at the default 2 mm grid (or ``grid``): nilearn's MNI152 T1
    as the T1w, a FLAIR-like contrast from its grey/white-matter maps (grey brighter, CSF dark), a
    pseudo-healthy FLAIR with its own noise, smooth noise as z and a lesion blob at ``lesion_mm``.
    The T1w scanner coordinates are a rotation, a scaling and a shift of template mm plus a smooth
    warp of about 0.7 mm SD (what a nonlinear registration leaves after its affine part on the
    phantoms). For the page weight, the load time and the screenshots (closer to a real participant
    than the ellipsoid of :func:`make_inputs`)."""
    import dataclasses

    from scipy import ndimage

    from bids_fcd.atlas import load_template

    grid = grid or GridConfig()
    aff, shape = grid_affine(grid)
    tpl = load_template(resolution=1)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), 0).reshape(3, -1).astype(float)
    xyz = aff[:3, :3] @ ijk + aff[:3, 3:4]

    def sample(img: object) -> np.ndarray:
        inv = np.linalg.inv(img.affine)  # type: ignore[attr-defined]
        vox = inv[:3, :3] @ xyz + inv[:3, 3:4]
        return ndimage.map_coordinates(np.asarray(img.dataobj, np.float32), vox, order=1).reshape(shape)  # type: ignore[attr-defined]

    t1, gm, wm, brain = (sample(tpl[k]) for k in ("t1", "gm", "wm", "mask"))
    mask = brain > 0.5
    rng = np.random.default_rng(seed)

    def normalise(v: np.ndarray) -> np.ndarray:  # brain p1 -> -1, p50 -> 0.6, background -1 (the product's)
        p1, p50 = np.percentile(v[mask], [1, 50])
        return np.where(mask, -1 + (v - p1) * 1.6 / (p50 - p1), -1).astype(np.float32)

    dist = np.linalg.norm(xyz.T.reshape(*shape, 3) - np.asarray(lesion_mm), axis=-1)
    flair = normalise(60 * gm + 40 * wm + 10 + rng.normal(0, 4, shape) + 30 * (dist < 8) * mask)
    pseudo = normalise(60 * gm + 40 * wm + 10 + rng.normal(0, 4, shape))
    z = np.where(mask, 2.2 * ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.0) + 7 * np.exp(-(dist / 7) ** 2),
                 0).astype(np.float32)
    labels, clusters = find_clusters(z, aff, 3.0, 100.0, 20)
    return dataclasses.replace(make_inputs(lesion_mm=None, with_roi=False, grid=grid), t1w=normalise(t1 + rng.normal(
        0, 3, shape)), flair=flair, pseudo=pseudo, z=z, mask=mask, labels=labels, roi=(dist < 8) & mask,
        clusters=[c.row() for c in clusters],
        native_mm=np.where(mask, anatomical_native_mm(xyz, shape, rng), np.nan).astype(np.float32))


def anatomical_native_mm(xyz: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """(3, *shape) scanner mm for template mm ``xyz`` (3, N): 10° about z, 1.05 scaling, a shift and a
    smooth warp (Gaussian-smoothed noise, σ 4 voxels, 0.7 mm SD per axis)."""
    from scipy import ndimage

    c, s = np.cos(np.radians(10.0)), np.sin(np.radians(10.0))
    lin = 1.05 * np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    warp = np.stack([ndimage.gaussian_filter(rng.normal(0, 1, shape), 4.0) for _ in range(3)])
    warp *= 0.7 / warp.reshape(3, -1).std(axis=1).reshape(3, 1, 1, 1)
    return (lin @ xyz + np.reshape(NATIVE_SHIFT_MM, (3, 1))).reshape(3, *shape) + warp


@pytest.fixture(scope="session")
def anatomical_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTPUT_DIR/sub-01.html of :func:`make_anatomical_inputs` with its assets (figures not drawn:
    for the viewer only)."""
    from bids_fcd.reports import participant as rp
    from bids_fcd.reports import viewer

    root = tmp_path_factory.mktemp("anatomy")
    data = make_anatomical_inputs()
    viewer.install_assets(root)
    page = rp.report_path(root, data.subject, None)
    rows = rp.table_rows(data, [True] * len(data.clusters))
    page.write_text(rp.render_participant(root, data, rp.figure_paths(root, data.subject, None), rows, {}),
                    encoding="utf-8")
    return page
