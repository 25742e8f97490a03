"""Single-argument ``type=`` converters and the cross-argument validation step."""

from __future__ import annotations

import argparse
from pathlib import Path


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


def positive_int(value: str) -> int:
    """An integer ≥ 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def non_negative_float(value: str) -> float:
    """A float ≥ 0."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if x < 0:
        raise argparse.ArgumentTypeError(f"{value} must be ≥ 0")
    return x


def validate_app_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Cross-argument checks for the BIDS App form; calls ``parser.error`` on failure."""
    from bids_fcd.cli.main import sampler_from_args
    from bids_fcd.sampling.ddim import stride_for

    try:
        cfg = sampler_from_args(args)  # the preset and defaults resolved, then checked together
        stride_for(cfg.noise_level, cfg.steps, 1000)
    except ValueError as exc:
        parser.error(str(exc))
    from bids_fcd.bids.layout import InputError
    from bids_fcd.workflows.participant import check_output_not_in_input, work_dir_for

    try:
        work = work_dir_for(str(args.output_dir), args.work_dir)
        check_output_not_in_input(Path(args.bids_dir), Path(args.output_dir), work)
    except InputError as exc:
        parser.error(str(exc))

