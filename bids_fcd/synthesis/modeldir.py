"""Synthesis model directories: ``config.json`` + ``ema.pt`` (+ ``model.pt``) + ``train_log.jsonl`` +
``MODEL_CARD.md`` + ``SHA256SUMS``.

Weights are plain float32 state dicts written with ``torch.save`` and read with
``torch.load(..., weights_only=True)`` after every file listed in SHA256SUMS is checked; the
model's id is the sha256 of SHA256SUMS (as for the detection models, :mod:`bids_fcd.nets.checkpoint`).
``ema.pt`` holds the EMA weights used for sampling, ``model.pt`` the raw weights of the last step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bids_fcd import __version__
from bids_fcd.config import from_dict, to_dict
from bids_fcd.io import atomic_path, sha256_file, write_json, write_text

log = logging.getLogger(__name__)

FORMAT = 1
WEIGHTS = ("ema.pt", "model.pt")


class SynthesisModelError(ValueError):
    """A synthesis model directory is missing, incomplete, corrupt or of another kind."""


@dataclass
class LoadedSynthesisModel:
    """A synthesis model ready for sampling: ``model`` is the EMA network in eval mode."""

    path: Path
    kind: str
    sha256: str
    config: Any
    model: torch.nn.Module
    meta: dict[str, Any]


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().float() for k, v in module.state_dict().items()}


def save(model_dir: Path, kind: str, config: Any, ema: torch.nn.Module, raw: torch.nn.Module,
         meta: dict[str, Any], card: str) -> str:
    """Write the model directory (the train log, if any, is already there) and return the model id."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, module in (("ema.pt", ema), ("model.pt", raw)):
        with atomic_path(model_dir / name) as tmp:
            torch.save(_state(module), tmp)
    doc = {"format": FORMAT, "kind": kind, "software_version": __version__, "config": to_dict(config), "meta": meta}
    write_json(model_dir / "config.json", doc)
    write_text(model_dir / "MODEL_CARD.md", card)
    files = ["config.json", *WEIGHTS, "MODEL_CARD.md"] + (["train_log.jsonl"] if (model_dir / "train_log.jsonl").exists()
                                                           else [])
    # SHA256SUMS last: a directory without it (an interrupted save) never loads
    write_text(model_dir / "SHA256SUMS", "".join(f"{sha256_file(model_dir / f)}  {f}\n" for f in files))
    return hashlib.sha256((model_dir / "SHA256SUMS").read_bytes()).hexdigest()


def verify(model_dir: Path) -> str:
    """Check every file against SHA256SUMS; returns the model id."""
    sums = model_dir / "SHA256SUMS"
    if not sums.exists():
        raise SynthesisModelError(f"{sums} is missing: {model_dir} is not a finished synthesis model directory "
                                  "(train one with `bids-fcd synthesize lesions train`)")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = model_dir / name.strip()
        if not path.exists() or sha256_file(path) != digest:
            raise SynthesisModelError(f"{path} is missing or does not match its sha256 in SHA256SUMS; the model "
                                      "directory is corrupt or was changed: train it again")
    return hashlib.sha256(sums.read_bytes()).hexdigest()


def load(model_dir: Path, kind: str, config_cls: type, build: Any, device: torch.device) -> LoadedSynthesisModel:
    """Verify and load a model of ``kind``; ``build(config) → nn.Module`` makes the empty network."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise SynthesisModelError(f"{model_dir}/config.json is missing: is {model_dir} a synthesis model directory?")
    sha = verify(model_dir)
    doc = json.loads((model_dir / "config.json").read_text())
    if doc.get("kind") != kind:
        raise SynthesisModelError(f"{model_dir} holds a {doc.get('kind')!r} model, not {kind!r}; use the matching "
                                  "`bids-fcd synthesize` subcommand")
    cfg: Any = from_dict(config_cls, doc["config"])
    net = build(cfg)
    net.load_state_dict(torch.load(model_dir / "ema.pt", map_location="cpu", weights_only=True))
    net.to(device).eval()
    log.info("%s model %s (%s) loaded", kind, model_dir, sha[:12])
    return LoadedSynthesisModel(model_dir, kind, sha, cfg, net, doc.get("meta", {}))
