import pytest
import torch

from bids_fcd.cli.configs import post_from_args, sampler_from_args
from bids_fcd.cli.main import main
from bids_fcd.cli.parser import build_app_parser, build_subcommand_parser
from bids_fcd.config import SAMPLER_PRESETS, PostConfig, SamplerConfig
from bids_fcd.nets.checkpoint import load_model
from bids_fcd.training.presets import PRESETS

APP_FLAGS = ["--participant-label", "--session-label", "--work-dir", "--model", "--device", "--noise-level", "--steps",
             "--guidance-scale", "--seed", "--nprocs", "--skip-bids-validation", "--bids-filter-file", "--version",
             "--sampler-preset", "--encoding", "--draws", "--reference", "--anomaly", "--zscore", "--registration"]


def test_help_documents_every_option_with_defaults():
    text = build_app_parser().format_help()
    for flag in APP_FLAGS:
        assert flag in text
    assert "(default: 300)" in text  # noise level (resolved in sampler_from_args)
    assert "(default: stochastic)" in text
    assert "participant" in text and "group" in text


def test_labels_strip_prefix_and_aliases(tmp_path):
    args = build_app_parser().parse_args([str(tmp_path), str(tmp_path / "o"), "participant", "--participant_label",
                                          "sub-01", "02", "--session-label", "ses-a"])
    assert args.participant_label == ["01", "02"] and args.session_label == ["a"]


def test_subcommands_parse():
    p = build_subcommand_parser()
    a = p.parse_args(["phantom", "x", "--n-fcd", "3", "--n-hc", "1", "--seed", "4", "--size", "full"])
    assert (a.n_fcd, a.n_hc, a.seed, a.size) == (3, 1, 4, "full")


def test_train_defaults_to_the_shipped_models_preset(tmp_path):
    a = build_subcommand_parser().parse_args(["train", str(tmp_path), str(tmp_path / "model")])
    shipped = load_model(None, torch.device("cpu"))
    assert a.preset == shipped.meta["train_config"]["preset"] == "fine"
    assert shipped.net == PRESETS[a.preset].net


def test_sampler_defaults_preset_and_explicit_flags(tmp_path):
    p = build_app_parser()
    base = [str(tmp_path), str(tmp_path / "o"), "participant"]
    a = p.parse_args(base)
    assert not any(hasattr(a, k) for k in ("noise_level", "steps", "draws", "encoding", "sampler_preset"))
    assert sampler_from_args(a) == SamplerConfig()
    assert (SamplerConfig().encoding, SamplerConfig().noise_level, SamplerConfig().steps,
            SamplerConfig().draws) == ("stochastic", 300, 3, 4)
    assert {k: getattr(SamplerConfig(), k) for k in SAMPLER_PRESETS["fast"]} == SAMPLER_PRESETS["fast"]
    patched = sampler_from_args(p.parse_args(base + ["--sampler-preset", "patched"]))
    assert (patched.encoding, patched.noise_level, patched.guidance_scale) == ("patched", 999, 0.0)
    paper = sampler_from_args(p.parse_args(base + ["--sampler-preset", "paper"]))
    assert (paper.encoding, paper.noise_level, paper.steps, paper.draws) == ("deterministic", 100, 10, 1)
    fast = sampler_from_args(p.parse_args(base + ["--sampler-preset", "fast"]))
    assert {k: getattr(fast, k) for k in SAMPLER_PRESETS["fast"]} == SAMPLER_PRESETS["fast"]
    # explicit flags override the preset; the rest of the preset stays
    over = sampler_from_args(p.parse_args(base + ["--sampler-preset", "paper", "--steps", "20", "--draws", "3"]))
    assert (over.encoding, over.noise_level, over.steps, over.draws) == ("deterministic", 100, 20, 3)
    flags = sampler_from_args(p.parse_args(base + ["--encoding", "deterministic", "--noise-level", "20", "--steps",
                                                   "5", "--guidance-scale", "5", "--seed", "3",
                                                   "--no-histogram-matching"]))
    assert (flags.encoding, flags.noise_level, flags.steps, flags.draws) == ("deterministic", 20, 5, SamplerConfig().draws)
    assert (flags.guidance_scale, flags.seed, flags.histogram_matching) == (5.0, 3, False)


def test_post_flags(tmp_path):
    p = build_app_parser()
    base = [str(tmp_path), str(tmp_path / "o"), "participant"]
    assert post_from_args(p.parse_args(base)) is None
    post = post_from_args(p.parse_args(base + ["--zscore", "within", "--anomaly", "absolute"]))
    assert post == PostConfig(zscore="within", anomaly="absolute")
    assert post_from_args(p.parse_args(base + ["--z-threshold", "3"])) == PostConfig(z_threshold=3.0)
    assert PostConfig().anomaly == "signed" and PostConfig().zscore == "normative"


def test_reference_and_benchmark_subcommands_parse(tmp_path):
    p = build_subcommand_parser()
    a = p.parse_args(["reference", str(tmp_path), str(tmp_path / "ref"), "--participant-label", "sub-01", "02",
                      "--draws", "1", "--max-fp-per-control", "0.25"])
    assert (a.command, a.participant_label, a.draws, a.max_fp_per_control) == ("reference", ["01", "02"], 1, 0.25)
    b = p.parse_args(["benchmark", str(tmp_path)])
    assert (b.size, b.n_reference, b.reference_bids, b.ablations, b.max_fp_per_control) == ("mixed", 40, None,
                                                                                           False, 0.25)


def test_output_inside_input_is_refused(tmp_path, capsys):
    (tmp_path / "dataset_description.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path / "derivatives"), "participant"])
    assert exc.value.code == 2
    assert "is inside the input BIDS dataset" in capsys.readouterr().err


def test_bad_steps_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path.parent / "o"), "participant", "--encoding", "stochastic", "--noise-level",
              "100", "--steps", "30"])
    assert exc.value.code == 2
    assert "must divide" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path.parent / "o"), "participant", "--encoding", "patched", "--patch-core", "8",
              "--patch-margin", "8"])
    assert exc.value.code == 2
    assert "must be below --patch-core" in capsys.readouterr().err
    # also when only one of the two is given and the other comes from the preset
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), str(tmp_path.parent / "o"), "participant", "--sampler-preset", "paper", "--steps", "30"])
    assert exc.value.code == 2
    assert "must divide" in capsys.readouterr().err
