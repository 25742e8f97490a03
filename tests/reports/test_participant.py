"""The participant report: files, links, banner, non-cortical clusters, classifier caveats, failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bids_fcd.config import LOBES
from bids_fcd.reports import figures, methods
from bids_fcd.reports import participant as rp
from tests.reports.conftest import EXPECTED_FIGURES, PHANTOM_MODEL, make_inputs


def _srcs(page: str) -> list[str]:
    return re.findall(r"<img[^>]*\bsrc='([^']+)'", page)


@pytest.mark.parametrize("label", ["01", "02"])
def test_report_files_exist_and_are_linked(report_root: Path, label: str) -> None:
    page = (report_root / f"sub-{label}.html").read_text()
    figs = sorted(p.name for p in (report_root / f"sub-{label}" / "figures").iterdir() if p.suffix != ".pdf")
    assert figs == sorted(n.format(s=label) for n in EXPECTED_FIGURES)
    assert (report_root / f"sub-{label}" / "figures" / f"sub-{label}_report.pdf").is_file()
    srcs = _srcs(page)
    assert sorted(Path(s).name for s in srcs) == figs
    for s in srcs:  # relative links that resolve from the page's folder
        assert not s.startswith(("/", "file:", "data:"))
        assert (report_root / s).is_file() and (report_root / s).stat().st_size > 1000


def test_figure_paths_use_the_naming_function(tmp_path: Path) -> None:
    paths = rp.figure_paths(tmp_path, "07", "pre")
    assert paths["clusters"] == tmp_path / "sub-07/ses-pre/figures/sub-07_ses-pre_desc-clusters_FLAIR.png"
    assert rp.report_path(tmp_path, "07", "pre") == tmp_path / "sub-07_ses-pre.html"


def test_patient_page_content(report_root: Path) -> None:
    page = (report_root / "sub-01.html").read_text()
    assert "id='synthetic-model'" in page and "Not for clinical use" in page
    table = page[page.index("id='cluster-table'"):page.index("</table>", page.index("id='cluster-table'"))]
    assert "FL (frontal)" in table and rp.NON_CORTICAL in table  # the cerebellar blob is not "TL"/"OL"
    assert "T1w scanner mm" in table and "12.5" in table and "native_size_mm3" not in table
    assert "ground-truth lesion" in page
    assert "Neurological convention" in page
    for ref in ("Li, Pan, Zhang", "Song J", "Dhariwal P", "Avants BB", "Tustison NJ", "Fisch L", "Fonov",
                "MONAI", "Abraham A"):
        assert ref in page, ref
    for pkg in ("bids-fcd", "torch", "monai", "antspyx", "nilearn", "nibabel"):
        assert f"<th>{pkg}</th>" in page
    assert "caveat" not in page.split("id='lobes'")[1].split("<img")[0]  # confident and agreeing


def test_control_page_caveat(report_root: Path) -> None:
    page = (report_root / "sub-02.html").read_text()
    assert "No cluster" in page
    assert "P(healthy) = 0.10" in page and "class='caveat'" in page


def test_banner_reads_the_card_at_run_time(tmp_path: Path) -> None:
    card = tmp_path / "phantom-test"
    card.mkdir()
    (card / "MODEL_CARD.md").write_text("# Model card\n\n**Warning: trained on synthetic data.** Toy.\n\n"
                                        "## Evaluation\n\nOn the held-out phantom the subject sensitivity was "
                                        "0.123 at 0.25 false-positive clusters per control.\n")
    html = methods.synthetic_banner_html(card, "phantom-test")
    assert "0.123" in html and "Not for clinical use" in html
    shipped = methods.synthetic_banner_html(PHANTOM_MODEL, "phantom-default")
    assert "slice accuracy" in shipped  # a figure from the shipped card, not from code


def test_no_banner_for_a_real_model(tmp_path: Path) -> None:
    model = tmp_path / "site-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"meta": {}}))
    data = make_inputs(model_dir=model, model_name="site-model")
    assert not methods.is_synthetic_model(model, "site-model")
    assert methods.is_synthetic_model(PHANTOM_MODEL, "phantom-default")
    figs = rp.figure_paths(tmp_path, data.subject, data.session)
    page = rp.render_participant(tmp_path, data, figs, rp.table_rows(data, [True]), {})
    assert "synthetic-model" not in page and "not for clinical decisions" in page


def test_report_lobe_rules() -> None:
    assert rp.report_lobe((20.0, -60.0, -40.0), "TL", True) == rp.NON_CORTICAL  # cerebellum
    assert rp.report_lobe((-30.0, 10.0, 30.0), "FL", True) == "FL"
    assert rp.report_lobe((-30.0, 10.0, 30.0), "FL", False) == rp.NON_CORTICAL
    assert rp.report_lobe((-30.0, 10.0, 30.0), "FL", None) == "FL"
    assert rp.report_lobe((-14.0, -20.0, 8.0), "PL", True) == rp.NON_CORTICAL  # thalamus


def test_cortical_at_uses_template_grey_matter() -> None:
    inside, deep, outside = rp.cortical_at([(-52.0, -20.0, 40.0), (-25.0, -20.0, 30.0), (0.0, 0.0, 120.0)])
    assert inside is True and outside is False and deep is False  # postcentral cortex; white matter; air


def test_lobe_caveats() -> None:
    p = dict(zip(LOBES, (0.05, 0.7, 0.1, 0.05, 0.05, 0.05), strict=True))
    assert rp.lobe_caveats(p, "FL") == []
    assert any("differs" in c for c in rp.lobe_caveats(p, "TL"))
    low = dict(zip(LOBES, (0.2, 0.3, 0.2, 0.1, 0.1, 0.1), strict=True))
    assert any("Low confidence" in c for c in rp.lobe_caveats(low, "FL"))
    assert any("P(healthy) = 0.20" in c for c in rp.lobe_caveats(low, None))
    healthy = dict(zip(LOBES, (0.9, 0.02, 0.02, 0.02, 0.02, 0.02), strict=True))
    assert rp.lobe_caveats(healthy, None) == []
    assert any("favours healthy" in c for c in rp.lobe_caveats(healthy, "FL"))
    assert any("not in cortex" in c for c in rp.lobe_caveats(p, rp.NON_CORTICAL))


def test_a_failing_figure_is_reported_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    for name in ("cluster_figure", "glass_brain_figure", "qc_outline_figure"):
        monkeypatch.setattr(figures, name, boom)
    with pytest.raises(rp.ReportError) as info:
        rp.write_participant_report(tmp_path, make_inputs())
    page = tmp_path / "sub-01.html"
    assert page in info.value.written and page.is_file()
    assert "disk full" in page.read_text()
    lobes = rp.figure_paths(tmp_path, "01", None)["lobes"]
    assert lobes in info.value.written and lobes.is_file()


def test_overlay_colour_map_is_not_near_black() -> None:
    rgb = np.asarray(figures.overlay_cmap()(0.0))[:3]
    assert float(np.dot(rgb, (0.2126, 0.7152, 0.0722))) > 0.08  # luminance of the lowest colour


def test_the_methods_paragraph_describes_the_second_look_only_when_it_ran():
    from bids_fcd.reports.methods import REFERENCES, boilerplate

    args = ("phantom-default", None, 6.0, 150.0, {})
    off, cited_off = boilerplate({"encoding": "stochastic"}, *args)
    on, cited_on = boilerplate({"encoding": "stochastic", "second_look": "inpaint", "look_z": 3.0,
                                "look_noise_level": 700, "look_steps": 7, "look_draws": 2, "look_t1": "mirror"}, *args)
    assert "inpainting" not in off and "lugmayr2022" not in cited_off
    assert "z of 3.0" in on and "noise level 700 in 7 guided steps" in on and "mirror hemisphere" in on
    assert "lugmayr2022" in cited_on and REFERENCES["lugmayr2022"][0] in on
    assert "mirror image" not in off
    assert "averaged with its left-right mirror image" in boilerplate({"t1_condition": "symmetric"}, *args)[0]
