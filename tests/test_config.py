import pytest

from bids_fcd.config import RunConfig, SamplerConfig, TrainConfig, from_dict, load_json, save_json, to_dict
from bids_fcd.training.presets import PRESETS


def test_json_round_trip_nested(tmp_path):
    cfg = RunConfig(bids_dir="/b", output_dir="/o", analysis_level="participant", participant_label=("01", "02"),
                    sampler=SamplerConfig(noise_level=60, steps=12, guidance_scale=3.5))
    save_json(cfg, tmp_path / "c.json")
    back = load_json(RunConfig, tmp_path / "c.json")
    assert back == cfg
    assert back.sampler.steps == 12 and back.participant_label == ("01", "02")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name):
    cfg = PRESETS[name]
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict(SamplerConfig, {"noise_level": 10, "typo": 1})


def test_configs_are_frozen():
    cfg = SamplerConfig()
    with pytest.raises(AttributeError):
        cfg.noise_level = 5  # type: ignore[misc]


def test_one_lobe_vocabulary():
    import numpy as np

    from bids_fcd.atlas import lobe_of_mm
    from bids_fcd.config import LOBE_WORDS, LOBES, lobe_legend
    from bids_fcd.reports.participant import LOBE_NAMES

    assert tuple(LOBE_WORDS) == LOBES and LOBE_NAMES is LOBE_WORDS
    assert lobe_legend() == "FL frontal, TL temporal, PL parietal, OL occipital, IL insula"
    rng = np.random.default_rng(0)
    codes = set(lobe_of_mm(rng.uniform(-100, 70, size=(4000, 3))).tolist())
    assert codes == set(LOBES[1:])  # the atlas labels with exactly the classifier's lobe codes


def test_defaults_are_the_default_presets():
    import dataclasses

    from bids_fcd.config import SAMPLER_PRESETS, GridConfig, NetConfig

    default = PRESETS["default"]
    assert dataclasses.replace(default, net=dataclasses.replace(default.net, grid=GridConfig())) == TrainConfig()
    assert default.net == NetConfig(grid=dataclasses.replace(GridConfig(), shape=(96, 80)))
    fast = dataclasses.replace(SamplerConfig(), **SAMPLER_PRESETS["fast"])
    assert fast == SamplerConfig()  # the sampler's defaults are the fast preset


@pytest.mark.parametrize("cut", [float("nan"), 11.0, -11.0])
def test_the_robust_drift_cut_is_checked(cut):
    from bids_fcd.config import PostConfig

    with pytest.raises(ValueError, match="drift_cut_sd"):
        PostConfig(drift_cut_sd=cut)
    assert PostConfig(drift_source="robust", drift_cut_sd=1.0).drift_cut_sd == 1.0


def test_second_look_settings_are_checked():
    from bids_fcd.config import check_sampler

    with pytest.raises(ValueError, match="--second-look"):
        SamplerConfig(second_look="twice")
    with pytest.raises(ValueError, match="--look-t1"):
        SamplerConfig(look_t1="zero")
    with pytest.raises(ValueError, match="second look.*must divide"):
        check_sampler(SamplerConfig(second_look="inpaint", look_noise_level=700, look_steps=10))
    with pytest.raises(ValueError, match="look_draws"):
        check_sampler(SamplerConfig(second_look="inpaint", look_draws=0))
    check_sampler(SamplerConfig(second_look="inpaint"))
    check_sampler(SamplerConfig(look_steps=10))  # off: its settings are not used, so not checked
