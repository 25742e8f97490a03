"""Where named models are found: a folder of one's own first, then the package's shipped models."""

import pytest

from bids_fcd.nets.locate import DEFAULT_MODEL, ModelError, packaged_models, resolve_model


def test_the_shipped_model_is_package_data():
    assert (packaged_models() / DEFAULT_MODEL / "SHA256SUMS").is_file()
    assert resolve_model(None) == packaged_models() / DEFAULT_MODEL


def test_a_models_folder_is_searched_first_and_does_not_hide_the_shipped_model(tmp_path):
    (tmp_path / "mine").mkdir()
    assert resolve_model("mine", str(tmp_path)) == tmp_path / "mine"
    assert resolve_model(DEFAULT_MODEL, str(tmp_path)) == packaged_models() / DEFAULT_MODEL
    (tmp_path / DEFAULT_MODEL).mkdir()  # a study's own model of the same name wins
    assert resolve_model(DEFAULT_MODEL, str(tmp_path)) == tmp_path / DEFAULT_MODEL
    with pytest.raises(ModelError, match=r"'nonesuch' not found.* or "):
        resolve_model("nonesuch", str(tmp_path))
