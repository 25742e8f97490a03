"""The output writers' registry view: the stored file list and the group level's reads come from it."""

from pathlib import Path

from bids_fcd.bids import derivatives as d
from bids_fcd.workflows.group import READS, participant_files
from bids_fcd.workflows.outputs import run_files

STORED = Path(__file__).parent.parent / "data" / "expected_outputs.txt"


def test_the_stored_file_list_is_the_registry():
    got = run_files([("00001", None), ("00002", None), ("00003", None)], "RES")
    assert STORED.read_text().split() == got, "run `python scripts/expected-outputs.py` after changing the registry"


def test_group_level_reads_registered_outputs(tmp_path):
    assert set(READS.values()) <= set(d.OUTPUTS)
    files = participant_files(tmp_path, "01", None)  # no run record: no res- entity guessed
    assert files["z"] == d.output_path(tmp_path, "01", None, "z_statmap")
    log = d.output_path(tmp_path, "01", None, "config")
    log.parent.mkdir(parents=True)
    log.write_text('{"model": {"net": {"grid": {"spacing_mm": 2.0}}}}')
    files = participant_files(tmp_path, "01", None)
    assert files["z"].name == "sub-01_space-MNI152NLin2009aSym_res-2_stat-z_desc-anomaly_statmap.nii.gz"
    assert files["table"].name == "sub-01_space-MNI152NLin2009aSym_desc-clusters_table.tsv"
