"""Argument parsers, each built in one function.

Two forms share one entry point (``bids-fcd`` and ``run.py``):
the BIDS App form ``BIDS_DIR OUTPUT_DIR {participant,group} [options]`` and the subcommands
``phantom``, ``train``, ``demo`` and ``benchmark``.
"""

from __future__ import annotations

import argparse

from bids_fcd import __version__
from bids_fcd.cli import validation as v
from bids_fcd.config import PostConfig, SamplerConfig

SUBCOMMANDS = ("phantom", "train", "demo", "benchmark")


def _flag(parser: argparse.ArgumentParser, name: str, **kw: object) -> None:
    """Add ``--kebab-name`` with a ``--snake_name`` alias."""
    names = [f"--{name}"]
    if "-" in name:
        names.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*names, **kw)  # type: ignore[arg-type]


def add_sampler_args(p: argparse.ArgumentParser) -> None:
    """--noise-level, --steps, --guidance-scale, --seed, --device (shared by app, demo, benchmark)."""
    s = SamplerConfig()
    _flag(p, "noise-level", type=v.positive_int, default=s.noise_level, metavar="L",
          help="inverse-DDIM noise level L (timesteps out of T=1000) (default: %(default)s)")
    _flag(p, "steps", type=v.positive_int, default=s.steps, metavar="K",
          help="DDIM steps each way; must divide L (default: %(default)s)")
    _flag(p, "guidance-scale", type=v.non_negative_float, default=s.guidance_scale, metavar="S",
          help="classifier-guidance scale s in epsilon-form; 0 disables guidance (default: %(default)s)")
    _flag(p, "seed", type=int, default=s.seed, help="random seed (default: %(default)s)")
    _flag(p, "device", choices=("auto", "cpu", "cuda"), default="auto",
          help="compute device; auto uses a CUDA GPU when one is visible (default: %(default)s)")


def build_app_parser() -> argparse.ArgumentParser:
    """The BIDS App parser (``run.py`` and ``bids-fcd BIDS_DIR OUTPUT_DIR LEVEL``)."""
    p = argparse.ArgumentParser(
        prog="bids-fcd",
        description="Localise focal cortical dysplasia from T1w + FLAIR with a T1-conditioned, lobe-guided "
                    "diffusion model (pseudo-healthy FLAIR synthesis). Subcommands: "
                    + ", ".join(SUBCOMMANDS) + " (see `bids-fcd SUBCOMMAND --help`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("bids_dir", type=v.existing_dir, metavar="BIDS_DIR", help="root of the input BIDS dataset")
    p.add_argument("output_dir", metavar="OUTPUT_DIR", help="where derivatives are written")
    p.add_argument("analysis_level", choices=("participant", "group"), help="processing level")
    _flag(p, "participant-label", nargs="+", type=v.participant_label, default=[], metavar="LABEL",
          help="participants to process (with or without 'sub-'); default: all")
    _flag(p, "session-label", nargs="+", type=v.session_label, default=[], metavar="LABEL",
          help="sessions to process (with or without 'ses-'); default: all")
    _flag(p, "work-dir", default=None, metavar="DIR",
          help="work directory for intermediate files and the preprocessing cache "
               "(default: OUTPUT_DIR/../bids-fcd-work)")
    _flag(p, "model", default=None, metavar="NAME_OR_DIR",
          help="model directory or name under models/ (default: the shipped phantom-default)")
    add_sampler_args(p)
    _flag(p, "nprocs", type=v.positive_int, default=None, help="CPU threads (default: all cores)")
    _flag(p, "skip-bids-validation", action="store_true", help="index the dataset without BIDS validation")
    _flag(p, "bids-filter-file", type=v.existing_file, default=None, metavar="FILE",
          help='JSON of pybids filters, e.g. {"t1w": {"acquisition": "iso08"}, "flair": {...}}')
    post = PostConfig()
    _flag(p, "z-threshold", type=float, default=None,
          help=f"cluster-forming z threshold (default: the model's calibrated value, else {post.z_threshold})")
    _flag(p, "min-cluster-mm3", type=v.non_negative_float, default=None,
          help=f"smallest cluster kept, mm^3 (default: the model's calibrated value, else {post.min_cluster_mm3:g})")
    _flag(p, "no-histogram-matching", action="store_true", help="skip masked histogram matching (ablation)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--version", action="version", version=f"bids-fcd {__version__}")
    return p


def build_subcommand_parser() -> argparse.ArgumentParser:
    """``bids-fcd {phantom,train,demo,benchmark} ...``."""
    p = argparse.ArgumentParser(prog="bids-fcd", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--version", action="version", version=f"bids-fcd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    ph = sub.add_parser("phantom", help="write a synthetic ds004199-shaped cohort", formatter_class=fmt)
    ph.add_argument("out", metavar="OUT", help="new (empty) directory for the BIDS dataset")
    _flag(ph, "n-fcd", type=int, default=2, help="FCD subjects")
    _flag(ph, "n-hc", type=int, default=1, help="healthy controls")
    _flag(ph, "seed", type=int, default=0, help="random seed")
    _flag(ph, "size", choices=("tiny", "full"), default="tiny", help="tiny: 2-3 mm voxels; full: 1 mm")
    ph.add_argument("-v", "--verbose", action="count", default=0)

    tr = sub.add_parser("train", help="train a model directory from a BIDS dataset", formatter_class=fmt)
    tr.add_argument("bids_dir", type=v.existing_dir, metavar="BIDS_DIR")
    tr.add_argument("model_dir", metavar="MODEL_DIR")
    _flag(tr, "participant-label", nargs="+", type=v.participant_label, default=[],
          help="training participants (default: participants.tsv split == train)")
    _flag(tr, "preset", choices=("tiny", "default", "paper"), default="default", help="network and schedule preset")
    _flag(tr, "epochs", type=v.positive_int, default=None, help="epochs (default: the preset's)")
    _flag(tr, "batch-size", type=v.positive_int, default=None, help="batch size (default: the preset's)")
    _flag(tr, "lr", type=float, default=None, help="learning rate (default: the preset's)")
    _flag(tr, "device", choices=("auto", "cpu", "cuda"), default="auto")
    _flag(tr, "resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    _flag(tr, "seed", type=int, default=0)
    _flag(tr, "work-dir", default=None, help="preprocessing cache (default: MODEL_DIR/../bids-fcd-work)")
    _flag(tr, "skip-bids-validation", action="store_true")
    _flag(tr, "flair-only", action="store_true", help="train without the T1w channel (ablation)")
    tr.add_argument("-v", "--verbose", action="count", default=0)

    de = sub.add_parser("demo", help="phantom → participant → group on the shipped model", formatter_class=fmt)
    de.add_argument("out", metavar="OUT", help="new directory: OUT/bids, OUT/derivatives, OUT/work")
    _flag(de, "n-fcd", type=int, default=2)
    _flag(de, "n-hc", type=int, default=1)
    _flag(de, "size", choices=("tiny", "full"), default="tiny")
    _flag(de, "model", default=None)
    de.add_argument("--phantom-seed", type=int, default=1234, help="seed of the demo cohort")
    add_sampler_args(de)
    de.add_argument("-v", "--verbose", action="count", default=0)

    be = sub.add_parser("benchmark", help="method vs ablations and baselines on a held-out phantom",
                        formatter_class=fmt)
    be.add_argument("out", metavar="OUT", help="directory for the cohort, cache and results")
    _flag(be, "n-fcd", type=int, default=8)
    _flag(be, "n-hc", type=int, default=4)
    _flag(be, "size", choices=("tiny", "full"), default="full")
    _flag(be, "phantom-seed", type=int, default=2026)
    _flag(be, "model", default=None)
    _flag(be, "flair-only-model", default=None, help="model trained with --flair-only, for that ablation")
    _flag(be, "sweeps", action="store_true", help="also sweep the guidance scale s and the noise level L")
    add_sampler_args(be)
    be.add_argument("-v", "--verbose", action="count", default=0)
    return p
