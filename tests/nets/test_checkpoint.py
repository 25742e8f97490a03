import pytest
import torch

from bids_fcd.nets.checkpoint import ModelError, load_model, save_model, verify
from bids_fcd.nets.networks import build_classifier, build_unet
from bids_fcd.training.presets import PRESETS

NET = PRESETS["tiny"].net


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    u, c = build_unet(NET), build_classifier(NET)
    sha = save_model(tmp_path / "m", u, c, NET, {"note": "x"})
    m = load_model(str(tmp_path / "m"), torch.device("cpu"))
    assert m.sha256 == sha and m.net == NET and m.meta == {"note": "x"}
    for k, v in u.state_dict().items():
        assert torch.equal(m.unet.state_dict()[k], v)


def test_corrupt_weights_are_refused(tmp_path):
    save_model(tmp_path / "m", build_unet(NET), build_classifier(NET), NET)
    with open(tmp_path / "m" / "unet.pt", "ab") as fh:
        fh.write(b"tamper")
    with pytest.raises(ModelError, match="unet.pt does not match"):
        verify(tmp_path / "m")


def test_unknown_model_name():
    with pytest.raises(ModelError, match="not found"):
        load_model("no-such-model", torch.device("cpu"))


def test_unet_shapes():
    u = build_unet(NET)
    x = torch.zeros(3, 2, *NET.grid.shape)
    out = u(x, timesteps=torch.tensor([0, 5, 9]), class_labels=torch.tensor([0, 1, 5]))
    assert out.shape == (3, 1, *NET.grid.shape)
    logits = build_classifier(NET)(x[:, :1], torch.tensor([0, 5, 9]))
    assert logits.shape == (3, 6)
