"""Entry point: parse, validate, build the frozen config, dispatch to a workflow, exit code."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_fcd.cli.configs import (
    app_config,
    benchmark_config,
    demo_config,
    environment,
    phantom_config,
    reference_config,
    train_run_config,
)
from bids_fcd.cli.parser import SUBCOMMANDS, build_app_parser, build_subcommand_parser
from bids_fcd.cli.validation import validate_app_args
from bids_fcd.interrupts import Interrupted, exit_code, handle_interrupts, signal_name
from bids_fcd.io import disk_full, disk_full_message
from bids_fcd.progress import BarSafeHandler

log = logging.getLogger("bids_fcd")


#: The product's loggers (``bids_fcd`` and below) log at INFO by default, DEBUG with ``-vv``.
PRODUCT_LOGGER = "bids_fcd"
#: Third-party loggers known to log below WARNING during a run (the PDF writer's font subsetting,
#: ``fontTools.subset``, above all). They are set to WARNING unless ``-vv`` is given; records of any
#: other third-party logger below WARNING are dropped by the handler's filter all the same.
THIRD_PARTY_LOGGERS = ("fontTools", "matplotlib", "PIL", "nibabel", "bids", "nilearn", "urllib3", "numexpr",
                       "h5py", "torch", "monai", "filelock", "fsspec", "asyncio")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ThirdPartyAtWarning(logging.Filter):
    """Passes the product's records at any level and other loggers' records from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == PRODUCT_LOGGER or record.name.startswith(PRODUCT_LOGGER + ".")
        return own or record.levelno >= logging.WARNING


def _product_handler(root: logging.Logger) -> logging.Handler:
    for h in root.handlers:
        if getattr(h, "_bids_fcd", False):
            return h
    handler = BarSafeHandler()  # log lines above any progress bar, not through it
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._bids_fcd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return handler


def setup_logging(verbosity: int) -> None:
    """Log to stderr: the product at INFO (default, ``-v``) or DEBUG (``-vv``); third-party libraries at
    WARNING unless ``-vv``, where they log at DEBUG too. Calling it again re-applies the levels."""
    debug = verbosity >= 2
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    handler = _product_handler(root)
    for f in [f for f in handler.filters if isinstance(f, ThirdPartyAtWarning)]:
        handler.removeFilter(f)
    if not debug:
        handler.addFilter(ThirdPartyAtWarning())
    for name in THIRD_PARTY_LOGGERS:  # NOTSET: inherit the root's DEBUG
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)


def _run_subcommand(argv: list[str]) -> int:
    parser = build_subcommand_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    env = environment()
    try:
        if args.command == "phantom":
            phantom = phantom_config(args)
        elif args.command == "train":
            train = train_run_config(args, env)
        elif args.command == "demo":
            demo = demo_config(args, env)
        elif args.command == "reference":
            reference = reference_config(args, env)
        elif args.command == "benchmark":
            benchmark = benchmark_config(args, env)
    except ValueError as exc:  # a setting the config refuses: a usage error, like the parser's own
        parser.error(str(exc))
    if args.command == "phantom":
        from bids_fcd.workflows.phantom import run_phantom

        return run_phantom(phantom)
    if args.command == "train":
        from bids_fcd.workflows.train import run_train

        return run_train(train)
    if args.command == "demo":
        from bids_fcd.workflows.demo import run_demo

        return run_demo(demo)
    if args.command == "reference":
        from bids_fcd.workflows.reference import run_reference

        return run_reference(reference)
    if args.command == "benchmark":
        from bids_fcd.workflows.benchmark import run_benchmark

        return run_benchmark(benchmark)
    if args.command == "synthesize":
        from bids_fcd.cli import synthesize

        return synthesize.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a participant or step failed, 2 usage, 128 +
    the signal's number when stopped by one: 143 SIGTERM, 130 SIGINT)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with handle_interrupts():
        return _dispatch(argv)


def _dispatch(argv: list[str]) -> int:
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return _run_subcommand(argv)
        parser = build_app_parser()
        args = parser.parse_args(argv)
        try:
            cfg = app_config(args, environment())
        except ValueError as exc:
            parser.error(str(exc))
        validate_app_args(parser, cfg)
        setup_logging(args.verbose)
        if cfg.analysis_level == "participant":
            from bids_fcd.workflows.participant import run_participant_level

            return run_participant_level(cfg)
        from bids_fcd.workflows.group import run_group_level

        return run_group_level(cfg)
    except (ValueError, OSError) as exc:
        full = disk_full(exc)
        logging.getLogger("bids_fcd").error("%s", disk_full_message(full, Path.cwd()) if full is not None else exc)
        return 1
    except Interrupted as exc:
        how = ("rerun with --resume to continue after the last complete epoch (MODEL_DIR/checkpoint.pt)"
               if argv and argv[0] == "train" else "rerun the same command to resume")
        logging.getLogger("bids_fcd").error("stopped by %s; %s (exit code %d)", signal_name(exc.signum), how,
                                            exit_code(exc.signum))
        return exit_code(exc.signum)
    except KeyboardInterrupt:
        return exit_code(signal.SIGINT)
