"""Arguments become frozen configs: one list of choices per setting, environment read once, JSON beside the outputs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest

from bids_fcd import commands, config
from bids_fcd.cli import configs
from bids_fcd.cli.main import main
from bids_fcd.cli.parser import build_app_parser, build_subcommand_parser
from bids_fcd.config import Environment, PostConfig, RunConfig, SamplerConfig, from_dict, to_dict
from bids_fcd.phantom import generator
from bids_fcd.training.presets import PRESETS

PACKAGE = Path(config.__file__).resolve().parent


def _choices(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for action in parser._actions:  # untyped: the parser's own table is what is checked
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update({f"{name}.{k}": v for k, v in _choices(sub).items()})
        elif action.choices is not None:
            out[action.dest] = tuple(action.choices)
    return out


def test_parser_choices_are_the_configs_literals():
    app = _choices(build_app_parser())
    assert app["encoding"] == config.ENCODINGS == ("patched", "stochastic", "deterministic")
    assert app["device"] == config.DEVICES and app["slices"] == config.SLICES and app["t1_hiding"] == config.T1_HIDING
    assert app["anomaly"] == config.ANOMALIES and app["zscore"] == config.ZSCORES
    assert app["second_look"] == config.SECOND_LOOKS and app["look_t1"] == config.LOOK_T1
    assert app["t1_condition"] == config.T1_CONDITIONS
    assert app["registration"] == config.REGISTRATIONS and app["analysis_level"] == config.ANALYSIS_LEVELS
    sub = _choices(build_subcommand_parser())
    assert sub["train.preset"] == commands.TRAIN_PRESETS == tuple(PRESETS)
    assert sub["phantom.size"] == commands.PHANTOM_SIZES == tuple(generator.SIZE_CHOICES)
    assert sub["phantom.lesions"] == sub["benchmark.lesions"] == commands.LESION_DRAWS == tuple(generator.LESION_DRAWS)
    assert sub["phantom.lesion_profile"] == commands.LESION_PROFILES == tuple(generator.PROFILE_CHOICES)
    assert sub["train.device"] == sub["reference.device"] == sub["benchmark.device"] == config.DEVICES


@pytest.mark.parametrize(("build", "flag"), [
    (lambda: SamplerConfig(encoding="ddim"), "--encoding"),  # type: ignore[arg-type]
    (lambda: PostConfig(zscore="global"), "--zscore"),  # type: ignore[arg-type]
    (lambda: RunConfig("b", "o", "participant", device="gpu"), "--device"),  # type: ignore[arg-type]
    (lambda: commands.PhantomConfig("o", size="huge"), "--size"),  # type: ignore[arg-type]
    (lambda: commands.TrainRunConfig("b", "m", preset="big"), "--preset"),  # type: ignore[arg-type]
    (lambda: commands.BenchmarkConfig("o", n_reference=-1), "--n-reference"),
])
def test_configs_refuse_unknown_values_and_say_how_to_fix(build, flag):
    with pytest.raises(ValueError, match=re.escape(flag)):
        build()


def test_environment_is_read_once_into_the_config():
    env = Environment.from_environ({"BIDS_FCD_WORK_DIR": "/w", "BIDS_FCD_MODELS": "/m", "BIDS_FCD_COMPILE": "1",
                                    "BIDS_FCD_CONTAINER": "docker", "BIDS_FCD_IMAGE": "bids-fcd:x"})
    assert env == Environment(work_dir="/w", models_dir="/m", compile_nets=True, container="docker", image="bids-fcd:x")
    assert Environment.from_environ({"BIDS_FCD_COMPILE": "0", "BIDS_FCD_WORK_DIR": ""}) == Environment()
    args = build_app_parser().parse_args(["/", "/o", "participant"])
    cfg = configs.app_config(args, env)
    assert to_dict(cfg)["env"]["compile_nets"] is True, "BIDS_FCD_COMPILE is recorded in the run's config"
    assert from_dict(RunConfig, to_dict(cfg)) == cfg


def test_no_library_module_reads_a_bids_fcd_variable():
    readers = re.compile(r"os\.environ(\.get)?[\[(]\s*[\"']BIDS_FCD_|getenv\(\s*[\"']BIDS_FCD_")
    found = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if readers.search(p.read_text())]
    assert found == [], f"read the environment once, in bids_fcd.config.Environment.from_environ: {found}"


def test_every_subcommand_has_a_config_that_round_trips():
    sub = build_subcommand_parser()
    env = Environment(work_dir="/w")
    built = [
        configs.phantom_config(sub.parse_args(["phantom", "/p", "--size", "full"])),
        configs.train_run_config(sub.parse_args(["train", "/", "/m", "--preset", "tiny"]), env),
        configs.reference_config(sub.parse_args(["reference", "/", "/r", "--steps", "5", "--noise-level", "20"]), env),
        configs.demo_config(sub.parse_args(["demo", "/d"]), env),
        configs.benchmark_config(sub.parse_args(["benchmark", "/o", "--ablations"]), env),
    ]
    for cfg in built:
        assert dataclasses.is_dataclass(cfg)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.out = "x"  # type: ignore[misc, union-attr]
        assert from_dict(type(cfg), json.loads(json.dumps(to_dict(cfg)))) == cfg
    assert built[2].sampler.steps == 5 and built[4].ablations and built[1].env.work_dir == "/w"


def test_phantom_writes_its_config_in_code(tmp_path: Path):
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "--n-fcd", "1", "--n-hc", "0", "--seed", "5"]) == 0
    run = json.loads((out / "code" / "phantom_config.json").read_text())["run"]
    assert run == to_dict(commands.PhantomConfig(str(out), n_fcd=1, n_hc=0, seed=5))


def test_a_trained_model_records_its_command(tiny_model: Path):
    run = json.loads((tiny_model / "train_config.json").read_text())["run"]
    assert run["preset"] == "tiny" and run["participant_label"] == ["00001", "00002", "00003"] and "env" in run


def test_second_look_flags_reach_the_sampler():
    from bids_fcd.cli.configs import app_config

    args = build_app_parser().parse_args(["/", "/o", "participant", "--second-look", "inpaint", "--look-z", "2.5",
                                          "--look-t1", "blur"])
    cfg = app_config(args, Environment())
    assert (cfg.sampler.second_look, cfg.sampler.look_z, cfg.sampler.look_t1) == ("inpaint", 2.5, "blur")
    sym = app_config(build_app_parser().parse_args(["/", "/o", "participant", "--t1-condition", "symmetric"]),
                     Environment())
    assert sym.sampler.t1_condition == "symmetric"
    assert app_config(build_app_parser().parse_args(["/", "/o", "participant"]), Environment()).sampler.second_look \
        == "off"
