"""The viewer's payload: embedded volumes that read back as the derivatives, one copy of the
scripts per output directory, cluster rows that carry their peaks, and the page weight."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_fcd.reports import participant as rp
from bids_fcd.reports import viewer
from tests.reports.conftest import make_anatomical_inputs, make_inputs, shipped_grid

#: The vendored bundle (bids_fcd/reports/assets/README.md names the same).
NIIVUE_SHA256 = "47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af"
#: The issue's budget for one participant page (any grid the product writes).
PAGE_BUDGET_BYTES = 5_000_000


def _decode(vol: viewer.Volume) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(vol.base64)))


def _scanner_mm(vols: dict[str, viewer.Volume], affine: np.ndarray) -> np.ndarray:
    """(3, X, Y, Z) T1w scanner mm as the viewer computes them: the stored residual plus its affine part."""
    resid = np.stack([_decode(vols[f"native_{a}"]).get_fdata() for a in "xyz"])
    ijk1 = np.concatenate([np.indices(resid.shape[1:]), np.ones((1, *resid.shape[1:]))]).reshape(4, -1)
    xyz1 = np.asarray(affine, float) @ ijk1
    rows = np.array([vols[f"native_{a}"].affine_row for a in "xyz"])
    return resid + (rows @ xyz1).reshape(resid.shape)


def test_embedded_volumes_read_back_as_the_arrays() -> None:
    data = make_inputs()
    vols = {v.key: v for v in viewer.volumes(data)}
    assert list(vols) == ["flair", "pseudo", "t1w", "z", "clusters", "lesion", "native_x", "native_y", "native_z"]
    native = _scanner_mm(vols, data.affine)
    inside = np.asarray(data.mask, bool)
    assert data.native_mm is not None
    assert np.abs(native[:, inside] - data.native_mm[:, inside]).max() <= viewer.NATIVE_STEP_MM / 2 + 1e-4
    for key, arr, dtype in (("flair", data.flair, np.uint8), ("pseudo", data.pseudo, np.uint8),
                            ("t1w", data.t1w, np.uint8), ("z", data.z, np.int16)):
        img = _decode(vols[key])
        assert img.get_data_dtype() == dtype
        np.testing.assert_allclose(img.affine, data.affine)
        err = np.abs(img.get_fdata() - arr).max()
        assert 0 < err <= vols[key].step / 2 + 1e-5, f"{key}: error {err} for a step of {vols[key].step}"
    labels = _decode(vols["clusters"])
    assert labels.header.get_intent()[0] == "label"
    np.testing.assert_array_equal(np.asarray(labels.dataobj), data.labels)
    np.testing.assert_array_equal(np.asarray(_decode(vols["lesion"]).dataobj) > 0, data.roi)
    assert vols["z"].cal_min == data.z_threshold and vols["z"].cal_max == pytest.approx(float(data.z.max()))


def test_a_control_has_no_lesion_layer_and_equal_input_gives_equal_bytes() -> None:
    control = make_inputs(lesion_mm=None, with_roi=False, seed=1)
    a, b = viewer.volumes(control), viewer.volumes(control)
    assert [v.key for v in a] == ["flair", "pseudo", "t1w", "z", "clusters", "native_x", "native_y", "native_z"]
    assert [v.base64 for v in a] == [v.base64 for v in b]


def test_one_copy_of_the_scripts_per_output_directory(report_root: Path) -> None:
    assets = report_root / viewer.ASSETS_DIR
    assert sorted(p.name for p in assets.iterdir()) == sorted(viewer.ASSET_FILES)
    assert hashlib.sha256((assets / viewer.NIIVUE_JS).read_bytes()).hexdigest() == NIIVUE_SHA256
    assert NIIVUE_SHA256 in (viewer.ASSETS_SRC / "README.md").read_text()
    for label in ("01", "02"):
        page = (report_root / f"sub-{label}.html").read_text()
        srcs = re.findall(r"<script src='([^']+)'", page)
        assert srcs == list(viewer.SCRIPTS)
        assert all((report_root / s).is_file() for s in srcs)
        assert (assets / viewer.NIIVUE_JS).read_text()[:300] not in page, "NiiVue's code must not be inlined in a page"


def test_install_assets_keeps_equal_files_and_repairs_changed_ones(tmp_path: Path) -> None:
    first = viewer.install_assets(tmp_path)
    stamp = {p: p.stat().st_mtime_ns for p in first}
    first[0].write_text("broken")
    again = viewer.install_assets(tmp_path)
    assert again == first
    assert first[0].read_bytes() == (viewer.ASSETS_SRC / first[0].name).read_bytes()
    assert all(p.stat().st_mtime_ns == stamp[p] for p in first[1:])


def test_cluster_rows_link_to_their_peaks(report_root: Path) -> None:
    page = (report_root / "sub-01.html").read_text()
    table = page[page.index("<table id='cluster-table'>"):]
    table = table[: table.index("</table>")]
    peaks = [tuple(map(float, m.split())) for m in re.findall(r"<tr data-peak-mm='([^']+)'>", table)]
    data = make_inputs(extra_blobs=((20.0, -62.0, -40.0),))
    assert peaks == [(float(c["peak_x"]), float(c["peak_y"]), float(c["peak_z_mm"]))  # type: ignore[arg-type]
                     for c in data.clusters]
    assert len(peaks) == 2 and table.count("href='#viewer'") == 2
    cfg = re.search(r"<script type='application/json' id='bids-fcd-viewer-config'>(.*?)</script>", page, re.S)
    assert cfg and html.unescape(cfg.group(1)).count('"rank"') == 2


def test_fixed_steps_read_back_and_a_range_too_wide_falls_back_to_min_max() -> None:
    z = np.linspace(-3.0, 12.0, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    assert viewer.fixed_step(z, np.int16, 0.01) == 0.01
    img = nib.Nifti1Image.from_bytes(gzip.decompress(viewer.nifti_gz(z, np.eye(4), np.int16, step=0.01)))
    assert img.dataobj.slope == pytest.approx(0.01) and img.dataobj.inter == 0
    assert np.abs(img.get_fdata() - z).max() <= 0.005 + 1e-6
    wide = z * 100  # up to z 1200: 120 000 steps of 0.01 do not fit int16
    assert viewer.fixed_step(wide, np.int16, 0.01) is None
    assert viewer.fixed_step(np.zeros((0,)), np.int16, 0.01) == 0.01


def test_native_affine_takes_out_the_linear_part() -> None:
    data = make_anatomical_inputs()
    assert data.native_mm is not None
    coef, resid = viewer.native_affine(data.native_mm, data.affine, data.mask)
    inside = np.asarray(data.mask, bool)
    assert np.all(resid[:, ~inside] == 0)
    assert 0.3 < float(resid[:, inside].std()) < 1.0  # the fixture's 0.7 mm warp is what is left
    assert float(np.abs(data.native_mm[:, inside]).std()) > 20 * float(resid[:, inside].std())
    np.testing.assert_allclose(np.linalg.det(coef[:, :3]), 1.05 ** 3, rtol=0.01)
    vols = {v.key: v for v in viewer.volumes(data)}  # the warped mapping reads back within half a step
    assert vols["native_x"].step == viewer.NATIVE_STEP_MM and vols["z"].step == viewer.Z_STEP
    err = np.abs(_scanner_mm(vols, data.affine)[:, inside] - data.native_mm[:, inside]).max()
    assert err <= viewer.NATIVE_STEP_MM / 2 + 1e-4
    empty, zero = viewer.native_affine(np.full((3, 2, 2, 2), np.nan), np.eye(4), np.ones((2, 2, 2), bool))
    assert not empty.any() and not zero.any()


@pytest.mark.parametrize("where", ["2 mm", "shipped"])
def test_page_weight(where: str, anatomical_page: Path, tmp_path: Path) -> None:
    """The participant page (volumes embedded, scripts and figures linked) with anatomy (the MNI152
    template) rather than an ellipsoid, so that compression sees real structure, at the 2 mm grid and
    at the shipped model's (1.5 mm, 2.4x the voxels)."""
    if where == "2 mm":
        assert np.shape(make_anatomical_inputs().flair) == (96, 96, 66)
        page = anatomical_page
    else:
        grid = shipped_grid()
        data = make_anatomical_inputs(grid)
        page = rp.report_path(tmp_path, data.subject, None)
        page.write_text(rp.render_participant(tmp_path, data, rp.figure_paths(tmp_path, data.subject, None),
                                              rp.table_rows(data, [True] * len(data.clusters)), {}), encoding="utf-8")
    size = page.stat().st_size
    logging.getLogger(__name__).info("participant page at the %s grid: %d bytes", where, size)
    assert 500_000 < size < PAGE_BUDGET_BYTES


def test_a_failed_viewer_is_reported_and_the_page_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: object) -> list[viewer.Volume]:
        raise MemoryError("no room for the volumes")

    monkeypatch.setattr(viewer, "volumes", broken)
    with pytest.raises(rp.ReportError, match="viewer") as err:
        rp.write_participant_report(tmp_path, make_inputs())
    page = rp.report_path(tmp_path, "01", None)
    assert page in err.value.written
    text = page.read_text()
    assert "no room for the volumes" in text and "bids-fcd-viewer-config" not in text
    assert len(re.findall(r"<img ", text)) == 5  # the static figures are all there


def test_native_coordinates_of_the_wrong_shape_are_refused() -> None:
    import dataclasses

    data = make_inputs()
    assert data.native_mm is not None
    with pytest.raises(ValueError, match="native_mm has shape"):
        viewer.volumes(dataclasses.replace(data, native_mm=data.native_mm[:2]))
    assert "native_x" not in [v.key for v in viewer.volumes(dataclasses.replace(data, native_mm=None))]
