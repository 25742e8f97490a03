"""Argument parsers, each built in one function.

Two forms share one entry point (``bids-fcd`` and ``run.py``):
the BIDS App form ``BIDS_DIR OUTPUT_DIR {participant,group} [options]`` and the subcommands
``phantom``, ``train``, ``demo``, ``benchmark``, ``reference`` and ``synthesize`` (:mod:`bids_fcd.cli.synthesize`).
"""

from __future__ import annotations

import argparse

from bids_fcd import __version__
from bids_fcd.cli import synthesize
from bids_fcd.cli import validation as v
from bids_fcd.cli.validation import add_flag as _flag
from bids_fcd.commands import ANATOMY_SPLITS, LESION_DRAWS, LESION_PROFILES, PHANTOM_SIZES, TRAIN_PRESETS
from bids_fcd.config import (
    ANALYSIS_LEVELS,
    ANOMALIES,
    DEVICES,
    DIFFUSION_LOSSES,
    ENCODINGS,
    LOOK_T1,
    REGISTRATIONS,
    SAMPLER_PRESETS,
    SECOND_LOOKS,
    SLICES,
    T1_CONDITIONS,
    T1_HIDING,
    ZSCORES,
    PostConfig,
    SamplerConfig,
)

SUBCOMMANDS = ("phantom", "train", "demo", "benchmark", "reference", "synthesize")


def add_sampler_args(p: argparse.ArgumentParser) -> None:
    """--sampler-preset, --encoding, --noise-level, --steps, --draws, --guidance-scale, --seed, --device."""
    s = SamplerConfig()
    _flag(p, "sampler-preset", choices=tuple(SAMPLER_PRESETS), default=argparse.SUPPRESS,
          help=f"fast: stochastic encoding to L={s.noise_level}, K={s.steps}, {s.draws} draws (the default values); "
               "paper: deterministic inverse DDIM to L=100, K=10 (the paper's encoding). Explicit flags override the "
               "preset.")
    _flag(p, "encoding", choices=ENCODINGS, default=argparse.SUPPRESS,
          help=f"patched: an inpainting model regenerates every voxel from hidden holes (needs a model trained "
               f"with --preset inpaint); stochastic: forward noising to L, several draws averaged; deterministic: "
               f"inverse DDIM (the paper) (default: {s.encoding})")
    _flag(p, "patch-core", type=v.positive_int, default=argparse.SUPPRESS, metavar="PX",
          help=f"patched: side of the square each hole regenerates, in grid pixels (default: {s.patch_core_px})")
    _flag(p, "patch-margin", type=v.non_negative_int, default=argparse.SUPPRESS, metavar="PX",
          help=f"patched: hidden margin around each core, in grid pixels, < --patch-core "
               f"(default: {s.patch_margin_px})")
    _flag(p, "t1-hiding", choices=T1_HIDING, default=argparse.SUPPRESS,
          help=f"patched: how the T1w inside a hole is hidden (default: {s.t1_hiding})")
    _flag(p, "second-look", choices=SECOND_LOOKS, default=argparse.SUPPRESS,
          help=f"inpaint: after the first pass, regenerate the regions that stand out (in the residual or the "
               f"FLAIR's left-right asymmetry) again by inpainting, with their T1w hidden; the reference must be "
               f"built with the same setting (default: {s.second_look})")
    _flag(p, "look-z", type=float, default=argparse.SUPPRESS, metavar="Z",
          help=f"second look: robust within-brain z above which a region is regenerated again "
               f"(default: {s.look_z:g})")
    _flag(p, "look-t1", choices=LOOK_T1, default=argparse.SUPPRESS,
          help=f"second look: the T1w shown inside a regenerated region (default: {s.look_t1})")
    _flag(p, "t1-condition", choices=T1_CONDITIONS, default=argparse.SUPPRESS,
          help=f"the T1w the network is shown: native (as acquired), symmetric (averaged with the mirror "
               f"hemisphere's, halving a one-sided lesion's T1w signs) or mirror (the mirror hemisphere's); the "
               f"reference must be built with the same setting (default: {s.t1_condition})")
    _flag(p, "noise-level", type=v.positive_int, default=argparse.SUPPRESS, metavar="L",
          help=f"noise level L the FLAIR is encoded to (timesteps out of T=1000) (default: {s.noise_level})")
    _flag(p, "steps", type=v.positive_int, default=argparse.SUPPRESS, metavar="K",
          help=f"DDIM decoding steps (and inversion steps when deterministic); must divide L (default: {s.steps})")
    _flag(p, "draws", type=v.positive_int, default=argparse.SUPPRESS, metavar="D",
          help=f"stochastic encodings decoded and averaged (default: {s.draws})")
    _flag(p, "guidance-scale", type=v.non_negative_float, default=argparse.SUPPRESS, metavar="S",
          help=f"classifier-guidance scale s in epsilon-form; 0 disables guidance; the patched encoding is not "
               f"guided (default: {s.guidance_scale:g}, or the preset's)")
    _flag(p, "seed", type=int, default=s.seed, help="random seed (default: %(default)s)")
    _flag(p, "slices", choices=SLICES, default=s.slices,
          help="all: every axial slice of the grid (the whole cerebrum); paper: the paper's central band only")
    _flag(p, "device", choices=DEVICES, default="auto",
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
    p.add_argument("analysis_level", choices=ANALYSIS_LEVELS, help="processing level")
    _flag(p, "participant-label", nargs="+", type=v.participant_label, default=[], metavar="LABEL",
          help="participants to process (with or without 'sub-'); default: all")
    _flag(p, "session-label", nargs="+", type=v.session_label, default=[], metavar="LABEL",
          help="sessions to process (with or without 'ses-'); default: all")
    p.add_argument("-w", "--work-dir", "--work_dir", dest="work_dir", default=None, metavar="DIR",
                   help="work directory for intermediate files and the preprocessing cache "
                        "(default: $BIDS_FCD_WORK_DIR, else OUTPUT_DIR/../bids-fcd-work)")
    _flag(p, "model", default=None, metavar="NAME_OR_DIR",
          help="model directory, or a name under $BIDS_FCD_MODELS else the package's models (default: the shipped "
               "phantom-default)")
    _flag(p, "reference", type=v.existing_dir, default=None, metavar="DIR",
          help="normative reference directory written by `bids-fcd reference` (default: the model's own)")
    add_sampler_args(p)
    _flag(p, "nprocs", type=v.positive_int, default=None, help="CPU threads in all (default: all cores)")
    _flag(p, "omp-nthreads", type=v.positive_int, default=None,
          help="threads per process for torch (default: --nprocs)")
    _flag(p, "ants-nthreads", type=v.positive_int, default=1,
          help="ANTs/ITK threads; above 1 registers faster but ANTs is then not bit-reproducible run to run")
    _flag(p, "overwrite", action="store_true",
          help="recompute participants whose outputs are complete (default: skip them, as a resumed run does)")
    _flag(p, "skip-bids-validation", action="store_true", help="index the dataset without BIDS validation")
    _flag(p, "bids-filter-file", type=v.existing_file, default=None, metavar="FILE",
          help='JSON of pybids filters, e.g. {"t1w": {"acquisition": "iso08"}, "flair": {...}}')
    post = PostConfig()
    _flag(p, "z-threshold", type=float, default=None,
          help=f"cluster-forming z threshold (default: the model's calibrated value, else {post.z_threshold})")
    _flag(p, "min-cluster-mm3", type=v.non_negative_float, default=None,
          help=f"smallest cluster kept, mm^3 (default: the model's calibrated value, else {post.min_cluster_mm3:g})")
    _flag(p, "no-histogram-matching", action="store_true", help="skip masked histogram matching (ablation)")
    _flag(p, "anomaly", choices=ANOMALIES, default=None,
          help="signed: FLAIR - pseudo-healthy (FCD is hyperintense); absolute: its magnitude (default: signed)")
    _flag(p, "zscore", choices=ZSCORES, default=None,
          help="normative: against the reference of controls; within: within each brain, the paper's "
               "(default: normative)")
    _flag(p, "registration", choices=REGISTRATIONS, default="syn",
          help="T1w to template: ANTs SyN (non-linear) or affine only")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--version", action="version", version=f"bids-fcd {__version__}")
    return p


def _anatomy_args(p: argparse.ArgumentParser, split: str) -> None:
    _flag(p, "anatomy", default=None, metavar="DIR",
          help="build the subjects from real brains' label maps in DIR (FreeSurfer/SynthSeg labels, e.g. the "
               "project's shared/anatomy) instead of warping the one template: real, different folding")
    _flag(p, "anatomy-split", choices=ANATOMY_SPLITS, default=split,
          help="which of DIR's label maps: the project's fixed split of its 20 anatomies (train, reference, "
               "development, test; bids_fcd/phantom/real_anatomy.py) or all of DIR's maps")


def build_subcommand_parser() -> argparse.ArgumentParser:
    """``bids-fcd {phantom,train,demo,benchmark,reference,synthesize} ...``."""
    p = argparse.ArgumentParser(prog="bids-fcd", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--version", action="version", version=f"bids-fcd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    ph = sub.add_parser("phantom", help="write a synthetic ds004199-shaped cohort", formatter_class=fmt)
    ph.add_argument("out", metavar="OUT", help="new (empty) directory for the BIDS dataset")
    _flag(ph, "n-fcd", type=int, default=2, help="FCD subjects")
    _flag(ph, "n-hc", type=int, default=1, help="healthy controls")
    _flag(ph, "seed", type=int, default=0, help="random seed")
    _flag(ph, "size", choices=PHANTOM_SIZES, default="tiny",
          help="tiny: 2-3 mm voxels; full: 1 mm T1w + 3D FLAIR; clinical: 1 mm T1w + 2D FLAIR with 4-6 mm "
               "slices; mixed: full or clinical per subject")
    _flag(ph, "lesions", choices=LESION_DRAWS, default="random",
          help="lesion sizes: random (the size's odds), stratified (small 2.5-4 mm, medium, large 12-20 mm "
               "radius in turn over the FCD subjects), small or large (every FCD subject that class)")
    _flag(ph, "lesion-profile", choices=LESION_PROFILES, default="peaked",
          help="the lesions' FLAIR profile: peaked (brightest at the centre), flat (uniform with a short rim, "
               "which drift removal hollows out) or mixed (one of the two per FCD subject)")
    _anatomy_args(ph, "all")
    ph.add_argument("-v", "--verbose", action="count", default=0)

    tr = sub.add_parser("train", help="train a model directory from a BIDS dataset", formatter_class=fmt)
    tr.add_argument("bids_dir", type=v.existing_dir, metavar="BIDS_DIR")
    tr.add_argument("model_dir", metavar="MODEL_DIR")
    _flag(tr, "participant-label", nargs="+", type=v.participant_label, default=[],
          help="training participants (default: participants.tsv split == train)")
    _flag(tr, "preset", choices=TRAIN_PRESETS, default="fine",
          help="network and schedule preset (fine: the shipped model's, the default networks on a 1.5 mm grid; "
               "default: the same on 2 mm, about half the training and sampling time; inpaint: the masked "
               "diffusion model of the patched encoding)")
    _flag(tr, "phantom-brains", type=v.non_negative_int, default=0, metavar="N",
          help="add N domain-randomised phantom brains made directly on the model grid to the training set")
    _flag(tr, "phantom-brain-seed", type=int, default=500, help="seed of the --phantom-brains")
    _anatomy_args(tr, "train")
    _flag(tr, "classifier-from", default=None, metavar="MODEL",
          help="take the lobe classifier from this model (same grid) instead of training one")
    _flag(tr, "epochs", type=v.positive_int, default=None, help="epochs (default: the preset's)")
    _flag(tr, "batch-size", type=v.positive_int, default=None, help="batch size (default: the preset's)")
    _flag(tr, "lr", type=float, default=None, help="learning rate (default: the preset's)")
    _flag(tr, "device", choices=DEVICES, default="auto")
    _flag(tr, "resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    _flag(tr, "max-minutes", type=v.non_negative_float, default=0.0,
          help="stop after the epoch that passes this much training time and write the model (0 = no limit)")
    _flag(tr, "seed", type=int, default=0)
    _flag(tr, "work-dir", default=None,
          help="preprocessing cache (default: $BIDS_FCD_WORK_DIR, else MODEL_DIR/../bids-fcd-work)")
    _flag(tr, "skip-bids-validation", action="store_true")
    _flag(tr, "flair-only", action="store_true", help="train without the T1w channel (ablation)")
    _flag(tr, "diffusion-loss", choices=DIFFUSION_LOSSES, default=None,
          help="all: the noise-prediction loss on every voxel (the paper); healthy: lesion voxels of the _roi "
               "masks left out, so the network never learns to draw a lesion from the T1w (default: the preset's; the "
               "inpaint presets always leave them out)")
    tr.add_argument("-v", "--verbose", action="count", default=0)

    de = sub.add_parser("demo", help="phantom → participant → group on the shipped model", formatter_class=fmt)
    de.add_argument("out", metavar="OUT", help="new directory: OUT/bids, OUT/derivatives, OUT/work")
    _flag(de, "n-fcd", type=int, default=2)
    _flag(de, "n-hc", type=int, default=1)
    _flag(de, "size", choices=PHANTOM_SIZES, default="tiny")
    _flag(de, "model", default=None)
    de.add_argument("--phantom-seed", type=int, default=1234, help="seed of the demo cohort")
    add_sampler_args(de)
    de.add_argument("-v", "--verbose", action="count", default=0)

    be = sub.add_parser("benchmark", help="method vs ablations and baselines on a held-out phantom",
                        formatter_class=fmt)
    be.add_argument("out", metavar="OUT", help="directory for the cohort, cache and results")
    _flag(be, "n-fcd", type=int, default=12)
    _flag(be, "n-hc", type=int, default=8)
    _flag(be, "size", choices=PHANTOM_SIZES, default="mixed")
    _flag(be, "phantom-seed", type=int, default=2026)
    _flag(be, "model", default=None)
    _flag(be, "flair-only-model", default=None, help="model trained with --flair-only, for that ablation")
    _flag(be, "sweeps", action="store_true", help="also sweep the guidance scale s and the noise level L")
    add_sampler_args(be)
    _flag(be, "reference-bids", default=None, metavar="DIR",
          help="BIDS dataset of controls for the normative reference (default: a phantom from --reference-seed)")
    _flag(be, "reference-seed", type=int, default=401, help="seed of the reference phantom")
    _flag(be, "n-reference", type=int, default=40, help="controls in the reference phantom")
    _flag(be, "max-fp-per-control", type=v.non_negative_float, default=0.25,
          help="false-positive budget for calibrating the clusters on the reference controls")
    _flag(be, "ablations", action="store_true",
          help="also sample the sampler ablations (patched: T1w clean in the holes, one step; whole-slice: no "
               "guidance, the paper's deterministic encoding); each about doubles the run")
    _flag(be, "lesions", choices=LESION_DRAWS, default="stratified",
          help="lesion sizes of the test phantom (stratified: small, medium and large in turn)")
    _flag(be, "compare-model", default=None, metavar="MODEL",
          help="also score this model with its fast preset (e.g. an earlier model, to compare with this one)")
    _anatomy_args(be, "test")
    be.add_argument("-v", "--verbose", action="count", default=0)

    rf = sub.add_parser("reference", help="build a normative reference from a dataset's controls", formatter_class=fmt)
    rf.add_argument("bids_dir", type=v.existing_dir, metavar="BIDS_DIR")
    rf.add_argument("out_dir", metavar="OUT_DIR",
                    help="new reference directory (MODEL_DIR/reference stores it inside a model and renews its "
                         "SHA256SUMS)")
    _flag(rf, "participant-label", nargs="+", type=v.participant_label, default=[],
          help="controls to use (default: participants.tsv group == hc)")
    _flag(rf, "model", default=None)
    _flag(rf, "work-dir", default=None,
          help="preprocessing cache (default: $BIDS_FCD_WORK_DIR, else OUT_DIR/../bids-fcd-work)")
    _flag(rf, "max-fp-per-control", type=v.non_negative_float, default=0.25,
          help="false-positive clusters per control allowed when calibrating the cluster setting (leave-one-out)")
    _flag(rf, "asymmetry-weight", type=v.non_negative_float, default=PostConfig().asymmetry_weight, metavar="A",
          help="weight of the FLAIR's left-right asymmetry as a third map of the combined z, beside the residual "
               "and the FLAIR (0.5 each); recorded in the reference, so runs scored against it use it "
               "(default: %(default)s; 0 leaves it out)")
    add_sampler_args(rf)
    rf.add_argument("-v", "--verbose", action="count", default=0)

    synthesize.add_subparser(sub)  # the synthesis models: bids_fcd/cli/synthesize.py
    return p
