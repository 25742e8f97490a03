"""Frozen configuration dataclasses for every stage, with a JSON round trip.

Nothing here reads files or touches the environment at import time. A run builds one
:class:`RunConfig` from the command line and passes the pieces down explicitly; the resolved
config is written beside the outputs (``sub-<label>/log/``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

#: Classifier / class-embedding labels, in index order. Index 0 is the healthy class *h*.
#: The lobe classifier's classes, in its output order: ``healthy`` then the five lobe codes that
#: participants.tsv ``lobe`` entries, cluster tables and reports use.
LOBES: tuple[str, ...] = ("healthy", "FL", "TL", "PL", "OL", "IL")
HEALTHY = 0
#: The one vocabulary of lobe words, by code (sidecars, group tables, reports, the phantom's
#: participants.json).
LOBE_WORDS: dict[str, str] = {"healthy": "healthy", "FL": "frontal", "TL": "temporal", "PL": "parietal",
                              "OL": "occipital", "IL": "insula"}


def lobe_legend() -> str:
    """``FL frontal, TL temporal, PL parietal, OL occipital, IL insula`` (the lobe codes explained)."""
    return ", ".join(f"{code} {LOBE_WORDS[code]}" for code in LOBES[1:])

T = TypeVar("T")

# Enum-like settings: each a ``Literal`` type and the tuple of its values, which the parser's ``choices``
# and the ``__post_init__`` checks use (one list of names per setting).
Device = Literal["auto", "cpu", "cuda"]
AnalysisLevel = Literal["participant", "group"]
Encoding = Literal["patched", "stochastic", "deterministic"]
Slices = Literal["all", "paper"]
T1Hiding = Literal["clean", "blur", "zero"]
SecondLook = Literal["off", "inpaint"]
LookT1 = Literal["mirror", "blur", "clean"]
T1Condition = Literal["native", "symmetric", "mirror"]
Anomaly = Literal["signed", "absolute"]
ZScore = Literal["normative", "within"]
DriftSource = Literal["self", "pseudo", "robust"]
Registration = Literal["syn", "affine"]
NetKind = Literal["ddpm", "inpaint"]
PredictionType = Literal["epsilon", "sample"]
DiffusionLoss = Literal["all", "healthy"]
DEVICES: tuple[str, ...] = get_args(Device)
ANALYSIS_LEVELS: tuple[str, ...] = get_args(AnalysisLevel)
ENCODINGS: tuple[str, ...] = get_args(Encoding)
SLICES: tuple[str, ...] = get_args(Slices)
ANOMALIES: tuple[str, ...] = get_args(Anomaly)
ZSCORES: tuple[str, ...] = get_args(ZScore)
DRIFT_SOURCES: tuple[str, ...] = get_args(DriftSource)
REGISTRATIONS: tuple[str, ...] = get_args(Registration)
NET_KINDS: tuple[str, ...] = get_args(NetKind)
PREDICTION_TYPES: tuple[str, ...] = get_args(PredictionType)
DIFFUSION_LOSSES: tuple[str, ...] = get_args(DiffusionLoss)
#: How the T1w is hidden inside a hole of the patched encoding: kept, Gaussian-blurred, or removed (0).
T1_HIDING: tuple[str, ...] = get_args(T1Hiding)
SECOND_LOOKS: tuple[str, ...] = get_args(SecondLook)
#: What the second look shows the network of the T1w inside a candidate region: the mirror hemisphere's
#: T1w (blurred where the mirror is itself a candidate or outside the brain), a blurred T1w, or the T1w.
LOOK_T1: tuple[str, ...] = get_args(LookT1)
#: The T1w channel the sampler is shown (:mod:`bids_fcd.sampling.condition`): as acquired, averaged with the
#: mirror hemisphere's, or the mirror hemisphere's.
T1_CONDITIONS: tuple[str, ...] = get_args(T1Condition)


def check_choice(what: str, value: object, choices: tuple[str, ...], flag: str | None = None) -> None:
    """Raise ``ValueError`` saying how to fix it when ``value`` is not one of ``choices``."""
    if value not in choices:
        how = f"pass {flag} with one of them" if flag else "set it to one of them"
        raise ValueError(f"unknown {what} {value!r}: the choices are {', '.join(choices)}; {how}")


@dataclass(frozen=True)
class GridConfig:
    """The model grid: axial slices of MNI152NLin2009aSym space at a fixed resolution.

    The grid is a box in template millimetres: ``shape`` pixels in-plane of ``spacing_mm``,
    centred on ``center_mm`` (x, y), and axial slices every ``spacing_mm`` from ``z_min_mm`` to
    ``z_max_mm``. Slice stacks are (S, C, H, W) with H along template y (posterior→anterior)
    and W along template x (right→left in RAS indices, i.e. increasing x).
    """

    shape: tuple[int, int] = (96, 96)
    spacing_mm: float = 2.0
    center_mm: tuple[float, float] = (0.0, -18.0)
    z_min_mm: float = -50.0
    z_max_mm: float = 80.0


@dataclass(frozen=True)
class NetConfig:
    """Network sizes. ``unet_*`` map onto ``monai.networks.nets.DiffusionModelUNet``.

    ``in_channels`` is 2 for FLAIR ‖ T1w conditioning (the method) or 1 for the FLAIR-only
    ablation. The schedule is T = ``num_train_timesteps`` with linear betas
    ``beta_start`` → ``beta_end`` (the paper's reference: 1000, 0.0015, 0.0155).
    """

    unet_channels: tuple[int, ...] = (16, 32, 64)
    unet_attention: tuple[bool, ...] = (False, False, False)
    unet_res_blocks: int = 1
    unet_head_channels: int = 32
    norm_num_groups: int = 16
    classifier_channels: tuple[int, ...] = (16, 32, 64)
    classifier_attention: tuple[bool, ...] = (False, False, False)
    classifier_res_blocks: int = 1
    in_channels: int = 2
    num_classes: int = len(LOBES)
    num_train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0155
    grid: GridConfig = field(default_factory=GridConfig)
    #: ``ddpm``: the paper's UNet on the whole noisy slice (input x_t ‖ T1w); ``inpaint``: a masked
    #: (patched) diffusion UNet whose input is x_t inside holes pasted into the clean FLAIR around
    #: them ‖ the T1w (hidden inside the holes) ‖ the hole mask (``bids_fcd.sampling.patches``).
    kind: NetKind = "ddpm"
    #: What the UNet predicts (MONAI scheduler ``prediction_type``): ``epsilon`` (the paper) or
    #: ``sample`` (x̂_0; the inpainting model, so that one step from pure noise is already x̂_0).
    prediction_type: PredictionType = "epsilon"

    def __post_init__(self) -> None:
        check_choice("network kind", self.kind, NET_KINDS)
        check_choice("prediction type", self.prediction_type, PREDICTION_TYPES)

    @property
    def unet_in_channels(self) -> int:
        """Input channels of the UNet: the image channels, plus the hole mask for ``inpaint``."""
        return self.in_channels + (1 if self.kind == "inpaint" else 0)



@dataclass(frozen=True)
class SamplerConfig:
    """Encoding to ``noise_level`` (L), then guided DDIM back in ``steps`` (K) steps.

    ``encoding``: ``stochastic`` (forward noising, ``draws`` (D) decodes averaged; the default,
    preset ``fast``), ``patched`` (an inpainting model regenerates every voxel from a hole of pure
    noise in clean context, :mod:`bids_fcd.sampling.patches`; not guided; preset ``patched``; not
    the default: on the template-phantom benchmark its first CPU model did not beat the default, see
    BENCHMARKS.md) or ``deterministic`` (inverse DDIM, the paper's; preset ``paper``). A ``ddpm``
    model asked for ``patched`` runs the ``fast`` preset instead.
    ``guidance_scale`` is *s* in ε̂' = ε̂ − s·√(1−ᾱ_t)·∇ log C(h | x_t, t).
    ``steps=None`` means one step per timestep (K = L). ``seed`` seeds the stochastic encoding.
    ``slices``: ``all`` samples every slice of the grid (the whole cerebrum); ``paper`` only the
    paper's central axial band (the other slices get no anomaly).
    """

    noise_level: int = 300
    steps: int | None = 3
    guidance_scale: float = 20.0
    seed: int = 0
    batch_size: int = 64
    histogram_matching: bool = True
    encoding: Encoding = "stochastic"
    draws: int = 4
    slices: Slices = "all"
    #: ``patched`` encoding (inpainting model): the core every hole regenerates (pixels), the
    #: hidden margin around it (pixels; every voxel is regenerated with at least this much of its
    #: neighbourhood hidden), and how the T1w inside the hole is hidden (:data:`T1_HIDING`).
    patch_core_px: int = 16
    patch_margin_px: int = 8
    t1_hiding: T1Hiding = "blur"
    #: Second look (:mod:`bids_fcd.sampling.second_look`): after the first pseudo-healthy
    #: FLAIR, regions that stand out (robust within-brain z of the smoothed residual or of the FLAIR's
    #: left-right asymmetry above ``look_z``, grown by ``look_dilate_mm``) are regenerated again by
    #: RePaint-style inpainting from ``look_noise_level`` in ``look_steps`` guided DDIM steps, the
    #: real FLAIR forward-noised back outside them at every step and the T1w inside them hidden
    #: (``look_t1``); ``look_draws`` inpaintings are averaged (and, with ``look_shrink``, their residual
    #: brought to the first pass's noise level). ``off`` keeps the first pass. Not the default: on the
    #: phantom cohorts it removes more of each lesion but finds no more (BENCHMARKS.md).
    second_look: SecondLook = "off"
    look_z: float = 3.0
    look_dilate_mm: float = 4.0
    look_noise_level: int = 700
    look_steps: int = 7
    look_draws: int = 2
    look_t1: LookT1 = "mirror"
    #: Bring the inpainted regions' residual to the first pass's noise level (robust SD and median,
    #: :func:`~bids_fcd.postprocessing.candidates.shrink_to_first_pass`); measured worse (BENCHMARKS.md).
    look_shrink: bool = False
    #: The T1w channel the network is shown (:mod:`bids_fcd.sampling.condition`): ``native`` (the paper's),
    #: ``symmetric`` ((y + y_mirror) / 2 inside the brain and its mirror) or ``mirror`` (y_mirror there; the
    #: default since 2026-12-05: on the template-phantom cohorts it finds more lesions at fewer false positives, because
    #: the network no longer redraws a lesion from the lesion's own T1w; BENCHMARKS.md).
    t1_condition: T1Condition = "mirror"

    def __post_init__(self) -> None:
        check_choice("encoding", self.encoding, ENCODINGS, "--encoding")
        check_choice("slice selection", self.slices, SLICES, "--slices")
        check_choice("T1w hiding", self.t1_hiding, T1_HIDING, "--t1-hiding")
        check_choice("second look", self.second_look, SECOND_LOOKS, "--second-look")
        check_choice("second-look T1w hiding", self.look_t1, LOOK_T1, "--look-t1")
        check_choice("T1w condition", self.t1_condition, T1_CONDITIONS, "--t1-condition")


def stride_for(noise_level: int, steps: int | None, num_train_timesteps: int) -> int:
    """Δ = L / K, checked so that MONAI's scheduler visits exactly 0, Δ, …, L.

    Raises ``ValueError`` with the fix when K does not divide L or Δ does not divide T.
    """
    if not 1 <= noise_level < num_train_timesteps:
        raise ValueError(f"noise level L={noise_level} must be in [1, {num_train_timesteps - 1}]")
    k = noise_level if steps is None else steps
    if k < 1 or noise_level % k:
        raise ValueError(f"--steps {k} must divide --noise-level {noise_level} (e.g. steps {noise_level // 5})")
    stride = noise_level // k
    if num_train_timesteps % stride:
        raise ValueError(f"the step size L/K = {stride} must divide T = {num_train_timesteps}; choose other --steps")
    return stride


def check_sampler(cfg: SamplerConfig, num_train_timesteps: int = 1000) -> None:
    """Raise ``ValueError`` (with the fix) when the sampler settings cannot run together."""
    if cfg.second_look != "off":
        try:
            stride_for(cfg.look_noise_level, cfg.look_steps, num_train_timesteps)
        except ValueError as e:
            raise ValueError(f"second look (sampler settings look_noise_level / look_steps): {e}") from None
        if cfg.look_draws < 1 or cfg.look_dilate_mm < 0:
            raise ValueError(f"second look: the sampler setting look_draws ({cfg.look_draws}) must be ≥ 1 and "
                             f"look_dilate_mm ({cfg.look_dilate_mm}) ≥ 0")
    if cfg.encoding != "patched":
        stride_for(cfg.noise_level, cfg.steps, num_train_timesteps)
        return
    k = cfg.steps or 1
    if not 1 <= cfg.noise_level < num_train_timesteps or not 1 <= k <= cfg.noise_level:
        raise ValueError(f"patched encoding: need 1 ≤ --steps ({k}) ≤ --noise-level ({cfg.noise_level}) "
                         f"< {num_train_timesteps}")
    if not 0 <= cfg.patch_margin_px < cfg.patch_core_px:
        raise ValueError(f"--patch-margin {cfg.patch_margin_px} must be below --patch-core {cfg.patch_core_px}")
    if cfg.t1_hiding not in T1_HIDING:
        raise ValueError(f"unknown --t1-hiding {cfg.t1_hiding!r}; choose one of {T1_HIDING}")


#: Sampler presets: ``fast`` holds the defaults (measured best, BENCHMARKS.md); ``patched`` the masked
#: (inpainting) encoding for ``inpaint`` models; ``paper`` is the
#: paper's deterministic inverse DDIM to L = 100 (at K = 10 steps each way on CPU).
SAMPLER_PRESETS: dict[str, dict[str, object]] = {
    "patched": {"encoding": "patched", "noise_level": 999, "steps": 2, "draws": 1, "guidance_scale": 0.0},
    "fast": {"encoding": "stochastic", "noise_level": 300, "steps": 3, "draws": 4, "guidance_scale": 20.0},
    "paper": {"encoding": "deterministic", "noise_level": 100, "steps": 10, "draws": 1, "guidance_scale": 20.0},
}


@dataclass(frozen=True)
class PostConfig:
    """Anomaly map → z-map → clusters.

    ``anomaly``: ``signed`` scores FLAIR − pseudo-healthy (FCD is FLAIR-hyperintense; hypointense
    residuals count as 0 in clusters), ``absolute`` its magnitude. ``zscore``: ``normative``
    against a reference of controls (the default; needs a reference) or ``within`` the brain
    (the paper's). Normative scoring: each map loses its low-frequency drift (block medians of
    ``drift_block_mm``; 0 = off), is z-scored against the reference, re-standardised by its own
    robust spread (``restandardise``), and the residual's z and the FLAIR's own normative z are
    combined as ((1 − w)·z_residual + w·z_FLAIR) / √((1 − w)² + w²) with w = ``flair_weight``
    (0 = the pseudo-healthy residual alone, 1 = the FLAIR-z baseline). ``z_threshold`` and
    ``drift_source`` says where drift is estimated (below). ``z_threshold`` and
    ``min_cluster_mm3`` are calibrated on controls (the reference's leave-one-out calibration);
    1.65 and 150 are the fallbacks.
    """

    smoothing_fwhm_mm: float = 4.0
    z_threshold: float = 1.65
    min_cluster_mm3: float = 150.0
    max_clusters: int = 20
    anomaly: Anomaly = "signed"
    zscore: ZScore = "normative"
    drift_block_mm: float = 8.0
    restandardise: bool = True
    flair_weight: float = 0.5
    #: Where the low-frequency drift is estimated: ``pseudo`` from the pseudo-healthy
    #: FLAIR, which has no lesion when the pseudo-healthy image removes it, so a lesion of any size
    #: keeps its contrast (the FLAIR map loses the pseudo-healthy image's drift; the residual, whose
    #: context shares the FLAIR's bias, loses none); ``robust`` from each map itself, coarse to fine
    #: (blocks 4×, 2×, 1× ``drift_block_mm``), each finer level without the voxels that lie more than
    #: ``drift_cut_sd`` robust SDs above the coarser drift, so a lesion larger than a block does not set
    #: it; ``self`` from each map's block medians, which subtracts lesions larger than a block.
    drift_source: DriftSource = "self"
    drift_cut_sd: float = 0.5
    #: Weight a of a third normative map, the FLAIR map's left-right asymmetry (FLAIR − mirror(FLAIR) of the
    #: drift-free smoothed FLAIR, where both sides are brain): the combined z becomes
    #: ((1 − w)·z_residual + w·z_FLAIR + a·z_asymmetry) / √((1 − w)² + w² + a²). 0 (the default) leaves it out.
    #: A reference setting: ``bids-fcd reference --asymmetry-weight`` records it, and runs scored against that
    #: reference take it from the record.
    asymmetry_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.asymmetry_weight <= 10.0:  # also refuses NaN
            raise ValueError(f"asymmetry_weight = {self.asymmetry_weight} is out of range; use a value in [0, 10] "
                             "(0 leaves the asymmetry map out)")
        check_choice("anomaly", self.anomaly, ANOMALIES, "--anomaly")
        check_choice("z-score", self.zscore, ZSCORES, "--zscore")
        check_choice("drift source", self.drift_source, DRIFT_SOURCES)
        if not -10.0 <= self.drift_cut_sd <= 10.0:  # also refuses NaN
            raise ValueError(f"drift_cut_sd = {self.drift_cut_sd} robust SDs is out of range; use a value in [-10, 10] "
                             "(0.5 is the default)")


@dataclass(frozen=True)
class PreprocConfig:
    """Preprocessing settings.

    ``registration``: ``syn`` (ANTs SyN after an affine, the default: a voxelwise normative
    reference needs the anatomy aligned) or ``affine``. ``working_mm``: images with finer voxels
    are smoothed and resampled to this spacing before N4 and registration (a finer model grid lowers it to
    the grid's spacing; 0 keeps the native grid). ``normalise_percentiles``: brain intensity percentiles mapped
    to −1 and 0.6; nothing is clipped above, so hyperintense tails (lesions) keep their contrast.
    """

    n4: bool = True
    brain_threshold: float = 0.5
    registration: Registration = "syn"
    working_mm: float = 2.0
    normalise_percentiles: tuple[float, float] = (1.0, 50.0)

    def __post_init__(self) -> None:
        check_choice("registration", self.registration, REGISTRATIONS, "--registration")


#: The environment variables bids-fcd reads (the CLI reads them once, :meth:`Environment.from_environ`).
ENV_WORK_DIR = "BIDS_FCD_WORK_DIR"
ENV_MODELS = "BIDS_FCD_MODELS"
ENV_COMPILE = "BIDS_FCD_COMPILE"
ENV_CONTAINER = "BIDS_FCD_CONTAINER"
ENV_IMAGE = "BIDS_FCD_IMAGE"


@dataclass(frozen=True)
class Environment:
    """What the environment says, read once by the CLI and recorded in each run's config.

    ``work_dir``: ``$BIDS_FCD_WORK_DIR`` (the container sets one under /tmp), used when no
    ``--work-dir`` is given; ``models_dir``: ``$BIDS_FCD_MODELS``, where named models are looked up
    (None: the models shipped in the package); ``compile_nets``: ``$BIDS_FCD_COMPILE=1`` wraps the
    networks in ``torch.compile`` while sampling; ``container``/``image``: ``$BIDS_FCD_CONTAINER``
    and ``$BIDS_FCD_IMAGE``, set by the bids-fcd image (GeneratedBy.Container of the derivatives).
    """

    work_dir: str | None = None
    models_dir: str | None = None
    compile_nets: bool = False
    container: str = ""
    image: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Environment:
        """The fields from ``environ`` (``os.environ``); unset or empty variables keep the defaults."""
        return cls(work_dir=environ.get(ENV_WORK_DIR) or None, models_dir=environ.get(ENV_MODELS) or None,
                   compile_nets=environ.get(ENV_COMPILE, "0") == "1", container=environ.get(ENV_CONTAINER, ""),
                   image=environ.get(ENV_IMAGE) or None)


@dataclass(frozen=True)
class RunConfig:
    """One invocation of the participant or group level.

    ``post=None`` means "the cluster-forming settings calibrated for the reference (or model)",
    falling back to :class:`PostConfig` defaults; the resolved value is what is logged.
    ``reference`` is a reference directory (``bids-fcd reference``); None = the model's own.
    ``nprocs``/``omp_nthreads``: CPU threads in all / per process (0 = all cores, the default);
    ``ants_nthreads``: ANTs/ITK threads (1, the default, is the only count at which ANTs' registration
    is bit-reproducible).
    ``overwrite``: recompute participants whose outputs are already complete (else they are skipped).
    ``env``: the environment variables read when the run started (:class:`Environment`).
    """

    bids_dir: str
    output_dir: str
    analysis_level: AnalysisLevel
    participant_label: tuple[str, ...] = ()
    session_label: tuple[str, ...] = ()
    work_dir: str | None = None
    model: str | None = None
    reference: str | None = None
    device: Device = "auto"
    nprocs: int = 0
    omp_nthreads: int = 0
    ants_nthreads: int = 1
    overwrite: bool = False
    skip_bids_validation: bool = False
    bids_filter_file: str | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    post: PostConfig | None = None
    preproc: PreprocConfig = field(default_factory=PreprocConfig)
    env: Environment = field(default_factory=Environment)

    def __post_init__(self) -> None:
        check_choice("analysis level", self.analysis_level, ANALYSIS_LEVELS)
        check_choice("device", self.device, DEVICES, "--device")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (the ``--preset`` fills these; flags override). The defaults are the
    ``default`` preset's (:data:`bids_fcd.training.presets.PRESETS`), except the grid: the preset crops
    the template's full 2 mm grid (:class:`GridConfig`'s default, which the synthesis models use) to
    96 × 80."""

    preset: str = "default"
    epochs: int = 12
    batch_size: int = 16
    lr: float = 5e-4
    classifier_lr: float = 5e-4
    ema_decay: float = 0.995
    seed: int = 0
    classifier_max_t: int = 500
    min_brain_fraction: float = 0.05
    #: ε-loss of the T1w-conditioned diffusion model: ``all`` voxels (the paper) or ``healthy`` only (every
    #: lesion voxel of the ``_roi`` masks, grown by 2 pixels, left out), so the network is never taught to draw
    #: a lesion from what the T1w shows of it (the T1w condition carries the lesion; docs/method.md).
    diffusion_loss: DiffusionLoss = "all"
    net: NetConfig = field(default_factory=NetConfig)

    def __post_init__(self) -> None:
        check_choice("diffusion loss", self.diffusion_loss, DIFFUSION_LOSSES, "--diffusion-loss")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from :func:`to_dict` output.

    Unknown keys raise ``ValueError`` naming them, so a stale config file fails loudly.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ValueError(f"unknown keys for {cls.__name__}: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    hints = _resolved_types(cls)
    for name, value in data.items():
        ftype = hints[name]
        inner = [a for a in typing.get_args(ftype) if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and (dataclasses.is_dataclass(ftype) or inner):
            kwargs[name] = from_dict(ftype if dataclasses.is_dataclass(ftype) else inner[0], value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def save_json(cfg: Any, path: str | Path) -> None:
    """Write a config dataclass as indented JSON (atomically)."""
    from bids_fcd.io import write_json

    write_json(Path(path), to_dict(cfg))


def load_json(cls: type[T], path: str | Path) -> T:
    """Read a config dataclass written by :func:`save_json`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from exc
    return from_dict(cls, data)
