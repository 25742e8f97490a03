"""The one-page PDF: one A4 page, the participant's label and clusters in its text, same bytes for
the same input, linked from the participant and group pages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bids_fcd.reports import participant as rp
from bids_fcd.reports.group import write_group_report
from bids_fcd.reports.pdf import pdf_path, write_participant_pdf
from tests.reports.conftest import make_inputs


def _pages(pdf: Path) -> int:
    """Page objects in a PDF (matplotlib writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))


def _text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not found: install poppler-utils (scripts/install-test-tools.sh does) to read the PDF")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_pdf_path_uses_the_naming_function(tmp_path: Path) -> None:
    assert pdf_path(tmp_path, "07", "pre") == tmp_path / "sub-07/ses-pre/figures/sub-07_ses-pre_report.pdf"


@pytest.mark.parametrize("label", ["01", "02"])
def test_one_page_with_the_label(report_root: Path, label: str) -> None:
    pdf = pdf_path(report_root, label, None)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert _pages(pdf) == 1
    text = _text(pdf)
    assert f"sub-{label}" in text and "Methods" in text and "synthetic (phantom) data" in text
    if label == "01":
        assert "Cluster 1: L frontal" in text and "-28.5, 10.5, 28.0" in text
        _keep_picture(pdf, "patient-pdf")
    else:
        assert "No cluster" in text


def _keep_picture(pdf: Path, name: str) -> None:
    """``<name>.png`` of the page in $BIDS_FCD_SCREENSHOTS, when set and pdftoppm is installed."""
    keep = os.environ.get("BIDS_FCD_SCREENSHOTS")
    if keep and shutil.which("pdftoppm"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "80", "-png", "-singlefile", str(pdf), str(Path(keep) / name)], check=True)


def test_same_input_same_bytes(tmp_path: Path) -> None:
    data = make_inputs()
    rows = rp.table_rows(data, [True] * len(data.clusters))
    views = [("Cluster 1", (-30.0, 10.0, 30.0))]
    args = (data, rows, views, rp.summary_text(data, rows), rp.banner_text(data), rp.methods_text(data),
            rp.LOBE_NAMES)
    write_participant_pdf(tmp_path / "a.pdf", *args)
    write_participant_pdf(tmp_path / "b.pdf", *args)
    a = (tmp_path / "a.pdf").read_bytes()
    assert a == (tmp_path / "b.pdf").read_bytes()
    assert b"CreationDate" not in a


def test_pages_link_the_pdf(report_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "out"
    shutil.copytree(report_root, root)  # the group page goes to a copy: other tests check report_root's
    page = (root / "sub-01.html").read_text()
    assert "href='sub-01/figures/sub-01_report.pdf'" in page
    rows = [{"participant_id": "sub-01", "session": None, "n_clusters": 2},
            {"participant_id": "sub-09", "session": None, "n_clusters": 0}]
    out = write_group_report(root, rows, ("participant_id", "n_clusters"), [], None, None, 3.0)
    group = out.read_text()
    assert group.count("href='sub-01/figures/sub-01_report.pdf'") == 2  # thumbnail and table
    assert "sub-09_report.pdf" not in group  # never written, never linked


def test_a_failed_pdf_is_reported_and_the_page_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bids_fcd.reports import pdf

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pdf, "write_participant_pdf", broken)
    with pytest.raises(rp.ReportError, match="pdf") as err:
        rp.write_participant_report(tmp_path, make_inputs())
    page = rp.report_path(tmp_path, "01", None)
    assert page in err.value.written and not pdf_path(tmp_path, "01", None).exists()
    text = page.read_text()
    assert "disk full" in text and "id='report-pdf'" not in text


def test_three_clusters_and_a_long_table_fit_the_page(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = make_inputs(extra_blobs=((20.0, -62.0, -40.0), (40.0, -20.0, -10.0)))
    rows = rp.table_rows(data, [True] * len(data.clusters)) * 4  # 12 rows: 8 printed, the rest counted
    views = [(f"Cluster {i + 1}", p) for i, p in enumerate(rp.cluster_peaks(data.labels, data.z, data.affine, 3))]
    assert len(views) == 3
    out = tmp_path / "long.pdf"
    with caplog.at_level("WARNING"):
        write_participant_pdf(out, data, rows, views, rp.summary_text(data, rows), rp.banner_text(data),
                              rp.methods_text(data), rp.LOBE_NAMES)
    assert "crowded" not in caplog.text
    assert _pages(out) == 1
    text = _text(out)
    assert f"and {len(rows) - 8} more cluster(s)" in text and "Methods" in text
