"""The normative reference's file format (bids_fcd.nets.reference) and its place inside a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bids_fcd.config import T1_CONDITIONS, PostConfig, SamplerConfig, to_dict
from bids_fcd.nets.checkpoint import ModelError, load_model, save_model, verify, write_sums
from bids_fcd.nets.locate import resolve_model
from bids_fcd.nets.networks import build_classifier, build_unet
from bids_fcd.nets.reference import (
    REFERENCE_FILES,
    SAMPLER_KEYS,
    SAMPLER_LEGACY,
    load_reference,
    model_holding,
    model_reference_dir,
    reference_label,
    sampler_differences,
    save_reference,
)
from bids_fcd.postprocessing.normative import NormativeReference
from bids_fcd.training.presets import PRESETS

NET = PRESETS["tiny"].net


def _reference() -> NormativeReference:
    rng = np.random.default_rng(0)
    cov = rng.random((4, 5, 6)) > 0.3
    stats = {k: (rng.random((4, 5, 6)).astype(np.float32), rng.random((4, 5, 6)).astype(np.float32) + 0.1)
             for k in ("anomaly", "flair")}
    return NormativeReference(cov, stats, 7)


def test_save_and_load_round_trip(tmp_path: Path):
    ref = _reference()
    post = PostConfig(z_threshold=2.5)
    save_reference(tmp_path / "r", ref, np.eye(4), {"post": to_dict(post), "dataset": "d"})
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(REFERENCE_FILES)
    got = load_reference(tmp_path / "r")
    assert got.ref.n == 7 and got.post == post and got.meta["dataset"] == "d"
    assert np.array_equal(got.ref.coverage, ref.coverage)
    for k, (mean, sd) in ref.stats.items():
        assert np.array_equal(got.ref.stats[k][0], mean) and np.array_equal(got.ref.stats[k][1], sd)
    assert reference_label(tmp_path / "r") == "r"


def test_a_missing_file_is_named(tmp_path: Path):
    save_reference(tmp_path / "r", _reference(), np.eye(4), {})
    (tmp_path / "r" / "reference.json").unlink()
    with pytest.raises(ModelError, match="reference.json is missing"):
        load_reference(tmp_path / "r")


def test_a_reference_inside_a_model_is_in_its_checksums(tmp_path: Path):
    model = tmp_path / "m"
    save_model(model, build_unet(NET), build_classifier(NET), NET)
    assert model_reference_dir(model) is None and model_holding(tmp_path / "r") is None
    save_reference(model / "reference", _reference(), np.eye(4), {})
    assert model_holding(model / "reference") == model and reference_label(model / "reference") == "m/reference"
    write_sums(model)
    listed = (model / "SHA256SUMS").read_text()
    assert all(f"reference/{f}" in listed for f in REFERENCE_FILES)
    verify(model)
    loaded = load_model(str(model), torch.device("cpu"))
    assert loaded.reference_dir == model / "reference"


def test_the_shipped_reference_matches_the_default_sampler():
    """Changing a sampler default without rebuilding the shipped reference would make every default run
    z-score against controls sampled differently (the participant level only warns): this fails first."""
    ref = load_reference(resolve_model(None) / "reference")
    # every key is compared, none skipped as missing (a record from before a key existed says what it was built with)
    assert set(SAMPLER_KEYS) <= set(ref.meta["sampler"]) | set(SAMPLER_LEGACY)
    assert sampler_differences(ref.meta, SamplerConfig()) == []
    assert sampler_differences(ref.meta, SamplerConfig(draws=ref.meta["sampler"]["draws"] + 1)) == ["draws"]
    assert sampler_differences(ref.meta, SamplerConfig(second_look="inpaint")) == ["second_look"]
    other = next(c for c in T1_CONDITIONS if c != SamplerConfig().t1_condition)
    assert sampler_differences(ref.meta, SamplerConfig(t1_condition=other)) == ["t1_condition"]  # type: ignore[arg-type]
    assert sum(ref.meta["acquisitions"].values()) == ref.ref.n == len(ref.meta["participants"])
    # the shipped reference was built with the default drift estimate, so default runs score as it did
    assert ref.post is not None and ref.post.drift_source == PostConfig().drift_source
    assert ref.post.asymmetry_weight == PostConfig().asymmetry_weight


def test_second_look_settings_count_only_when_the_second_look_is_on():
    off = {"sampler": to_dict(SamplerConfig())}
    assert sampler_differences(off, SamplerConfig(look_z=5.0)) == []  # off on both sides: look_* change nothing
    on = {"sampler": to_dict(SamplerConfig(second_look="inpaint"))}
    assert sampler_differences(on, SamplerConfig(second_look="inpaint", look_z=5.0)) == ["look_z"]
    assert sampler_differences(on, SamplerConfig()) == ["second_look"]


def test_a_record_from_before_the_drift_source_setting_reads_as_block_medians(tmp_path: Path):
    post = to_dict(PostConfig(z_threshold=5.0))
    del post["drift_source"], post["drift_cut_sd"]
    save_reference(tmp_path / "r", _reference(), np.eye(4), {"post": post})
    got = load_reference(tmp_path / "r").post
    assert got is not None and got.drift_source == "self" and got.z_threshold == 5.0


def test_cluster_flags_keep_the_references_map_settings(tmp_path: Path):
    """A user's --z-threshold must not change how the maps are made: the reference's statistics hold for
    the maps it was built from (drift estimate, FLAIR weight), so those come from its record."""
    from bids_fcd.config import RunConfig
    from bids_fcd.nets.reference import REFERENCE_MAP_FIELDS
    from bids_fcd.workflows.participant import resolve_reference

    built = PostConfig(z_threshold=6.0, drift_source="self", flair_weight=0.4, drift_block_mm=12.0)
    save_reference(tmp_path / "r", _reference(), np.eye(4), {"post": to_dict(built)})
    model = load_model(None, torch.device("cpu"))
    user = PostConfig(z_threshold=3.0, drift_source="pseudo")
    _, post = resolve_reference(RunConfig("b", "o", "participant", reference=str(tmp_path / "r"), post=user), model)
    assert post.z_threshold == 3.0
    assert all(getattr(post, k) == getattr(built, k) for k in REFERENCE_MAP_FIELDS)
    _, post = resolve_reference(RunConfig("b", "o", "participant", reference=str(tmp_path / "r")), model)
    assert post == built


def test_a_record_from_before_the_asymmetry_map_reads_without_it(tmp_path: Path):
    post = to_dict(PostConfig(z_threshold=5.0))
    del post["asymmetry_weight"]
    save_reference(tmp_path / "r", _reference(), np.eye(4), {"post": post})
    got = load_reference(tmp_path / "r").post
    assert got is not None and got.asymmetry_weight == 0.0 and got.z_threshold == 5.0
