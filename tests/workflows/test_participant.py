"""The participant loop: any error of one participant, a bug included, fails that participant alone."""

from __future__ import annotations

import json

import pytest

import bids_fcd.workflows.participant as participant
from bids_fcd.cli.main import main
from bids_fcd.preprocessing.errors import PreprocessingError
from bids_fcd.workflows.participant import failure_message

SAMPLER = ["--encoding", "stochastic", "--noise-level", "20", "--steps", "5", "--guidance-scale", "5", "--draws", "1",
           "--skip-bids-validation"]


def test_an_unexpected_exception_fails_its_participant_alone(phantom, tiny_model, work_dir, tmp_path, monkeypatch,
                                                            caplog):
    real = participant.preprocess

    def broken_for_one(t1w, *args, **kwargs):
        if "sub-00001" in t1w.name:
            raise IndexError("index 0 is out of bounds for axis 0 with size 0")
        return real(t1w, *args, **kwargs)

    monkeypatch.setattr(participant, "preprocess", broken_for_one)
    out = tmp_path / "out"
    code = main([str(phantom), str(out), "participant", "--model", str(tiny_model), "--work-dir", str(work_dir),
                 "--participant-label", "00001", "00003", *SAMPLER])
    assert code == 1
    assert (out / "sub-00003" / "log" / "sub-00003_manifest.json").exists(), "the other participant completes"
    assert not (out / "sub-00003" / "log" / "sub-00003_crash.json").exists()
    crash = json.loads((out / "sub-00001" / "log" / "sub-00001_crash.json").read_text())
    assert crash["message"].startswith("unexpected IndexError: index 0 is out of bounds")
    assert "broken_for_one" in crash["traceback"] and "IndexError" in crash["traceback"]
    assert not (out / "sub-00001" / "anat").exists(), "no partial outputs"
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "sub-00001 failed" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "sub-00001_crash.json" in lines[0]


@pytest.mark.parametrize("exc, words", [
    (PreprocessingError("a.nii.gz: the file is empty"), "a.nii.gz: the file is empty"),
    (RuntimeError("ITK says\n  no"), "ITK says no"),
    (MemoryError(), "MemoryError"),
    (KeyError("lobe"), "unexpected KeyError: 'lobe'; this is a bug in bids-fcd"),
    (AttributeError(), "unexpected AttributeError; this is a bug"),
])
def test_failure_messages_are_one_line_and_call_a_bug_a_bug(exc, words):
    message = failure_message(exc)
    assert message.startswith(words) and "\n" not in message
