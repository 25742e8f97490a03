"""``bids-fcd synthesize``: the synthesis models (JS-DDPM lesion slices, 3D healthy brains).

    bids-fcd synthesize lesions train BIDS MODEL_DIR [--preset cpu] ...
    bids-fcd synthesize lesions sample MODEL_DIR OUT --n N [--z-bin B] [--pathology lesion|control] [--seed S]
    bids-fcd synthesize brains train BIDS MODEL_DIR [--preset cpu] ...
    bids-fcd synthesize brains sample MODEL_DIR OUT --n N [--seed S]

Light at import (argparse only): torch, MONAI and the workflows are imported inside :func:`run`.
Wire it with ``add_subparser(sub)`` in the subcommand parser and ``run(args)`` in the dispatcher.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bids_fcd.cli.validation import add_flag as _flag
from bids_fcd.cli.validation import existing_dir, non_negative_float, participant_label, positive_int

log = logging.getLogger(__name__)

PRESETS = ("tiny", "cpu", "paper")
PREDICTIONS = ("sample", "v_prediction", "epsilon")
DEVICES = ("auto", "cpu", "cuda")


def _common(p: argparse.ArgumentParser) -> None:
    _flag(p, "device", choices=DEVICES, default="auto", help="auto: CUDA when available, else CPU")
    _flag(p, "threads", type=int, default=0, help="CPU threads for torch (0 = all available)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")


def _train_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("bids_dir", type=existing_dir, metavar="BIDS_DIR")
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="new model directory")
    _flag(p, "preset", choices=PRESETS, default="cpu",
          help="tiny: tests; cpu: ~30 min on 2 CPU cores; paper: the paper's sizes, for a GPU")
    _flag(p, "participant-label", nargs="+", type=participant_label, default=[],
          help="training participants (default: participants.tsv split == train, else all)")
    _flag(p, "work-dir", type=Path, default=None,
          help="preprocessing cache, shared with `bids-fcd train` (default: MODEL_DIR/../bids-fcd-work)")
    _flag(p, "steps", type=positive_int, default=None, help="optimiser steps (default: the preset's)")
    _flag(p, "batch-size", type=positive_int, default=None, help="batch size (default: the preset's)")
    _flag(p, "lr", type=float, default=None, help="learning rate (default: the preset's)")
    _flag(p, "max-minutes", type=non_negative_float, default=None,
          help="stop after this much training time and write the model (0 = no limit; default: the preset's)")
    _flag(p, "seed", type=int, default=0, help="training seed")
    _flag(p, "skip-bids-validation", action="store_true")
    if what == "lesions":
        _flag(p, "prediction", choices=PREDICTIONS, default=None,
              help="what the UNet predicts: sample (x0, the paper's choice), v_prediction or epsilon "
                   "(default: the preset's, sample)")
        _flag(p, "no-self-conditioning", action="store_true", help="train without self-conditioning (ablation)")
        _flag(p, "no-kendall", action="store_true",
              help="fixed unit loss weights instead of the learned Kendall uncertainty weights (ablation)")
    _common(p)


def _sample_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("model_dir", type=existing_dir, metavar="MODEL_DIR")
    p.add_argument("out", type=Path, metavar="OUT", help="new (empty) directory for the synthetic samples")
    _flag(p, "n", type=positive_int, required=True, help="number of samples")
    _flag(p, "seed", type=int, default=0, help="sampling seed (same seed, model and threads → same samples)")
    _flag(p, "steps", type=positive_int, default=None, help="DDIM steps (default: the model's)")
    _flag(p, "eta", type=non_negative_float, default=None, help="DDIM η (default: the model's)")
    if what == "lesions":
        _flag(p, "z-bin", type=int, default=None, metavar="B",
              help="axial bin 0-29 of every sample (default: drawn like the training slices of --pathology)")
        _flag(p, "pathology", choices=("lesion", "control"), default="lesion",
              help="lesion: slices with a lesion and its mask; control: lesion-free slices")
    _common(p)


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synthesize`` with ``lesions {train,sample}`` and ``brains {train,sample}``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    sy = subparsers.add_parser("synthesize", formatter_class=fmt,
                               help="train and sample the synthesis models (JS-DDPM lesions, 3D healthy brains)")
    models = sy.add_subparsers(dest="synth_model", required=True, metavar="{lesions,brains}")
    for what, text in (("lesions", "JS-DDPM: joint FLAIR + lesion-mask slices"),
                       ("brains", "3D DDPM of healthy brain-masked template-space T1w")):
        m = models.add_parser(what, help=text, formatter_class=fmt)
        actions = m.add_subparsers(dest="synth_action", required=True, metavar="{train,sample}")
        _train_args(actions.add_parser("train", help=f"train a {what} model from a BIDS dataset", formatter_class=fmt),
                    what)
        _sample_args(actions.add_parser("sample", help=f"write synthetic {what} from a model", formatter_class=fmt),
                     what)


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``synthesize`` command; returns the exit code (0 ok, 1 failure)."""
    from bids_fcd.resources import apply_threads, available_cpus, resolve_device

    apply_threads(args.threads or available_cpus())
    try:
        device = resolve_device(args.device)
        if args.synth_model == "lesions":
            from bids_fcd.synthesis import lesions as mod
        else:
            from bids_fcd.synthesis import brain3d as mod  # type: ignore[no-redef]
        if args.synth_action == "train":
            over = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                    "max_minutes": args.max_minutes}
            if args.synth_model == "lesions":
                over["prediction"] = args.prediction
                over["self_conditioning"] = False if args.no_self_conditioning else None
                over["kendall"] = False if args.no_kendall else None
            cfg = mod.resolve_config(args.preset, over)
            import os

            from bids_fcd.config import Environment

            env_work = Environment.from_environ(os.environ).work_dir  # $BIDS_FCD_WORK_DIR, as the other subcommands
            work = args.work_dir or (Path(env_work) if env_work else args.model_dir.resolve().parent / "bids-fcd-work")
            bids = args.bids_dir.resolve()
            for what, p in (("model", args.model_dir), ("work", work)):
                r = Path(p).resolve()
                if r == bids or bids in r.parents:
                    raise ValueError(f"the {what} directory {p} is inside the input BIDS dataset; choose one outside it")
            train = mod.train_lesions if args.synth_model == "lesions" else mod.train_brains  # type: ignore[attr-defined]
            train(args.bids_dir, args.model_dir, cfg, work, list(args.participant_label), device,
                  args.skip_bids_validation)
            return 0
        if args.synth_model == "lesions":
            paths = mod.sample_lesions(args.model_dir, args.out, args.n, args.z_bin, args.pathology, args.seed, device,
                                       args.steps, args.eta)
        else:
            paths = mod.sample_brains(  # type: ignore[attr-defined]
                args.model_dir, args.out, args.n, args.seed, device, args.steps, args.eta)
        log.info("wrote %s (images with JSON sidecars) to %s", ", ".join(Path(p).name for p in paths), args.out)
        return 0
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 1
