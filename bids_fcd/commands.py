"""The frozen config of each subcommand (``phantom``, ``train``, ``demo``, ``benchmark``, ``reference``).

The participant and group levels use :class:`bids_fcd.config.RunConfig`. Each config is built from
the command line by :mod:`bids_fcd.cli.configs`, passed to its workflow, and written as JSON
beside the command's outputs (:data:`CONFIG_FILE`). Light on purpose (no torch, no file access at
import): enum-like fields are ``Literal`` types checked in ``__post_init__`` with the same tuples
the parser offers as ``choices``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from bids_fcd.config import DEVICES, DIFFUSION_LOSSES, Device, Environment, PostConfig, SamplerConfig, check_choice

PhantomSize = Literal["tiny", "full", "clinical", "mixed"]
LesionDraw = Literal["random", "stratified", "small", "large"]
LesionProfile = Literal["peaked", "flat", "mixed"]
AnatomySplit = Literal["train", "reference", "development", "test", "all"]
TrainPreset = Literal["tiny", "default", "large", "inpaint", "inpaint-tiny", "paper", "fine", "fine-compact"]
#: ``bids_fcd.phantom.generator.SIZE_CHOICES``, ``LESION_DRAWS`` and ``PROFILE_CHOICES`` (kept here so parsing
#: imports nothing heavy; tests/cli checks they agree).
PHANTOM_SIZES: tuple[str, ...] = get_args(PhantomSize)
LESION_DRAWS: tuple[str, ...] = get_args(LesionDraw)
LESION_PROFILES: tuple[str, ...] = get_args(LesionProfile)
#: ``bids_fcd.phantom.real_anatomy.SPLIT_CHOICES`` (tests/cli checks they agree).
ANATOMY_SPLITS: tuple[str, ...] = get_args(AnatomySplit)
#: ``bids_fcd.training.presets.PRESETS`` (tests/cli checks they agree).
TRAIN_PRESETS: tuple[str, ...] = get_args(TrainPreset)

#: ``<command>_config.json``: the file each subcommand writes beside its outputs (the participant level
#: writes ``sub-<label>/log/sub-<label>_config.json``, the group level ``group_config.json``).
CONFIG_FILE = "{command}_config.json"


def config_file(command: str) -> str:
    """The name of the config file a subcommand writes beside its outputs (:data:`CONFIG_FILE`)."""
    return CONFIG_FILE.format(command=command)


def _check_counts(**counts: int) -> None:
    for name, n in counts.items():
        if n < 0:
            raise ValueError(f"--{name.replace('_', '-')} {n} must be ≥ 0")


@dataclass(frozen=True)
class PhantomConfig:
    """``bids-fcd phantom OUT``: a synthetic ds004199-shaped cohort (written to ``OUT/code/phantom_config.json``)."""

    out: str
    n_fcd: int = 2
    n_hc: int = 1
    seed: int = 0
    size: PhantomSize = "tiny"
    lesions: LesionDraw = "random"
    lesion_profile: LesionProfile = "peaked"
    #: A directory of real brains' label maps to build the subjects from (None: the template).
    anatomy: str | None = None
    anatomy_split: AnatomySplit = "all"

    def __post_init__(self) -> None:
        check_choice("phantom size", self.size, PHANTOM_SIZES, "--size")
        check_choice("lesion draw", self.lesions, LESION_DRAWS, "--lesions")
        check_choice("lesion profile", self.lesion_profile, LESION_PROFILES, "--lesion-profile")
        check_choice("anatomy split", self.anatomy_split, ANATOMY_SPLITS, "--anatomy-split")
        _check_counts(n_fcd=self.n_fcd, n_hc=self.n_hc)


@dataclass(frozen=True)
class TrainRunConfig:
    """``bids-fcd train BIDS_DIR MODEL_DIR``; ``epochs``/``batch_size``/``lr``/``diffusion_loss`` None = the
    preset's."""

    bids_dir: str
    model_dir: str
    participant_label: tuple[str, ...] = ()
    preset: TrainPreset = "default"
    phantom_brains: int = 0
    phantom_brain_seed: int = 500
    #: Real anatomy for the ``phantom_brains``: this directory's ``anatomy_split`` label maps (None: the template).
    anatomy: str | None = None
    anatomy_split: AnatomySplit = "train"
    classifier_from: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: Device = "auto"
    resume: bool = False
    max_minutes: float = 0.0
    seed: int = 0
    work_dir: str | None = None
    skip_bids_validation: bool = False
    flair_only: bool = False
    diffusion_loss: str | None = None
    env: Environment = field(default_factory=Environment)

    def __post_init__(self) -> None:
        check_choice("training preset", self.preset, TRAIN_PRESETS, "--preset")
        if self.diffusion_loss is not None:
            check_choice("diffusion loss", self.diffusion_loss, DIFFUSION_LOSSES, "--diffusion-loss")
        check_choice("device", self.device, DEVICES, "--device")
        _check_counts(phantom_brains=self.phantom_brains)
        check_choice("anatomy split", self.anatomy_split, ANATOMY_SPLITS, "--anatomy-split")


@dataclass(frozen=True)
class ReferenceConfig:
    """``bids-fcd reference BIDS_DIR OUT_DIR``: a normative reference from a dataset's controls."""

    bids_dir: str
    out_dir: str
    participant_label: tuple[str, ...] = ()
    model: str | None = None
    work_dir: str | None = None
    max_fp_per_control: float = 0.25
    device: Device = "auto"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    env: Environment = field(default_factory=Environment)
    #: :attr:`PostConfig.asymmetry_weight` of the maps the reference holds (recorded; runs take it from there).
    asymmetry_weight: float = PostConfig.asymmetry_weight

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES, "--device")
        PostConfig(asymmetry_weight=self.asymmetry_weight)  # its range check, with the fix


@dataclass(frozen=True)
class DemoConfig:
    """``bids-fcd demo OUT``: phantom → participant level → group level on the shipped model."""

    out: str
    n_fcd: int = 2
    n_hc: int = 1
    size: PhantomSize = "tiny"
    model: str | None = None
    phantom_seed: int = 1234
    device: Device = "auto"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    env: Environment = field(default_factory=Environment)

    def __post_init__(self) -> None:
        check_choice("phantom size", self.size, PHANTOM_SIZES, "--size")
        check_choice("device", self.device, DEVICES, "--device")
        _check_counts(n_fcd=self.n_fcd, n_hc=self.n_hc)


@dataclass(frozen=True)
class BenchmarkConfig:
    """``bids-fcd benchmark OUT``: every variant scored on a held-out phantom (see :mod:`bids_fcd.workflows.benchmark`)."""

    out: str
    n_fcd: int = 12
    n_hc: int = 8
    size: PhantomSize = "mixed"
    phantom_seed: int = 2026
    model: str | None = None
    flair_only_model: str | None = None
    sweeps: bool = False
    device: Device = "auto"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    reference_bids: str | None = None
    reference_seed: int = 401
    n_reference: int = 40
    max_fp_per_control: float = 0.25
    ablations: bool = False
    lesions: LesionDraw = "stratified"
    compare_model: str | None = None
    env: Environment = field(default_factory=Environment)
    #: Real anatomy: the test cohort from this directory's ``anatomy_split`` maps and, without
    #: ``reference_bids``, the reference controls from its ``reference`` split (None: the template).
    anatomy: str | None = None
    anatomy_split: AnatomySplit = "test"

    def __post_init__(self) -> None:
        check_choice("phantom size", self.size, PHANTOM_SIZES, "--size")
        check_choice("lesion draw", self.lesions, LESION_DRAWS, "--lesions")
        check_choice("anatomy split", self.anatomy_split, ANATOMY_SPLITS, "--anatomy-split")
        check_choice("device", self.device, DEVICES, "--device")
        _check_counts(n_fcd=self.n_fcd, n_hc=self.n_hc, n_reference=self.n_reference)

    @property
    def seed(self) -> int:
        """The seed of the sampler and the diagnostics (``--seed``)."""
        return self.sampler.seed
