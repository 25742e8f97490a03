"""The README's demo on the shipped default model: every output for every participant."""

import json
from pathlib import Path

import bids
import nibabel as nib
import numpy as np

from bids_fcd.bids.derivatives import res_label
from bids_fcd.cli.main import main
from bids_fcd.nets.locate import resolve_model
from tests.workflows.conftest import GROUP_FILES, expected_outputs


def shipped_res() -> str:
    """The ``res-`` label of the shipped model's grid (``1p5`` for the 1.5 mm default)."""
    grid = json.loads((resolve_model("phantom-default") / "config.json").read_text())["net"]["grid"]
    return str(res_label(grid["spacing_mm"]))


def test_demo_on_the_shipped_model(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", str(out)]) == 0
    derivs = out / "derivatives"
    got = sorted(p.relative_to(derivs).as_posix() for p in derivs.rglob("*") if p.is_file())
    assert [f for f in got if not f.startswith("group")] == expected_outputs(shipped_res())
    assert set(GROUP_FILES) <= set(got)
    for f in derivs.rglob("*.json"):
        json.loads(f.read_text())
    side = json.loads(next(derivs.rglob("*_desc-pseudohealthy_FLAIR.json")).read_text())
    assert side["Model"]["Name"] == "phantom-default"
    layout = bids.BIDSLayout(str(derivs), validate=False, is_derivative=True)
    assert len(layout.get_subjects()) == 3
    assert not any((out / "bids").rglob("*desc-*")), "nothing written into the input dataset"
    ratios = lesion_residual_ratios(out, derivs)
    assert len(ratios) == 2
    assert np.mean(list(ratios.values())) > 1.0, f"lesion residual / residual elsewhere = {ratios}: the lesion is reconstructed"
    # the paper's deterministic encoding on the same inputs (preprocessing cached) reconstructs the lesion; one
    # participant keeps the suite's time down at the 1.5 mm grid
    first = sorted(ratios)[0]
    paper = out / "paper"
    assert main([str(out / "bids"), str(paper), "participant", "--work-dir", str(out / "work"),
                 "--sampler-preset", "paper", "--participant-label", first[4:]]) == 0
    paper_ratios = lesion_residual_ratios(out, paper)
    assert list(paper_ratios) == [first]
    assert ratios[first] > paper_ratios[first] + 0.3, (ratios, paper_ratios)


def _grid(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).get_fdata(), np.float32)


def lesion_residual_ratios(out: Path, derivs: Path) -> dict[str, float]:
    """Per FCD participant with outputs in ``derivs`` (``sub-<label>``): mean (FLAIR − pseudo-healthy) inside the
    lesion ÷ mean |FLAIR − pseudo-healthy| in the rest of the brain. Catches lesion reconstruction: where the
    pseudo-healthy FLAIR keeps the lesion the ratio falls towards 1 or below."""
    ratios, res = {}, shipped_res()
    for roi_path in sorted((out / "work").rglob("roi_grid.nii.gz")):
        roi = _grid(roi_path) > 0.5
        prefix = roi_path.parents[1].name
        anat = derivs / prefix / "anat"
        if not anat.is_dir():
            continue
        grid = f"{prefix}_space-MNI152NLin2009aSym_res-{res}"
        real = _grid(anat / f"{grid}_desc-preproc_FLAIR.nii.gz")
        pseudo = _grid(anat / f"{grid}_desc-pseudohealthy_FLAIR.nii.gz")
        brain = _grid(anat / f"{grid}_desc-brain_mask.nii.gz") > 0.5
        resid = real - pseudo
        ratios[prefix] = float(resid[roi & brain].mean()) / float(np.abs(resid[brain & ~roi]).mean())
    return ratios
