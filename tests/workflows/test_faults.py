"""Faults an HPC run meets, on the tiny phantom and model: a stop signal (SLURM's SIGTERM at the time
limit, Ctrl-C), two processes given one participant, and a full disk.

Each checks what is left: no half-published outputs, no manifest for incomplete ones, the crash
record, a reusable work directory, and a rerun that gives the outputs of an uninterrupted run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bids_fcd.cli.main import main
from bids_fcd.io import sha256_file

pytestmark = pytest.mark.usefixtures("stop_signals_at_their_defaults")

SAMPLER = ["--encoding", "stochastic", "--noise-level", "20", "--steps", "5", "--guidance-scale", "5", "--draws", "1",
           "--skip-bids-validation"]


def _cli(ds: Path, out: Path, work: Path, model: Path, *labels: str) -> list[str]:
    return [str(ds), str(out), "participant", "--model", str(model), "--work-dir", str(work), *SAMPLER,
            "--participant-label", *labels]


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "bids_fcd", *args], stdout=subprocess.DEVNULL, stderr=fh)


def _anat_hashes(out: Path, prefix: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / prefix / "anat").iterdir())}


def _manifest_verifies(out: Path, prefix: str) -> bool:
    man = json.loads((out / prefix / "log" / f"{prefix}_manifest.json").read_text())
    return all(sha256_file(out / rel) == digest for rel, digest in man["files"].items())


def _leftovers(work: Path, out: Path) -> list[Path]:
    """What a stopped or failed run must not leave: partial cache folders, private temporary
    directories, staging folders, lock files."""
    return [*work.rglob("*.partial"), *work.glob("tmp.*"), *out.glob(".staging"), *out.glob(".locks")]


def test_sigterm_stops_the_run_and_a_rerun_matches_an_uninterrupted_one(phantom, tiny_model, work_dir,
                                                                        participant_run, tmp_path):
    out = tmp_path / "out"
    args = _cli(phantom, out, work_dir, tiny_model, "00002")
    proc = _spawn(args, tmp_path / "stderr.txt")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # stop it while it writes its outputs
        staged = list((out / ".staging").rglob("*.nii.gz")) if (out / ".staging").exists() else []
        if len(staged) >= 3:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    sent = time.time()
    proc.wait(timeout=60)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 143, f"exit code {proc.returncode}; the run may have finished first\n{err[-3000:]}"
    assert time.time() - sent < 30, "the run stops within seconds"
    assert "stopped by SIGTERM" in err and "rerun the same command" in err
    crash = json.loads((out / "sub-00002" / "log" / "sub-00002_crash.json").read_text())
    assert "stopped by SIGTERM" in crash["message"]
    assert not (out / "sub-00002" / "log" / "sub-00002_manifest.json").exists()
    assert not (out / "sub-00002" / "anat").exists() and not (out / "sub-00002.html").exists(), "nothing published"
    assert not _leftovers(work_dir, out)
    assert main(args) == 0
    assert _anat_hashes(out, "sub-00002") == _anat_hashes(participant_run, "sub-00002")
    assert not (out / "sub-00002" / "log" / "sub-00002_crash.json").exists(), "the rerun clears the crash record"


def test_sigint_exits_130_with_the_crash_record(phantom, tiny_model, work_dir, tmp_path, monkeypatch):
    import bids_fcd.workflows.participant as wp

    def interrupted_analysis(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the participant is being analysed
        time.sleep(5)
        raise AssertionError("SIGINT did not stop the run")

    monkeypatch.setattr(wp, "analyse", interrupted_analysis)
    out = tmp_path / "out"
    assert main(_cli(phantom, out, work_dir, tiny_model, "00003")) == 130
    crash = json.loads((out / "sub-00003" / "log" / "sub-00003_crash.json").read_text())
    assert "stopped by SIGINT" in crash["message"]
    assert not (out / "sub-00003" / "anat").exists() and not _leftovers(work_dir, out)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the previous handler is back"


def test_two_processes_on_one_participant_compute_it_once(phantom, tiny_model, work_dir, tmp_path):
    out = tmp_path / "out"
    args = _cli(phantom, out, work_dir, tiny_model, "00001")
    procs = [_spawn(args, tmp_path / f"stderr{i}.txt") for i in range(2)]
    for p in procs:
        p.wait(timeout=600)
    logs = [(tmp_path / f"stderr{i}.txt").read_text() for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(t[-2000:] for t in logs)
    done = [t for t in logs if "sub-00001: done" in t]
    waited = [t for t in logs if "waiting for it to finish" in t]
    assert len(done) == 1 and len(waited) == 1, "one computes, the other waits"
    assert "outputs completed by the other process (manifest verified); skipped" in waited[0]
    assert _manifest_verifies(out, "sub-00001")
    assert not _leftovers(work_dir, out)


def test_a_full_disk_fails_its_participant_alone_and_the_rerun_completes(phantom, tiny_model, work_dir, tmp_path,
                                                                         monkeypatch, caplog):
    import bids_fcd.workflows.outputs as wo

    real = wo.write_nifti

    def full_for_sub_00001(path, img):
        if "sub-00001" in Path(path).name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, img)

    monkeypatch.setattr(wo, "write_nifti", full_for_sub_00001)
    out = tmp_path / "out"
    args = _cli(phantom, out, work_dir, tiny_model, "00001", "00003")
    assert main(args) == 1
    crash = json.loads((out / "sub-00001" / "log" / "sub-00001_crash.json").read_text())
    assert crash["message"].startswith("the disk is full writing ") and str(out) in crash["message"], crash["message"]
    assert "free space there or write to another disk, then rerun the same command" in crash["message"]
    assert "the disk is full writing" in caplog.text
    assert not (out / "sub-00001" / "log" / "sub-00001_manifest.json").exists()
    assert not (out / "sub-00001" / "anat").exists(), "nothing half-published"
    assert _manifest_verifies(out, "sub-00003"), "the other participant is tried"
    assert not _leftovers(work_dir, out)
    monkeypatch.setattr(wo, "write_nifti", real)
    assert main(args) == 0, "the work directory is reusable"
    assert _manifest_verifies(out, "sub-00001")


def test_the_run_stops_when_the_disk_stays_full(phantom, tiny_model, work_dir, tmp_path, monkeypatch, caplog):
    import bids_fcd.workflows.participant as wp

    calls = []

    def no_space(t1w, *args, **kwargs):
        calls.append(t1w)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(work_dir / "x.nii.gz"))

    monkeypatch.setattr(wp, "preprocess", no_space)
    out = tmp_path / "out"
    assert main(_cli(phantom, out, work_dir, tiny_model, "00001", "00002", "00003")) == 1
    assert len(calls) == 2, "two participants in a row found the disk full: the third is not started"
    assert "the disk is still full after two participants: stopping; 1 not started (sub-00003)" in caplog.text
    crash = json.loads((out / "sub-00001" / "log" / "sub-00001_crash.json").read_text())
    assert f"the disk is full writing {work_dir / 'x.nii.gz'}" in crash["message"]


def test_sigterm_during_training_keeps_the_last_complete_epoch_and_resume_continues(phantom, work_dir, tmp_path,
                                                                                  monkeypatch):
    import torch

    import bids_fcd.workflows.train as wt

    real, calls = wt.classifier_epoch, []

    def stopped_in_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(wt, "classifier_epoch", stopped_in_the_second_epoch)
    model = tmp_path / "m"
    args = ["train", str(phantom), str(model), "--preset", "tiny", "--participant-label", "00001", "--work-dir",
            str(work_dir), "--skip-bids-validation", "--epochs", "2"]
    assert main(args) == 143
    assert torch.load(model / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert [json.loads(x)["epoch"] for x in (model / "train_log.jsonl").read_text().splitlines()] == [1]
    assert not (model / "SHA256SUMS").exists(), "no model is written from an interrupted training"
    monkeypatch.setattr(wt, "classifier_epoch", real)
    assert main([*args, "--resume"]) == 0
    assert torch.load(model / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert [json.loads(x)["epoch"] for x in (model / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert (model / "SHA256SUMS").exists()
