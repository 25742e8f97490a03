"""Model directories: ``config.json`` + ``unet.pt`` + ``classifier.pt`` + ``SHA256SUMS``.

Weights are plain state dicts loaded with ``torch.load(..., weights_only=True)``; the sha256 of
every file is checked against SHA256SUMS before loading. ``config.json`` carries the network
config, the software version and free-form training metadata.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bids_fcd import __version__
from bids_fcd.config import NetConfig, PostConfig, from_dict, to_dict
from bids_fcd.io import atomic_path, sha256_bytes, sha256_file, write_json, write_text
from bids_fcd.nets.locate import DEFAULT_MODEL, ModelError, models_root, resolve_model

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelError", "load_model", "models_root", "resolve_model", "save_model",
           "sha256_file", "verify", "write_sums"]
from bids_fcd.nets.networks import build_classifier, build_unet
from bids_fcd.nets.reference import REFERENCE_DIR, REFERENCE_FILES, model_reference_dir

log = logging.getLogger(__name__)

WEIGHT_FILES = ("unet.pt", "classifier.pt")


@dataclass
class LoadedModel:
    """A model ready for sampling (both networks in eval mode on ``device``)."""

    name: str
    path: Path
    sha256: str
    net: NetConfig
    unet: torch.nn.Module
    classifier: torch.nn.Module
    meta: dict[str, Any]
    post: PostConfig

    @property
    def reference_dir(self) -> Path | None:
        """The model's own normative reference (``reference/`` inside it), if it has one."""
        return model_reference_dir(self.path)


def save_model(model_dir: Path, unet: torch.nn.Module, classifier: torch.nn.Module, net: NetConfig,
               meta: dict[str, Any] | None = None, post: PostConfig | None = None) -> str:
    """Write a model directory and return the sha256 of its SHA256SUMS (the model's id).

    ``post`` is the cluster-forming setting calibrated for this model (on validation data); the
    participant level uses it unless the user overrides it.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, module in (("unet.pt", unet), ("classifier.pt", classifier)):
        with atomic_path(model_dir / name) as tmp:
            torch.save({k: v.detach().cpu().float() for k, v in module.state_dict().items()}, tmp)
    cfg = {"format": 1, "software_version": __version__, "net": to_dict(net), "post": to_dict(post or PostConfig()),
           "meta": meta or {}}
    write_json(model_dir / "config.json", cfg)
    return write_sums(model_dir)


def write_sums(model_dir: Path) -> str:
    """(Re)write SHA256SUMS over config.json, the weights and any ``reference/`` files; returns the id."""
    files = ["config.json", *WEIGHT_FILES]
    files += [f"{REFERENCE_DIR}/{f}" for f in REFERENCE_FILES if (model_dir / REFERENCE_DIR / f).exists()]
    lines = [f"{sha256_file(model_dir / f)}  {f}" for f in files]
    write_text(model_dir / "SHA256SUMS", "\n".join(lines) + "\n")
    return sha256_bytes((model_dir / "SHA256SUMS").read_bytes())


def weight_sums(model_dir: Path) -> dict[str, str]:
    """{weight file: sha256} of a model directory (a reference records the networks it was built with)."""
    return {f: sha256_file(model_dir / f) for f in WEIGHT_FILES}


def verify(model_dir: Path) -> str:
    """Check every file against SHA256SUMS; returns the model id (sha256 of SHA256SUMS)."""
    sums = model_dir / "SHA256SUMS"
    if not sums.exists():
        raise ModelError(f"{sums} is missing; the model directory is incomplete")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = model_dir / name.strip()
        if not path.exists():
            raise ModelError(f"{path} is listed in SHA256SUMS but missing")
        if sha256_file(path) != digest:
            raise ModelError(f"{path} does not match its sha256 in SHA256SUMS; the file is corrupt or was changed")
    return sha256_bytes(sums.read_bytes())


def load_model(name_or_dir: str | None, device: torch.device, models_dir: str | None = None) -> LoadedModel:
    """Resolve (names under ``models_dir``, :func:`~bids_fcd.nets.locate.models_root`), verify and load a
    model directory (``weights_only=True``)."""
    path = resolve_model(name_or_dir, models_dir)
    sha = verify(path)
    cfg = json.loads((path / "config.json").read_text())
    net = from_dict(NetConfig, cfg["net"])
    unet, clf = build_unet(net), build_classifier(net)
    unet.load_state_dict(torch.load(path / "unet.pt", map_location="cpu", weights_only=True))
    clf.load_state_dict(torch.load(path / "classifier.pt", map_location="cpu", weights_only=True))
    unet.to(device).eval()
    clf.to(device).eval()
    log.info("model %s (%s) loaded from %s", path.name, sha[:12], path)
    post = from_dict(PostConfig, cfg["post"]) if "post" in cfg else PostConfig()
    return LoadedModel(path.name, path, sha, net, unet, clf, cfg.get("meta", {}), post)
