import pytest

from bids_fcd.cli.main import main
from bids_fcd.cli.parser import build_app_parser, build_subcommand_parser

APP_FLAGS = ["--participant-label", "--session-label", "--work-dir", "--model", "--device", "--noise-level", "--steps",
             "--guidance-scale", "--seed", "--nprocs", "--skip-bids-validation", "--bids-filter-file", "--version"]


def test_help_documents_every_option_with_defaults():
    text = build_app_parser().format_help()
    for flag in APP_FLAGS:
        assert flag in text
    assert "(default: 100)" in text  # noise level
    assert "participant" in text and "group" in text


def test_labels_strip_prefix_and_aliases(tmp_path):
    args = build_app_parser().parse_args([str(tmp_path), str(tmp_path / "o"), "participant", "--participant_label",
                                          "sub-01", "02", "--session-label", "ses-a"])
    assert args.participant_label == ["01", "02"] and args.session_label == ["a"]


def test_subcommands_parse():
    p = build_subcommand_parser()
    a = p.parse_args(["phantom", "x", "--n-fcd", "3", "--n-hc", "1", "--seed", "4", "--size", "full"])
    assert (a.n_fcd, a.n_hc, a.seed, a.size) == (3, 1, 4, "full")


def test_output_inside_input_is_refused(tmp_path, capsys):
    (tmp_path / "dataset_description.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path / "derivatives"), "participant"])
    assert exc.value.code == 2
    assert "is inside the input BIDS dataset" in capsys.readouterr().err


def test_bad_steps_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path.parent / "o"), "participant", "--noise-level", "100", "--steps", "30"])
    assert exc.value.code == 2
    assert "must divide" in capsys.readouterr().err
