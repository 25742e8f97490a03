"""Arguments and labels are checked before any heavy import, model load or write."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bids_fcd.cli.main import main


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    (ds / "sub-01" / "anat").mkdir(parents=True)
    (ds / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    return ds


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = ("import sys\nfrom bids_fcd.cli.main import main\ntry:\n    rc = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    rc = exc.code\n"
            "print('HEAVY', [m for m in ('torch', 'ants', 'bids', 'monai') if m in sys.modules])\nsys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_unknown_label_fails_fast_without_writing(dataset, tmp_path):
    out = tmp_path / "out"
    res = _run([str(dataset), str(out), "participant", "--participant-label", "02"])
    assert res.returncode == 2
    assert "sub-02 not found in" in res.stderr and "sub-01" in res.stderr and "--participant-label" in res.stderr
    assert "HEAVY []" in res.stdout, "validation must not import torch, ANTs, pybids or MONAI"
    assert not out.exists() and not (tmp_path / "bids-fcd-work").exists(), "nothing written before validation"


@pytest.mark.parametrize("label", ["../x", "sub-0 1", "a/b"])
def test_labels_with_path_characters_are_refused(dataset, tmp_path, label, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(dataset), str(tmp_path / "out"), "participant", "--participant-label", label])
    assert exc.value.code == 2 and "must be alphanumeric" in capsys.readouterr().err


def test_a_directory_that_is_not_bids(tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(SystemExit):
        main([str(plain), str(tmp_path / "out"), "participant"])
    assert "no dataset_description.json" in capsys.readouterr().err


def test_an_output_that_cannot_be_written(dataset, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        main([str(dataset), str(blocker / "out"), "participant"])
    err = capsys.readouterr().err
    assert "output directory" in err and "is not a directory" in err


def test_output_inside_input_is_refused(dataset, capsys):
    with pytest.raises(SystemExit):
        main([str(dataset), str(dataset / "derivatives" / "x"), "participant", "--work-dir", "/tmp/w"])
    assert "inside the input BIDS dataset" in capsys.readouterr().err


def test_a_missing_model_is_named(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(dataset), str(tmp_path / "out"), "participant", "--model", str(tmp_path / "nomodel")])
    assert "nomodel" in capsys.readouterr().err
