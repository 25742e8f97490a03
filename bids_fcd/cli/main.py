"""Entry point: parse, validate, build the frozen config, dispatch to a workflow, exit code."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bids_fcd.cli.parser import SUBCOMMANDS, build_app_parser, build_subcommand_parser
from bids_fcd.cli.validation import validate_app_args
from bids_fcd.config import SAMPLER_PRESETS, PostConfig, PreprocConfig, RunConfig, SamplerConfig

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


def sampler_from_args(args) -> SamplerConfig:  # noqa: ANN001
    """SamplerConfig from the shared sampler flags: defaults, then ``--sampler-preset``, then explicit flags."""
    preset: dict[str, Any] = dict(SAMPLER_PRESETS.get(getattr(args, "sampler_preset", None) or "", {}))
    cfg = dataclasses.replace(SamplerConfig(), **preset)
    names = {"encoding": "encoding", "noise_level": "noise_level", "steps": "steps", "draws": "draws",
             "guidance_scale": "guidance_scale", "patch_core": "patch_core_px", "patch_margin": "patch_margin_px",
             "t1_hiding": "t1_hiding"}
    over = {field: getattr(args, k) for k, field in names.items() if getattr(args, k, None) is not None}
    return dataclasses.replace(cfg, **over, seed=args.seed,
                               slices=getattr(args, "slices", cfg.slices),
                               histogram_matching=not getattr(args, "no_histogram_matching", False))


def app_config(args) -> RunConfig:  # noqa: ANN001
    """RunConfig from the BIDS App arguments."""
    return RunConfig(
        bids_dir=str(args.bids_dir), output_dir=str(args.output_dir), analysis_level=args.analysis_level,
        participant_label=tuple(args.participant_label), session_label=tuple(args.session_label),
        work_dir=args.work_dir, model=args.model, reference=str(args.reference) if args.reference else None,
        device=args.device, nprocs=args.nprocs or 0,
        omp_nthreads=args.omp_nthreads or 0, ants_nthreads=args.ants_nthreads, overwrite=args.overwrite,
        preproc=PreprocConfig(registration=args.registration),
        skip_bids_validation=args.skip_bids_validation,
        bids_filter_file=str(args.bids_filter_file) if args.bids_filter_file else None,
        sampler=sampler_from_args(args),
        post=post_from_args(args),
    )


def post_from_args(args) -> PostConfig | None:  # noqa: ANN001
    """PostConfig when the user set a post-processing flag (the rest from defaults), else None (use
    the setting calibrated on the reference or the model)."""
    given = {k: getattr(args, k) for k in ("z_threshold", "min_cluster_mm3", "anomaly", "zscore")
             if getattr(args, k, None) is not None}
    return dataclasses.replace(PostConfig(), **given) if given else None


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
