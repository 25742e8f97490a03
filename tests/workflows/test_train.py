import json

import pytest
import torch

from bids_fcd.cli.main import main
from bids_fcd.nets.checkpoint import load_model


def test_train_writes_a_loadable_model(tiny_model):
    m = load_model(str(tiny_model), torch.device("cpu"))
    assert m.meta["train_config"]["preset"] == "tiny"
    assert sorted(m.meta["used"]) == ["00001", "00002", "00003"]
    assert json.loads((tiny_model / "split.json").read_text())["train"]
    log = [json.loads(line) for line in (tiny_model / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(r["diffusion_mse"] > 0 for r in log)


def test_resume_continues_from_the_last_checkpoint(phantom, work_dir, tmp_path, caplog):
    model = tmp_path / "m"
    args = ["train", str(phantom), str(model), "--preset", "tiny", "--participant-label", "00001", "--work-dir",
            str(work_dir), "--skip-bids-validation"]
    assert main(args + ["--epochs", "1"]) == 0
    # one epoch of one participant is far fewer steps than the tiny preset's EMA (decay 0.9) needs
    assert "the EMA (decay 0.9" in caplog.text
    ck1 = torch.load(model / "checkpoint.pt", weights_only=True)
    assert ck1["epoch"] == 1
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    ck2 = torch.load(model / "checkpoint.pt", weights_only=True)
    assert ck2["epoch"] == 2
    epochs = [json.loads(x)["epoch"] for x in (model / "train_log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2], "resume must not redo epoch 1"
    assert main(["train", str(phantom), str(tmp_path / "none"), "--resume", "--preset", "tiny",
                 "--participant-label", "00001", "--work-dir", str(work_dir), "--skip-bids-validation"]) == 1


def test_inpaint_preset_trains_on_bids_and_grid_brains(phantom, work_dir, tmp_path, tiny_model):
    model = tmp_path / "inp"
    assert main(["train", str(phantom), str(model), "--preset", "inpaint-tiny", "--participant-label", "00001",
                 "--work-dir", str(work_dir), "--skip-bids-validation", "--epochs", "1", "--phantom-brains", "2",
                 "--classifier-from", str(tiny_model)]) == 0
    m = load_model(str(model), torch.device("cpu"))
    assert (m.net.kind, m.net.prediction_type, m.net.unet_in_channels) == ("inpaint", "sample", 3)
    assert m.meta["phantom_brains"]["n"] == 2 and m.meta["used"] == ["00001"]
    donor = load_model(str(tiny_model), torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(m.classifier.state_dict().values(),
                                                 donor.classifier.state_dict().values(), strict=True))
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["diffusion_mse"] > 0


def test_healthy_diffusion_loss_is_recorded_and_changes_the_weights(phantom, work_dir, tmp_path, tiny_model):
    # two of the test phantom's three participants have a lesion: leaving its voxels out must change the UNet
    def train(loss: str):
        model = tmp_path / loss
        assert main(["train", str(phantom), str(model), "--preset", "tiny", "--participant-label", "00001", "00002",
                     "00003", "--work-dir", str(work_dir), "--skip-bids-validation", "--epochs", "1",
                     "--classifier-from", str(tiny_model), "--diffusion-loss", loss]) == 0
        return load_model(str(model), torch.device("cpu"))

    healthy, every = train("healthy"), train("all")
    assert healthy.meta["train_config"]["diffusion_loss"] == "healthy"
    assert every.meta["train_config"]["diffusion_loss"] == "all"
    assert any(not torch.equal(a, b) for a, b in zip(healthy.unet.state_dict().values(),
                                                     every.unet.state_dict().values(), strict=True))
    with pytest.raises(SystemExit) as exc:  # argparse names the choices
        main(["train", str(phantom), str(tmp_path / "bad"), "--preset", "tiny", "--diffusion-loss", "lesion"])
    assert exc.value.code == 2
