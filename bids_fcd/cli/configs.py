"""Command-line arguments → the frozen config of each command (light: no torch, no pybids).

The environment is read here once (:func:`environment`) into :class:`~bids_fcd.config.Environment`
and carried in every command's config, so library code never reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from bids_fcd.commands import BenchmarkConfig, DemoConfig, PhantomConfig, ReferenceConfig, TrainRunConfig
from bids_fcd.config import SAMPLER_PRESETS, Environment, PostConfig, PreprocConfig, RunConfig, SamplerConfig

#: Sampler flags (argparse dest) → :class:`SamplerConfig` field.
SAMPLER_FLAGS = {"encoding": "encoding", "noise_level": "noise_level", "steps": "steps", "draws": "draws",
                 "guidance_scale": "guidance_scale", "patch_core": "patch_core_px", "patch_margin": "patch_margin_px",
                 "t1_hiding": "t1_hiding", "second_look": "second_look", "look_z": "look_z", "look_t1": "look_t1",
                 "t1_condition": "t1_condition"}


def environment() -> Environment:
    """The bids-fcd environment variables of this process, read once (:meth:`Environment.from_environ`)."""
    return Environment.from_environ(os.environ)


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


def app_config(args: argparse.Namespace, env: Environment | None = None) -> RunConfig:
    """RunConfig from the BIDS App arguments (``env``: :func:`environment` when not given)."""
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
        env=env if env is not None else environment(),
    )


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def phantom_config(args: argparse.Namespace) -> PhantomConfig:
    """``bids-fcd phantom``."""
    return PhantomConfig(out=str(args.out), n_fcd=args.n_fcd, n_hc=args.n_hc, seed=args.seed, size=args.size,
                         lesions=args.lesions, lesion_profile=args.lesion_profile, anatomy=_str(args.anatomy),
                         anatomy_split=args.anatomy_split)


def train_run_config(args: argparse.Namespace, env: Environment) -> TrainRunConfig:
    """``bids-fcd train``."""
    return TrainRunConfig(
        bids_dir=str(args.bids_dir), model_dir=str(args.model_dir), participant_label=tuple(args.participant_label),
        preset=args.preset, phantom_brains=args.phantom_brains, phantom_brain_seed=args.phantom_brain_seed,
        classifier_from=args.classifier_from, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        device=args.device, resume=args.resume, max_minutes=args.max_minutes, seed=args.seed, work_dir=args.work_dir,
        skip_bids_validation=args.skip_bids_validation, flair_only=args.flair_only,
        diffusion_loss=args.diffusion_loss, env=env, anatomy=_str(args.anatomy), anatomy_split=args.anatomy_split)


def reference_config(args: argparse.Namespace, env: Environment) -> ReferenceConfig:
    """``bids-fcd reference``."""
    return ReferenceConfig(bids_dir=str(args.bids_dir), out_dir=str(args.out_dir),
                           participant_label=tuple(args.participant_label), model=args.model, work_dir=args.work_dir,
                           max_fp_per_control=args.max_fp_per_control, device=args.device,
                           sampler=sampler_from_args(args), env=env, asymmetry_weight=args.asymmetry_weight)


def demo_config(args: argparse.Namespace, env: Environment) -> DemoConfig:
    """``bids-fcd demo``."""
    return DemoConfig(out=str(args.out), n_fcd=args.n_fcd, n_hc=args.n_hc, size=args.size, model=args.model,
                      phantom_seed=args.phantom_seed, device=args.device, sampler=sampler_from_args(args), env=env)


def benchmark_config(args: argparse.Namespace, env: Environment) -> BenchmarkConfig:
    """``bids-fcd benchmark``."""
    return BenchmarkConfig(
        out=str(args.out), n_fcd=args.n_fcd, n_hc=args.n_hc, size=args.size, phantom_seed=args.phantom_seed,
        model=args.model, flair_only_model=args.flair_only_model, sweeps=args.sweeps, device=args.device,
        sampler=sampler_from_args(args), reference_bids=_str(args.reference_bids), reference_seed=args.reference_seed,
        n_reference=args.n_reference, max_fp_per_control=args.max_fp_per_control, ablations=args.ablations,
        lesions=args.lesions, compare_model=args.compare_model, env=env, anatomy=_str(args.anatomy),
        anatomy_split=args.anatomy_split)
