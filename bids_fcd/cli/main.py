"""Entry point: parse, validate, build the frozen config, dispatch to a workflow, exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_fcd.cli.configs import app_config, sampler_from_args
from bids_fcd.cli.parser import SUBCOMMANDS, build_app_parser, build_subcommand_parser
from bids_fcd.cli.validation import validate_app_args

log = logging.getLogger("bids_fcd")


def setup_logging(verbosity: int) -> None:
    """Log to stderr: INFO by default, DEBUG with -vv; quiet third-party loggers."""
    level = logging.DEBUG if verbosity >= 2 else logging.INFO
    root = logging.getLogger()
    if not any(getattr(h, "_bids_fcd", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._bids_fcd = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("bids", "nilearn", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_subcommand(argv: list[str]) -> int:
    parser = build_subcommand_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "phantom":
        from bids_fcd.phantom.generator import write_cohort

        write_cohort(Path(args.out), args.n_fcd, args.n_hc, args.seed, args.size, args.lesions)
        log.info("phantom written to %s", args.out)
        return 0
    if args.command == "train":
        from bids_fcd.workflows.train import run_train

        return run_train(args)
    if args.command == "demo":
        from bids_fcd.workflows.demo import run_demo

        return run_demo(args, sampler_from_args(args))
    if args.command == "reference":
        from bids_fcd.workflows.reference import run_reference

        return run_reference(args, sampler_from_args(args))
    if args.command == "benchmark":
        from bids_fcd.workflows.benchmark import run_benchmark

        return run_benchmark(args, sampler_from_args(args))
    parser.error(f"unknown command {args.command}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a participant or step failed, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return _run_subcommand(argv)
        parser = build_app_parser()
        args = parser.parse_args(argv)
        validate_app_args(parser, args)
        setup_logging(args.verbose)
        cfg = app_config(args)
        if cfg.analysis_level == "participant":
            from bids_fcd.workflows.participant import run_participant_level

            return run_participant_level(cfg)
        from bids_fcd.workflows.group import run_group_level

        return run_group_level(cfg)
    except (ValueError, OSError) as exc:
        logging.getLogger("bids_fcd").error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
