"""Packaging consistency, fast and without Docker (issue #12).

Keeps the Dockerfile, the Boutiques descriptor, setup.cfg/pyproject.toml, requirements.lock, the CI
workflows and ``bids-fcd --version`` consistent with the package, and lints scripts/docker-smoke.sh.
The image itself is built and run by ``sudo bash scripts/docker-smoke.sh`` (needs root and minutes).
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bids_fcd
from bids_fcd.cli.parser import build_app_parser

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SMOKE = ROOT / "scripts" / "docker-smoke.sh"
DESCRIPTOR = ROOT / "bids-fcd.boutiques.json"
WORKFLOWS = ROOT / ".github" / "workflows"
ENTRY_NAME = "bids-fcd"
ENTRY_TARGET = "bids_fcd.cli.main:main"
#: What only the builder stage may see (a CA bundle, a pip index, the optional build-context folder).
BUILD_ONLY = ("PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "build-extra", ".docker-extra", "ca.pem", "cert")


# --------------------------------------------------------------------------- Dockerfile parsing
def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions(DOCKERFILE.read_text()):
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _args(stage: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for word, rest in stage:
        if word == "ARG":
            name, _, default = rest.partition("=")
            out[name.strip()] = default.strip().strip('"')
    return out


def _kv_pairs(rest: str) -> dict[str, str]:
    """KEY=VALUE pairs of a LABEL or ENV instruction (values optionally double-quoted)."""
    return {k: v.strip('"') for k, v in re.findall(r'([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|\S+)', rest)}


def _final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _stages()[-1]:
        if word == "ENV":
            env.update(_kv_pairs(rest))
    return env


def _final_labels() -> dict[str, str]:
    labels: dict[str, str] = {}
    for word, rest in _stages()[-1]:
        if word == "LABEL":
            labels.update(_kv_pairs(rest))
    return labels


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_dockerfile_is_multistage_on_bookworm_slim() -> None:
    stages = _stages()
    assert len(stages) >= 2, "Dockerfile must be multi-stage (a builder and a final stage)"
    for stage in stages:
        assert stage[0][1].split()[0] == "debian:bookworm-slim", f"every stage starts FROM debian:bookworm-slim: {stage[0]}"
    assert " AS " in stages[0][0][1].upper(), "the builder stage is named (FROM ... AS builder)"
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.M), "no BuildKit syntax line: the classic builder must work"
    assert "--mount" not in text and "--secret" not in text, "no BuildKit-only RUN options"


def test_dockerfile_torch_flavor() -> None:
    builder = _stages()[0]
    args = _args(builder)
    assert args.get("TORCH_FLAVOR") == "cuda", "ARG TORCH_FLAVOR defaults to cuda (the image for --gpus all)"
    runs = " ".join(rest for word, rest in builder if word == "RUN")
    assert re.search(r"\bcuda\)", runs) and re.search(r"\bcpu\)", runs), "both TORCH_FLAVOR values are handled"
    assert "requirements.lock" in runs, "the builder installs from requirements.lock"
    assert args.get("TORCH_VERSION") == _locked_torch_version()


def _locked_torch_version() -> str:
    text = (ROOT / "scripts" / "install.sh").read_text()
    m = re.search(r"torch==([0-9][^\s\"']*)", text)
    assert m, "scripts/install.sh pins torch"
    return m.group(1)


def test_dockerfile_final_stage_user_entrypoint_labels() -> None:
    final = _stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in ("0", "root"), "the image runs as a non-root user"
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == [ENTRY_NAME], 'ENTRYPOINT ["bids-fcd"] in exec form'
    labels = _final_labels()
    version = labels.get("org.opencontainers.image.version", "")
    version = version.replace("${VERSION}", _args(final).get("VERSION", "")).replace("$VERSION", _args(final).get("VERSION", ""))
    assert version == bids_fcd.__version__, "OCI version label (ARG VERSION) equals bids_fcd.__version__"
    meta = _setup_cfg()["metadata"]
    assert labels.get("org.opencontainers.image.licenses") == meta["license"]
    assert labels.get("org.opencontainers.image.source") == meta["url"] == bids_fcd.CODE_URL


def test_dockerfile_final_stage_has_no_build_secrets() -> None:
    final = _stages()[-1]
    for word, rest in final:
        if word in ("ARG", "ENV", "LABEL"):
            for bad in BUILD_ONLY:
                assert bad.lower() not in rest.lower(), f"{word} {rest!r} in the final stage mentions {bad}"
        if word in ("COPY", "ADD"):
            assert rest.startswith("--from="), f"the final stage copies only from the builder, not the context: {rest}"
    threads = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"}
    for stage in _stages():
        for word, rest in stage:
            if word in ("ENV", "ARG"):
                assert not threads & set(_kv_pairs(rest)) and rest.split("=")[0] not in threads, (
                    f"{word} {rest!r}: no thread count in the image; the app follows the container's CPU quota"
                )


def test_dockerfile_runtime_paths_writable_under_read_only_root() -> None:
    env = _final_env()
    for key in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR", "NILEARN_DATA"):
        assert env.get(key, "").startswith("/tmp"), f"{key} lies under /tmp so --read-only --tmpfs /tmp works"
    assert env.get("BIDS_FCD_MODELS"), "the image points BIDS_FCD_MODELS at the folder for mounted models"


def test_dockerfile_carries_the_model_once() -> None:
    text = (ROOT / "Dockerfile").read_text()
    copies = [line for line in text.splitlines() if line.startswith("COPY") and "models" in line]
    assert not copies, f"the model is package data (installed with bids_fcd); no second copy: {copies}"
    assert "sha256sum -c SHA256SUMS" in text, "the build checks the installed model's checksums"


def test_dockerignore_keeps_context_small_but_complete() -> None:
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    for must in (".git", ".venv", "bids_fcd/models/*/checkpoint.pt"):
        assert must in lines
    for needed in ("bids_fcd", "bids_fcd/models", "README.md", "setup.cfg", "requirements.lock", ".docker-extra"):
        assert needed not in lines, f"{needed} is needed by the Dockerfile"


# --------------------------------------------------------------------------- smoke script
def test_smoke_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SMOKE)], check=True)
    text = SMOKE.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    for needed in (
        "--read-only",
        "--tmpfs /tmp",
        "--network none",
        "--user",
        ":ro",
        "expected_outputs.txt",
        "docker history --no-trunc",
        "sha256sum",
        "--gpus all",
    ):
        assert needed in text, f"docker-smoke.sh lacks {needed}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_smoke_script_shellcheck() -> None:
    res = subprocess.run(["shellcheck", "-S", "warning", str(SMOKE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _machine_specific_values() -> set[str]:
    """This machine's apt mirrors, pip CA bundle and indexes: none may be written into the repository."""
    vals: set[str] = set()
    for src in Path("/etc/apt").glob("sources.list*"):
        for f in [src] if src.is_file() else sorted(src.glob("*")):
            if f.is_file():
                vals.update(re.findall(r"[a-z]+://[^\s\]]+", f.read_text(errors="replace")))
    try:
        res = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
        for line in res.stdout.splitlines():
            key, _, val = line.partition("=")
            if key.rsplit(".", 1)[-1] in ("cert", "index-url", "extra-index-url", "find-links", "trusted-host"):
                vals.update(val.strip("'\"").split())
    except (OSError, subprocess.SubprocessError):
        pass
    # Public, documented defaults are fine to name.
    public = ("https://pypi.org/simple", "https://download.pytorch.org/whl/cpu")
    return {v.rstrip("/") for v in vals if v and v.rstrip("/") not in public}


def test_no_machine_specific_hosts_or_paths_in_packaging_files() -> None:
    values = _machine_specific_values()
    files = [DOCKERFILE, SMOKE, DESCRIPTOR, ROOT / ".dockerignore", ROOT / "docs" / "containers.md", *WORKFLOWS.glob("*.yml")]
    for f in files:
        if not f.exists():
            continue
        text = f.read_text()
        for v in values:
            assert v not in text, f"{f.name} names this machine's {v!r}; read it at run time instead"


# --------------------------------------------------------------------------- entry point and version
def test_entry_point_and_version_consistent() -> None:
    cfg = _setup_cfg()
    scripts = [ln.strip() for ln in cfg["options.entry_points"]["console_scripts"].splitlines() if ln.strip()]
    assert f"{ENTRY_NAME} = {ENTRY_TARGET}" in scripts
    assert cfg["metadata"]["version"].strip() == "attr: bids_fcd.__version__"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject.get("project", {})
    if "scripts" in project:
        assert project["scripts"].get(ENTRY_NAME) == ENTRY_TARGET
    if "version" in project:
        assert project["version"] == bids_fcd.__version__
    desc = json.loads(DESCRIPTOR.read_text())
    assert desc["name"] == ENTRY_NAME
    assert desc["command-line"].split()[0] == ENTRY_NAME
    assert desc["tool-version"] == bids_fcd.__version__
    assert desc["container-image"]["image"] == f"bids-fcd:{bids_fcd.__version__}"


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_app_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"{ENTRY_NAME} {bids_fcd.__version__}"
    exe = Path(sys.executable).with_name(ENTRY_NAME)
    if exe.exists():  # the installed console script (the image's ENTRYPOINT) says the same
        res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and res.stdout.strip() == f"{ENTRY_NAME} {bids_fcd.__version__}"


# --------------------------------------------------------------------------- Boutiques descriptor
def _parser_actions() -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction)
    return [a for a in build_app_parser()._actions if not isinstance(a, skip)]


def _descriptor_inputs() -> dict[str, dict]:
    return {i["id"]: i for i in json.loads(DESCRIPTOR.read_text())["inputs"]}


def test_descriptor_matches_app_parser() -> None:
    """Every BIDS-App argument of build_app_parser() is in the descriptor and vice versa, alike."""
    actions = {a.dest: a for a in _parser_actions()}
    inputs = _descriptor_inputs()
    assert set(inputs) == set(actions), (
        f"only in the parser: {sorted(set(actions) - set(inputs))}; only in the descriptor: {sorted(set(inputs) - set(actions))}"
    )
    cmd = json.loads(DESCRIPTOR.read_text())["command-line"].split()
    positional = [a.dest for a in actions.values() if not a.option_strings]
    assert [k.strip("[]").lower() for k in cmd[1 : 1 + len(positional)]] == positional, "positional order as the parser's"
    for dest, a in actions.items():
        i = inputs[dest]
        assert i["value-key"] in cmd, f"{dest}: value-key missing from command-line"
        if a.option_strings:
            assert i.get("command-line-flag") in a.option_strings, f"{dest}: flag {i.get('command-line-flag')}"
            assert i.get("optional") is True
        else:
            assert "command-line-flag" not in i and i.get("optional") is False
        is_flag = isinstance(a, (argparse._StoreTrueAction, argparse._CountAction))
        assert (i["type"] == "Flag") == is_flag, f"{dest}: Flag type"
        assert bool(i.get("list")) == (a.nargs in ("+", "*")), f"{dest}: list"
        assert list(i.get("value-choices") or []) == list(a.choices or []), f"{dest}: choices"
        if "default-value" in i:
            assert i["default-value"] == a.default, f"{dest}: default {i['default-value']!r} != parser's {a.default!r}"
        tname = getattr(a.type, "__name__", "")
        if tname in ("int", "positive_int", "float", "non_negative_float"):
            assert i["type"] == "Number" and bool(i.get("integer")) == tname.endswith("int"), f"{dest}: number type"


def test_descriptor_validates_with_boutiques(tmp_path: Path) -> None:
    """bosh validate, then simulate both levels and parse the commands with the app's own parser."""
    boutiques = pytest.importorskip("boutiques", reason="boutiques not installed (pip install boutiques)")
    boutiques.bosh(["validate", str(DESCRIPTOR)])  # raises on an invalid descriptor
    data = tmp_path / "bids"
    data.mkdir()
    for level, extra in (
        (
            "participant",
            {"participant_label": ["00001", "00002"], "work_dir": "/work", "overwrite": True, "sampler_preset": "paper"},
        ),
        ("group", {"verbose": True}),
    ):
        inv = tmp_path / f"{level}.json"
        inv.write_text(json.dumps({"bids_dir": str(data), "output_dir": str(tmp_path / "out"), "analysis_level": level, **extra}))
        out = boutiques.bosh(["exec", "simulate", str(DESCRIPTOR), "-i", str(inv)])
        argv = out.shell_command.split()
        assert argv[0] == ENTRY_NAME
        args = build_app_parser().parse_args(argv[1:])
        assert args.analysis_level == level
        for k, v in extra.items():
            assert getattr(args, k) == (1 if v is True and k == "verbose" else v)


# --------------------------------------------------------------------------- requirements.lock
def test_lock_marks_only_test_tools() -> None:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, _, comment = line.partition("#")
        name, sep, ver = spec.strip().partition("==")
        assert sep and ver, f"requirements.lock: {line!r} is not an exact pin"
        pins[name.lower().replace("_", "-")] = comment.strip()
    for tool in ("pytest", "ruff", "mypy", "boutiques"):
        assert pins.get(tool) == "test", f"{tool} is pinned and marked '# test' (kept out of the image)"
    reqs = _setup_cfg()["options"]["install_requires"]
    for req in filter(None, (r.strip() for r in reqs.splitlines())):
        name = re.split(r"[<>=!~ ;\[]", req)[0].lower().replace("_", "-")
        if name == "torch":
            assert "torch" not in pins, "torch is installed by flavour, not from requirements.lock"
            continue
        assert name in pins, f"runtime dependency {name} is pinned in requirements.lock"
        assert pins[name] != "test", f"runtime dependency {name} must not be marked '# test'"


# --------------------------------------------------------------------------- workflows and docs
def test_workflows_pin_actions_and_read_only_permissions() -> None:
    yaml = pytest.importorskip("yaml")
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "release.yml"}
    for f in files:
        wf = yaml.safe_load(f.read_text())
        assert wf.get("permissions") == {"contents": "read"}, f"{f.name}: permissions: contents: read"
        for job in wf["jobs"].values():
            assert "permissions" not in job or job["permissions"] == {"contents": "read"}
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), (
                        f"{f.name}: {step['uses']} is not pinned by a full commit SHA"
                    )
    ci = (WORKFLOWS / "ci.yml").read_text()
    assert "bash .ci/run" in ci
    assert "docker-smoke.sh" in (WORKFLOWS / "release.yml").read_text()


def test_container_docs_cover_hpc_use() -> None:
    text = (ROOT / "docs" / "containers.md").read_text()
    for needed in (
        "apptainer build bids-fcd.sif docker-daemon://bids-fcd:",
        "--nv",
        "--containall",
        "--bind",
        "#SBATCH --array",
        "--dependency=afterok",
        "--work-dir",
        "--overwrite",
        "--model",
        "/opt/bids-fcd/models",
        "TORCH_FLAVOR=cpu",
        "--read-only",
    ):
        assert needed in text, f"docs/containers.md lacks {needed}"
    assert _final_env().get("BIDS_FCD_MODELS") == "/opt/bids-fcd/models"
