"""Command-line arguments → frozen configs (light: no torch, no pybids; imported by validation and main)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from bids_fcd.config import SAMPLER_PRESETS, PostConfig, PreprocConfig, RunConfig, SamplerConfig

#: Sampler flags (argparse dest) → :class:`SamplerConfig` field.
SAMPLER_FLAGS = {"encoding": "encoding", "noise_level": "noise_level", "steps": "steps", "draws": "draws",
                 "guidance_scale": "guidance_scale", "patch_core": "patch_core_px", "patch_margin": "patch_margin_px",
                 "t1_hiding": "t1_hiding"}


def sampler_from_args(args: argparse.Namespace) -> SamplerConfig:
    """SamplerConfig from the shared sampler flags: defaults, then ``--sampler-preset``, then explicit flags."""
    preset: dict[str, Any] = dict(SAMPLER_PRESETS.get(getattr(args, "sampler_preset", None) or "", {}))
    cfg = dataclasses.replace(SamplerConfig(), **preset)
    over = {field: getattr(args, k) for k, field in SAMPLER_FLAGS.items() if getattr(args, k, None) is not None}
    return dataclasses.replace(cfg, **over, seed=args.seed,
                               slices=getattr(args, "slices", cfg.slices),
                               histogram_matching=not getattr(args, "no_histogram_matching", False))


def post_from_args(args: argparse.Namespace) -> PostConfig | None:
    """PostConfig when the user set a post-processing flag (the rest from defaults), else None (use
    the setting calibrated on the reference or the model)."""
    given = {k: getattr(args, k) for k in ("z_threshold", "min_cluster_mm3", "anomaly", "zscore")
             if getattr(args, k, None) is not None}
    return dataclasses.replace(PostConfig(), **given) if given else None


def app_config(args: argparse.Namespace) -> RunConfig:
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
