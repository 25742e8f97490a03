"""``bids-fcd train``: BIDS dataset → model directory (diffusion UNet + lobe classifier).

Reuses the participant preprocessing and its cache in the work dir; single process or
``torchrun --nproc-per-node N -m bids_fcd train ...`` (DDP). Rank 0 writes checkpoints, the
JSONL loss log and the final model directory (EMA weights of the UNet).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from bids_fcd import __version__
from bids_fcd.bids.layout import InputError, find_inputs, open_layout
from bids_fcd.bids.participants import read_participants, training_subjects
from bids_fcd.commands import TrainRunConfig, config_file
from bids_fcd.config import PreprocConfig, TrainConfig, to_dict
from bids_fcd.interrupts import deferred
from bids_fcd.io import atomic_path, write_json
from bids_fcd.nets.checkpoint import load_model, save_model
from bids_fcd.nets.networks import build_classifier, build_scheduler, build_unet, count_parameters
from bids_fcd.preprocessing.pipeline import PreprocessingError, preprocess
from bids_fcd.progress import progress_bar
from bids_fcd.resources import resolve_device
from bids_fcd.training import ddp
from bids_fcd.training.datasets import LesionSlices, SliceDataset, SubjectSlices
from bids_fcd.training.loops import classifier_epoch, diffusion_epoch, inpaint_epoch, make_loader
from bids_fcd.training.presets import PRESETS
from bids_fcd.workflows.paths import work_dir_for

log = logging.getLogger(__name__)


def train_config(run: TrainRunConfig) -> TrainConfig:
    """The preset with command-line overrides applied."""
    cfg = PRESETS[run.preset]
    over = {k: getattr(run, k) for k in ("epochs", "batch_size", "lr", "diffusion_loss") if getattr(run, k) is not None}
    cfg = dataclasses.replace(cfg, seed=run.seed, **over)
    if run.flair_only:
        cfg = dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, in_channels=1))
    return cfg


def load_subjects(bids_dir: Path, subjects: list[str], work: Path, cfg: TrainConfig, skip_validation: bool,
                  info: ddp.DistInfo) -> list[SubjectSlices]:
    """Preprocess (rank 0 first; cached) and read every training subject's slices."""
    layout = open_layout(bids_dir, validate=not skip_validation)
    rows = read_participants(bids_dir)
    out = []
    for phase in ("preprocess", "read") if info.enabled else ("both",):
        if phase == "read":
            torch.distributed.barrier()
        if phase == "preprocess" and not info.is_main:
            continue
        for s in subjects:
            try:
                inp = find_inputs(layout, s, None, {})
                pre = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, cfg.net.grid, PreprocConfig())
            except (InputError, PreprocessingError) as exc:
                log.error("sub-%s skipped: %s", s, exc)
                continue
            if phase == "preprocess":
                continue
            stack, mask = pre.slices()
            out.append(SubjectSlices(s, stack, mask, pre.roi_slices(), rows.get(s, {}).get("lobe", "n/a")))
    return out


def run_train(run: TrainRunConfig) -> int:
    """Entry of ``bids-fcd train``; returns the exit code. Rank 0 writes ``MODEL_DIR/train_config.json``
    (``run``) beside the model."""
    cfg = train_config(run)
    device = resolve_device(run.device)
    info = ddp.setup(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    bids_dir, model_dir = Path(run.bids_dir), Path(run.model_dir)
    work = work_dir_for(str(model_dir), run.work_dir, run.env.work_dir)
    layout = open_layout(bids_dir, validate=not run.skip_bids_validation)
    subjects = training_subjects(bids_dir, list(run.participant_label), layout)
    log.info("training on %d participants: %s", len(subjects), " ".join(subjects))
    data = load_subjects(bids_dir, subjects, work, cfg, run.skip_bids_validation, info)
    n_brains = run.phantom_brains
    if n_brains:
        from bids_fcd.phantom.grid_brains import grid_brains
        from bids_fcd.phantom.real_anatomy import anatomy_files

        anatomies = tuple(str(p) for p in anatomy_files(Path(run.anatomy), run.anatomy_split)) if run.anatomy else ()
        log.info("adding %d domain-randomised phantom brains (seed %d%s) made on the model grid", n_brains,
                 run.phantom_brain_seed, f", {len(anatomies)} real anatomies" if anatomies else "")
        data += grid_brains(n_brains, run.phantom_brain_seed, cfg.net.grid, anatomies=anatomies)
    if not data:
        log.error("no usable training participant in %s", bids_dir)
        return 1
    if cfg.net.kind == "inpaint" and run.diffusion_loss == "all":
        log.warning("preset %s trains an inpainting model, whose loss always leaves the lesion voxels out; "
                    "--diffusion-loss all applies to whole-slice ('ddpm') models only", cfg.preset)
    ds = SliceDataset(data, cfg.min_brain_fraction, channels=cfg.net.in_channels)
    log.info("%d slices (%d with lesion)", len(ds), int((ds.labels > 0).sum()))

    torch.manual_seed(cfg.seed)
    unet, clf = build_unet(cfg.net).to(device), build_classifier(cfg.net).to(device)
    train_clf = True
    if run.classifier_from:
        donor = load_model(run.classifier_from, device, run.env.models_dir)
        if to_dict(donor.net.grid) != to_dict(cfg.net.grid) or donor.net.classifier_channels != cfg.net.classifier_channels:
            log.error("--classifier-from %s: its grid or classifier size differs from preset %s", run.classifier_from,
                      cfg.preset)
            return 1
        clf.load_state_dict(donor.classifier.state_dict())
        train_clf = False
        log.info("lobe classifier taken from %s (%s); it is not trained again", donor.name, donor.sha256[:12])
    ema = AveragedModel(unet, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
    opt_u = torch.optim.Adam(unet.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(clf.parameters(), lr=cfg.classifier_lr)
    log.info("UNet %.2f M parameters, classifier %.2f M", count_parameters(unet) / 1e6, count_parameters(clf) / 1e6)
    start = 0
    ckpt_path = model_dir / "checkpoint.pt"
    if run.resume:
        if not ckpt_path.exists():
            log.error("--resume: %s does not exist; run without --resume first", ckpt_path)
            return 1
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        unet.load_state_dict(ck["unet"])
        ema.load_state_dict(ck["ema"])
        clf.load_state_dict(ck["classifier"])
        opt_u.load_state_dict(ck["opt_unet"])
        opt_c.load_state_dict(ck["opt_classifier"])
        start = int(ck["epoch"])
        log.info("resuming after epoch %d", start)
    unet_t: torch.nn.Module = DDP(unet) if info.enabled else unet
    clf_t: torch.nn.Module = DDP(clf) if info.enabled else clf
    acp = build_scheduler(cfg.net).alphas_cumprod
    uniform = torch.ones(len(ds))
    dl_u, s_u = make_loader(LesionSlices(ds), uniform, cfg.batch_size, cfg.seed, info)
    # the classifier sees the real slice distribution (uniform draws) with a tempered class-weighted loss
    dl_c, s_c = make_loader(ds, uniform, cfg.batch_size, cfg.seed + 1, info)
    class_w = ds.loss_weights()
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + info.rank)
    if info.is_main:
        model_dir.mkdir(parents=True, exist_ok=True)
    log_path = model_dir / "train_log.jsonl"
    t0 = time.time()
    last: dict[str, float | None] = {}
    if log_path.exists():  # on --resume, the last logged epoch until a new one is run
        lines = log_path.read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
    for epoch in range(start, cfg.epochs):
        s_u.set_epoch(epoch)
        s_c.set_epoch(epoch)
        # a live bar on a terminal; in logs (not a TTY) the per-epoch log line below carries the losses
        bar = progress_bar(total=len(dl_u) + (len(dl_c) if train_clf else 0), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           unit="batch", enabled=info.is_main)

        def step(loss: float, bar: tqdm = bar) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        if cfg.net.kind == "inpaint":
            loss_u = inpaint_epoch(unet_t, ema, opt_u, dl_u, acp, device, gen, step)
        else:
            loss_u = diffusion_epoch(unet_t, ema, opt_u, dl_u, acp, device, gen, step,
                                     healthy_only=cfg.diffusion_loss == "healthy")
        loss_c, acc_c = (classifier_epoch(clf_t, opt_c, dl_c, acp, cfg.classifier_max_t, device, gen, step, class_w)
                         if train_clf else (None, None))
        bar.close()
        last = {"epoch": epoch + 1, "diffusion_mse": loss_u, "classifier_ce": loss_c, "classifier_acc": acc_c,
                "seconds": round(time.time() - t0, 1)}
        if info.is_main:
            log.info("epoch %d: diffusion %s %.4f%s", epoch + 1, "MSE" if cfg.net.kind == "ddpm" else "x0 MSE", loss_u,
                     f", classifier CE {loss_c:.4f} (acc {acc_c:.2f})" if loss_c is not None else
                     " (classifier not trained)")
            with deferred():  # a stop signal waits until the epoch's log line and checkpoint are both written
                with open(log_path, "a") as fh:
                    fh.write(json.dumps(last) + "\n")
                with atomic_path(ckpt_path) as tmp:
                    torch.save({"epoch": epoch + 1, "unet": unet.state_dict(), "ema": ema.state_dict(),
                                "classifier": clf.state_dict(), "opt_unet": opt_u.state_dict(),
                                "opt_classifier": opt_c.state_dict()}, tmp)
        if run.max_minutes and time.time() - t0 > 60.0 * run.max_minutes and epoch + 1 < cfg.epochs:
            log.warning("--max-minutes %g reached after epoch %d of %d; writing the model now (--resume "
                        "continues)", run.max_minutes, epoch + 1, cfg.epochs)
            break
    n_updates = int(ema.n_averaged)
    if info.is_main and n_updates < 3.0 / (1.0 - cfg.ema_decay):
        # measured (preset large at decay 0.999 after 1400 steps): the EMA still held the first epoch's
        # weights and doubled the pseudo-healthy error of the raw weights
        log.warning("the EMA (decay %g, about %d steps wide) saw only %d optimiser steps: the written weights still "
                    "carry the early ones; train longer or lower the preset's ema_decay", cfg.ema_decay,
                    round(1.0 / (1.0 - cfg.ema_decay)), n_updates)
    if info.is_main:
        with deferred():  # the model directory is written whole before a stop signal ends the run
            meta = {"train_config": to_dict(cfg), "participants": subjects,
                    "phantom_brains": {"n": n_brains, "seed": run.phantom_brain_seed,
                                       "anatomy": run.anatomy_split if run.anatomy else "template"},
                    "classifier_from": run.classifier_from,
                    "used": [d.subject for d in data if not d.subject.startswith("grid")],
                    "slices": len(ds), "lesion_slices": int((ds.labels > 0).sum()), "final": last,
                    "world_size": info.world_size, "device": device.type, "software_version": __version__}
            sha = save_model(model_dir, ema.module, clf, cfg.net, meta)
            write_json(model_dir / "split.json", {"train": meta["used"]})
            write_json(model_dir / config_file("train"), {"run": to_dict(run)})
            log.info("model written to %s (id %s)", model_dir, sha[:12])
    ddp.teardown(info)
    return 0
