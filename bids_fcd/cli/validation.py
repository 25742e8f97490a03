"""Single-argument ``type=`` converters and the cross-argument validation step."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bids_fcd.config import RunConfig


def add_flag(parser: argparse.ArgumentParser, name: str, **kw: object) -> None:
    """Add ``--kebab-name`` with a ``--snake_name`` alias."""
    names = [f"--{name}"]
    if "-" in name:
        names.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*names, **kw)  # type: ignore[arg-type]


def participant_label(value: str) -> str:
    """Strip a leading ``sub-``; labels are alphanumeric."""
    label = value[4:] if value.startswith("sub-") else value
    if not label.isalnum():
        raise argparse.ArgumentTypeError(f"participant label {value!r} must be alphanumeric (e.g. 00001 or sub-00001)")
    return label


def session_label(value: str) -> str:
    """Strip a leading ``ses-``."""
    label = value[4:] if value.startswith("ses-") else value
    if not label.isalnum():
        raise argparse.ArgumentTypeError(f"session label {value!r} must be alphanumeric")
    return label


def existing_dir(value: str) -> Path:
    """A directory that exists."""
    p = Path(value)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not an existing directory")
    return p


def existing_file(value: str) -> Path:
    """A file that exists."""
    p = Path(value)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{value} is not an existing file")
    return p


def _int_at_least(value: str, lowest: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < lowest:
        raise argparse.ArgumentTypeError(f"{value} must be at least {lowest}")
    return n


def positive_int(value: str) -> int:
    """An integer ≥ 1."""
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    """An integer ≥ 0."""
    return _int_at_least(value, 0)


def non_negative_float(value: str) -> float:
    """A float ≥ 0."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if x < 0:
        raise argparse.ArgumentTypeError(f"{value} must be ≥ 0")
    return x


def _writable_target(path: Path) -> str | None:
    """None when ``path`` (a directory, maybe not yet created) can be written, else why not."""
    p = path.resolve()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a directory"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"{p} is not writable by this user"
    return None


def check_dataset(cfg: RunConfig) -> list[str]:
    """Problems with the dataset, labels and directories found without opening the dataset.

    Cheap checks (no pybids, no torch, nothing written), so a typo fails in a second:
    ``dataset_description.json`` present, every ``--participant-label`` has a ``sub-<label>``
    folder, output and work directories writable, the model found.
    """
    from bids_fcd.nets.locate import ModelError, resolve_model
    from bids_fcd.workflows.paths import work_dir_for

    bids = Path(cfg.bids_dir)
    problems = []
    if not (bids / "dataset_description.json").is_file():
        problems.append(f"{bids} has no dataset_description.json: it is not the root of a BIDS dataset (point "
                        "BIDS_DIR at the folder that holds dataset_description.json and sub-*/)")
    missing = [lab for lab in cfg.participant_label if not (bids / f"sub-{lab}").is_dir()]
    if missing:
        have = sorted(p.name for p in bids.glob("sub-*") if p.is_dir())
        problems.append(f"participant(s) {', '.join('sub-' + m for m in missing)} not found in {bids} (the dataset "
                        f"has {', '.join(have[:8]) or 'no sub-* folders'}{' ...' if len(have) > 8 else ''}); "
                        "check --participant-label")
    targets = [("output", Path(cfg.output_dir))]
    if cfg.analysis_level == "participant":  # the group level reads derivatives only
        targets.append(("work", work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)))
    for what, d in targets:
        why = _writable_target(d)
        if why:
            problems.append(f"the {what} directory {d} cannot be created or written: {why}")
    if cfg.analysis_level == "participant":
        try:
            resolve_model(cfg.model, cfg.env.models_dir)
        except ModelError as exc:
            problems.append(str(exc))
    return problems


def validate_app_args(parser: argparse.ArgumentParser, cfg: RunConfig) -> None:
    """Cross-argument checks for the BIDS App form; calls ``parser.error`` on failure.

    Runs before any heavy import, model load or write: the sampler settings resolve, the output
    and work directories lie outside the input, and :func:`check_dataset` finds nothing wrong.
    """
    from bids_fcd.config import check_sampler
    from bids_fcd.workflows.paths import OutputInInputError, check_output_not_in_input, work_dir_for

    try:
        check_sampler(cfg.sampler)  # the preset and defaults resolved, then checked together
    except ValueError as exc:
        parser.error(str(exc))
    try:
        work = work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)
        check_output_not_in_input(Path(cfg.bids_dir), Path(cfg.output_dir), work)
    except OutputInInputError as exc:
        parser.error(str(exc))
    problems = check_dataset(cfg)
    if problems:
        parser.error("; ".join(problems))
