"""The README's demo on the shipped default model: every output for every participant."""

import json
from pathlib import Path

import bids

from bids_fcd.cli.main import main

EXPECTED = Path(__file__).parent.parent / "data" / "expected_outputs.txt"


def test_demo_on_the_shipped_model(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", str(out)]) == 0
    derivs = out / "derivatives"
    got = sorted(p.relative_to(derivs).as_posix() for p in derivs.rglob("*") if p.is_file())
    assert [f for f in got if not f.startswith("group_summary")] == EXPECTED.read_text().split()
    assert {"group_summary.tsv", "group_summary.json"} <= set(got)
    for f in derivs.rglob("*.json"):
        json.loads(f.read_text())
    side = json.loads(next(derivs.rglob("*_desc-pseudohealthy_FLAIR.json")).read_text())
    assert side["Model"]["Name"] == "phantom-default"
    layout = bids.BIDSLayout(str(derivs), validate=False, is_derivative=True)
    assert len(layout.get_subjects()) == 3
    assert not any((out / "bids").rglob("*desc-*")), "nothing written into the input dataset"
