"""Frozen configuration of the synthesis models (JS-DDPM and the 3D brain DDPM) and their presets.

No side effects at import. ``to_dict``/``from_dict`` of :mod:`bids_fcd.config` give the JSON
round trip written to every model directory's ``config.json``.

Presets of JS-DDPM (:data:`JSDDPM_PRESETS`):
    ``tiny``  — a few thousand parameters on 16×16 slices: tests, seconds.
    ``cpu``   — 0.7 M parameters (channels 16/32/64, attention at the bottleneck) on the product
                grid downsampled to 4 mm (48×48), 3000 steps of 8 slices, stopped at 30 min
                (about 0.6 s a step on one contended core); 50 DDIM steps.
    ``paper`` — the paper's network (channels 64/128/256/256, attention at the two deepest
                levels, two residual blocks, 32 groups) on the full 2 mm grid (96×96; the paper
                used 160×160 at 1.25 mm), batch 32, lr 1e-4 with cosine annealing, EMA 0.999,
                400 DDIM steps with η = 0.2: for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREDICTIONS = ("sample", "v_prediction", "epsilon")


@dataclass(frozen=True)
class JSNetConfig:
    """The 2-channel UNet and its schedule.

    ``prediction``: what the UNet outputs, in MONAI's scheduler names: ``sample`` (x̂_0, the
    default the paper recommends), ``v_prediction`` (v = √ᾱ_t ε − √(1−ᾱ_t) x_0) or ``epsilon``.
    ``self_conditioning`` adds two input channels carrying the previous x̂_0 estimate.
    ``n_bins`` axial z-bins × ``n_pathology`` classes give the 60 conditioning tokens.
    ``embed_dim`` is the width of the pathology and z embeddings before they are combined and
    projected onto the UNet's time-embedding width (4 × channels[0]).
    """

    image_size: tuple[int, int] = (48, 48)
    channels: tuple[int, ...] = (32, 64, 64)
    attention: tuple[bool, ...] = (False, False, True)
    res_blocks: int = 1
    head_channels: int = 32
    norm_groups: int = 16
    self_conditioning: bool = True
    n_bins: int = 30
    n_pathology: int = 2
    embed_dim: int = 64
    prediction: str = "sample"
    num_train_timesteps: int = 1000
    schedule: str = "linear_beta"
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; choose one of {PREDICTIONS}")
        if len(self.channels) != len(self.attention):
            raise ValueError("channels and attention need one entry per UNet level")

    @property
    def n_tokens(self) -> int:
        """Distinct conditioning tokens: n_bins · n_pathology."""
        return self.n_bins * self.n_pathology


@dataclass(frozen=True)
class JSLossConfig:
    """L = Kendall-weighted [Lp(image), Lp(mask), FFL(image)].

    Lp: mean |pred − target|^p with lesion pixels (true mask) weighted ``lesion_weight`` and the
    rest 1, normalised by the mean weight; on the UNet's own target (x_0, v or ε). FFL: focal
    frequency loss (Jiang et al. 2021) between x̂_0 and x_0 of the image channel, on
    ``ffl_patch_factor``² patches, focal exponent α = ``ffl_alpha``, log-scaled weights.
    Kendall et al. (2018): each group g gets a learned s_g = log σ_g² and contributes
    ½·exp(−s_g)·L_g + ½·s_g; ``groups`` maps the three terms onto groups (default: one per term;
    the paper groups the two Lp terms: (0, 0, 1)); ``initial_log_vars`` one per group.
    """

    p: float = 2.25
    lesion_weight: float = 2.0
    ffl_alpha: float = 1.2
    ffl_patch_factor: int = 2
    ffl_log_matrix: bool = True
    kendall: bool = True
    groups: tuple[int, int, int] = (0, 1, 2)
    initial_log_vars: tuple[float, ...] = (0.0, 0.0, 0.5)

    def __post_init__(self) -> None:
        if len(self.initial_log_vars) != max(self.groups) + 1:
            raise ValueError(f"initial_log_vars needs one value per Kendall group ({max(self.groups) + 1})")


@dataclass(frozen=True)
class JSTrainConfig:
    """Optimisation. ``steps`` optimiser steps of ``batch_size`` slices; a fraction
    ``lesion_fraction`` of each batch is drawn (with replacement) from lesion slices, the rest from
    lesion-free slices; ``self_cond_prob`` of the steps feed the previous x̂_0 (Chen et al. 2022);
    ``flip_lr`` mirrors each slice left-right with probability ½ (not in the paper: doubles the
    few lesion slices). Adam with cosine annealing, gradient norm clipped at ``grad_clip``.
    ``max_minutes`` (0 = no limit) stops early and still writes the model."""

    steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-4
    ema_decay: float = 0.999
    lesion_fraction: float = 0.5
    self_cond_prob: float = 0.5
    flip_lr: bool = True
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    max_minutes: float = 0.0


@dataclass(frozen=True)
class JSSampleConfig:
    """DDIM sampling (MONAI ``DDIMScheduler``): ``steps`` steps, stochasticity η = ``eta``, fixed
    micro-batches of ``batch_size`` (oneDNN rounds differently by batch size: a fixed size keeps
    samples bit-identical). Masks are binarised M > 0 and components smaller than
    ``mask_min_pixels`` dropped."""

    steps: int = 50
    eta: float = 0.2
    batch_size: int = 16
    mask_min_pixels: int = 1


@dataclass(frozen=True)
class JSDataConfig:
    """Slices from the product's grid: FLAIR ``[−1, flair_max]`` → [−1, 1], in-plane
    ``downsample`` (image block mean, mask block max), brain fraction ≥ ``min_brain_fraction``."""

    flair_max: float = 2.0
    downsample: int = 2
    min_brain_fraction: float = 0.05


@dataclass(frozen=True)
class JSDDPMConfig:
    """Everything a JS-DDPM model directory needs to rebuild and sample the model."""

    preset: str = "cpu"
    net: JSNetConfig = field(default_factory=JSNetConfig)
    loss: JSLossConfig = field(default_factory=JSLossConfig)
    train: JSTrainConfig = field(default_factory=JSTrainConfig)
    sample: JSSampleConfig = field(default_factory=JSSampleConfig)
    data: JSDataConfig = field(default_factory=JSDataConfig)


JSDDPM_PRESETS: dict[str, JSDDPMConfig] = {
    "tiny": JSDDPMConfig(
        preset="tiny",
        net=JSNetConfig(image_size=(16, 16), channels=(8, 16), attention=(False, True), head_channels=8,
                        norm_groups=4, embed_dim=16, num_train_timesteps=100),
        train=JSTrainConfig(steps=30, batch_size=4, lr=2e-3, ema_decay=0.9, log_every=5),
        sample=JSSampleConfig(steps=5, batch_size=4),
        data=JSDataConfig(downsample=1),
    ),
    "cpu": JSDDPMConfig(
        preset="cpu",
        net=JSNetConfig(image_size=(48, 48), channels=(16, 32, 64), attention=(False, False, True), head_channels=32,
                        norm_groups=8, embed_dim=32),
        train=JSTrainConfig(steps=3000, batch_size=8, lr=5e-4, ema_decay=0.998, max_minutes=30.0),
        sample=JSSampleConfig(steps=50, eta=0.2, batch_size=16),
    ),
    "paper": JSDDPMConfig(
        preset="paper",
        net=JSNetConfig(image_size=(96, 96), channels=(64, 128, 256, 256), attention=(False, False, True, True),
                        res_blocks=2, head_channels=32, norm_groups=32, embed_dim=128),
        train=JSTrainConfig(steps=200_000, batch_size=32, lr=1e-4, ema_decay=0.999, flip_lr=False),
        sample=JSSampleConfig(steps=400, eta=0.2, batch_size=32),
        data=JSDataConfig(downsample=1),
    ),
}


# ---------------------------------------------------------------------------------------------- 3D brains


@dataclass(frozen=True)
class BrainNetConfig:
    """The 3D UNet ε_θ(x_t, t) of healthy template-space brains and its schedule.

    ``image_size`` (X, Y, Z) voxels (the grid downsampled, padded to a multiple of 2^(levels−1)).
    ``in_channels``: 1 = T1w, 2 = T1w + FLAIR. Schedule: MONAI ``scaled_linear_beta`` (β_t = (linspace
    of √β from √beta_start to √beta_end)²), as the paper's scheduler; ε-prediction with MSE (the paper).
    """

    image_size: tuple[int, int, int] = (48, 48, 36)
    in_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 32)
    attention: tuple[bool, ...] = (False, False, True)
    res_blocks: int = 1
    head_channels: int = 32
    norm_groups: int = 8
    prediction: str = "epsilon"
    num_train_timesteps: int = 1000
    schedule: str = "scaled_linear_beta"
    beta_start: float = 0.0015
    beta_end: float = 0.0195

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; choose one of {PREDICTIONS}")
        div = 2 ** (len(self.channels) - 1)
        if any(s % div for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be divisible by {div} for {len(self.channels)} "
                             "UNet levels")


@dataclass(frozen=True)
class BrainTrainConfig:
    """Adam, ``steps`` steps of ``batch_size`` volumes, EMA ``ema_decay``; ``max_minutes`` as for JS-DDPM."""

    steps: int = 600
    batch_size: int = 2
    lr: float = 2e-4
    ema_decay: float = 0.995
    seed: int = 0
    log_every: int = 20
    max_minutes: float = 30.0


@dataclass(frozen=True)
class BrainSampleConfig:
    """DDIM (MONAI ``DDIMScheduler``), ``steps`` steps, η = ``eta`` (1 ≈ DDPM ancestral sampling)."""

    steps: int = 50
    eta: float = 1.0
    batch_size: int = 2


@dataclass(frozen=True)
class BrainDataConfig:
    """Brain-masked template-space volumes from the product's grid: block-mean ``downsample``,
    intensities ``[−1, value_max]`` → [−1, 1] (clipped), zero-padded (−1) to ``image_size``.
    ``controls_only``: without ``--participant-label``, only participants.tsv controls."""

    downsample: int = 2
    value_max: float = 1.5
    controls_only: bool = True


@dataclass(frozen=True)
class BrainDDPMConfig:
    """Everything a 3D brain model directory needs."""

    preset: str = "cpu"
    net: BrainNetConfig = field(default_factory=BrainNetConfig)
    train: BrainTrainConfig = field(default_factory=BrainTrainConfig)
    sample: BrainSampleConfig = field(default_factory=BrainSampleConfig)
    data: BrainDataConfig = field(default_factory=BrainDataConfig)


BRAIN_PRESETS: dict[str, BrainDDPMConfig] = {
    "tiny": BrainDDPMConfig(
        preset="tiny",
        net=BrainNetConfig(image_size=(8, 8, 8), channels=(8, 16), attention=(False, True), head_channels=8,
                           norm_groups=4, num_train_timesteps=100),
        train=BrainTrainConfig(steps=20, batch_size=2, lr=2e-3, ema_decay=0.9, log_every=5, max_minutes=0.0),
        sample=BrainSampleConfig(steps=5, batch_size=2),
        data=BrainDataConfig(downsample=1),
    ),
    "cpu": BrainDDPMConfig(preset="cpu"),
    # the paper's network: channels (128, 128, 256), two residual blocks, attention (256 head channels) at the
    # bottleneck, scaled-linear β; on the 2 mm grid (96 × 96 × 66 → padded to 68; the paper used 84 × 128 × 84)
    "paper": BrainDDPMConfig(
        preset="paper",
        net=BrainNetConfig(image_size=(96, 96, 68), channels=(128, 128, 256), attention=(False, False, True),
                           res_blocks=2, head_channels=256, norm_groups=32),
        train=BrainTrainConfig(steps=100_000, batch_size=2, lr=1e-4, ema_decay=0.999, log_every=100,
                               max_minutes=0.0),
        sample=BrainSampleConfig(steps=1000, eta=1.0, batch_size=2),
        data=BrainDataConfig(downsample=1),
    ),
}
