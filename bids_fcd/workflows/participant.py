"""The participant level: for each participant, preprocessing → method → derivatives.

The only place that knows the order of the stages. Each participant runs in isolation: its
outputs are written under ``OUTPUT_DIR/.staging/<prefix>`` and moved into place only when all
are written, a manifest (sha256 per file) is written last, and a rerun skips participants whose
manifest verifies (``--overwrite`` recomputes). Any error of one participant, a bug included, is
logged on one line with the participant and the file, recorded with its traceback under
``sub-<label>/log/`` (the crash record), its partial outputs are removed, and the others go on;
the exit code is non-zero when any failed. A full disk fails its participant with a message naming
the file and the file system; two in a row stop the run. A stop signal (SIGTERM, SIGINT:
:mod:`bids_fcd.interrupts`) removes the interrupted participant's staged files, writes its crash
record and ends the run. One process at a time works on a participant of one output directory.

Four rooms: this module is the loop (the order of the stages, one participant isolated from
another's failure, exit codes); :mod:`bids_fcd.workflows.outputs` writes the derivatives and the
report; :mod:`bids_fcd.workflows.staging` holds staging, manifests, crash records and the private
temporary directory; :mod:`bids_fcd.workflows.locking` keeps two processes off one participant.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bids_fcd import __version__
from bids_fcd.bids import derivatives as deriv
from bids_fcd.bids.layout import InputError, SubjectInputs, find_inputs, open_layout, read_filter_file, subject_sessions
from bids_fcd.bids.participants import read_participants
from bids_fcd.config import PostConfig, RunConfig
from bids_fcd.interrupts import check as stop_point
from bids_fcd.interrupts import deferred, signal_name
from bids_fcd.io import disk_full, disk_full_message, write_json
from bids_fcd.nets.checkpoint import LoadedModel, ModelError, load_model
from bids_fcd.nets.reference import REFERENCE_MAP_FIELDS, LoadedReference, load_reference, sampler_differences
from bids_fcd.ownership import owner_tag, remove_stale
from bids_fcd.preprocessing.pipeline import PreprocessingError, preprocess
from bids_fcd.resources import apply_threads, resolve_device, resolve_threads
from bids_fcd.timing import stage as timed
from bids_fcd.workflows.analysis import analyse, resolve_sampler
from bids_fcd.workflows.locking import participant_lock
from bids_fcd.workflows.outputs import ReportFailed, post_of, write_outputs
from bids_fcd.workflows.paths import check_output_not_in_input, work_dir_for
from bids_fcd.workflows.staging import (
    crash_path,
    manifest_path,
    one_line,
    outputs_complete,
    private_tmp,
    publish,
    settings_key,
    unpublish,
    write_crash,
)
from bids_fcd.workflows.summary import participant_summary

log = logging.getLogger(__name__)
#: Errors that bad input or short resources cause: reported by their message. Any other exception is a
#: bug, reported as one (:func:`failure_message`); either fails its participant alone.
PARTICIPANT_ERRORS = (PreprocessingError, InputError, ValueError, OSError, RuntimeError, MemoryError, EOFError)


@dataclass
class ParticipantResult:
    """What happened to one participant/session; ``disk_full`` when a write found no space."""

    prefix: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    clusters: int | None = None
    disk_full: bool = False


def run_one(inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, device: torch.device,
            ref: LoadedReference | None = None) -> ParticipantResult:
    """Preprocess, analyse and write one participant; never raises but :class:`KeyboardInterrupt`
    (a stop signal: :class:`~bids_fcd.interrupts.Interrupted`): any failure is its result and crash record.

    One process at a time works on a participant of one output directory (:func:`participant_lock`):
    another one waits, then skips the outputs the first completed. Outputs are staged and moved into
    place together; the manifest is written last, so a run killed at any point leaves either the
    previous complete outputs or none that verify.
    """
    start = time.time()
    out_dir = Path(cfg.output_dir)
    work = work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)
    where = [out_dir]  # the folder being written, for a disk-full message
    try:
        key = settings_key(cfg, model, ref, inp)
        if not cfg.overwrite and outputs_complete(out_dir, inp, key):
            log.info("%s: outputs complete (manifest verified); skipped (use --overwrite to recompute)", inp.prefix)
            return ParticipantResult(inp.prefix, True, "skipped", 0.0)
        with participant_lock(out_dir, inp.prefix) as lock:
            if lock.waited and not cfg.overwrite and outputs_complete(out_dir, inp, key):
                log.info("%s: outputs completed by the other process (manifest verified); skipped", inp.prefix)
                return ParticipantResult(inp.prefix, True, "skipped", 0.0)
            if lock.held:  # no other process works on it here: whatever is staged for it was left behind
                for p in (out_dir / ".staging").glob(f"{inp.prefix}.*"):
                    shutil.rmtree(p, ignore_errors=True)
            return _run_locked(inp, cfg, model, device, ref, key, work, where, start)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever one participant raises, the others still run
        return participant_failed(out_dir, inp, exc, start, where[0])


def _run_locked(inp: SubjectInputs, cfg: RunConfig, model: LoadedModel, device: torch.device,
                ref: LoadedReference | None, key: str, work: Path, where: list[Path], start: float) -> ParticipantResult:
    """:func:`run_one` once the participant's lock is held; a stop signal writes the crash record and
    goes on up. ``where[0]`` follows the folder being written."""
    out_dir = Path(cfg.output_dir)
    stage = out_dir / ".staging" / f"{inp.prefix}.{owner_tag()}"
    report_error: ReportFailed | None = None
    done = False
    try:
        remove_stale(out_dir / ".staging", f"{inp.prefix}.*")
        shutil.rmtree(stage, ignore_errors=True)
        with private_tmp(work):
            where[0] = work / inp.prefix
            pre = preprocess(inp.t1w, inp.flair, inp.roi, work / inp.prefix, model.net.grid, cfg.preproc)
            stack, mask = pre.slices()
            stop_point()
            res = analyse(model, stack, mask, cfg.sampler, post_of(cfg), device, ref.ref if ref is not None else None,
                          cfg.env.compile_nets)
            where[0] = out_dir
            stop_point()
            with timed("write"):
                try:
                    written = write_outputs(stage, inp, cfg, model, pre, res, stack, ref)
                except ReportFailed as exc:
                    report_error = exc
                    written = sorted(p for p in stage.rglob("*") if p.is_file() and ".tmp" not in p.name)
        stop_point()  # a stop signal received while writing (and swallowed there) stops here, before publishing
        with deferred():  # a stop signal waits until the outputs and their manifest are in place (or removed)
            manifest_path(out_dir, inp).unlink(missing_ok=True)  # the old outputs stop verifying from here on
            files = publish(stage, out_dir, written)
            if report_error is None:
                try:
                    write_json(manifest_path(out_dir, inp), {"participant": inp.prefix, "settings_sha256": key,
                                                             "software_version": __version__, "files": files})
                except BaseException:
                    unpublish(out_dir, files)  # no outputs without their manifest
                    raise
                crash_path(out_dir, inp).unlink(missing_ok=True)
                done = True
        if report_error is not None:
            log.error("%s", report_error)
            write_crash(out_dir, inp, str(report_error), "".join(traceback.format_exception(report_error)))
            return ParticipantResult(inp.prefix, False, str(report_error), time.time() - start)
        log.info("%s: done, %d clusters, top lobe %s (%.0f s)", inp.prefix, len(res.clusters),
                 max(res.lobe_probabilities, key=lambda k: res.lobe_probabilities[k]), time.time() - start)
        return ParticipantResult(inp.prefix, True, seconds=time.time() - start, clusters=len(res.clusters))
    except KeyboardInterrupt as exc:
        if not done:
            name = signal_name(getattr(exc, "signum", signal.SIGINT))
            message = (f"stopped by {name} before its outputs were complete; nothing of this run was published: "
                       "rerun the same command to resume")
            log.error("%s: %s (crash record: %s)", inp.prefix, message, crash_path(out_dir, inp))
            write_crash(out_dir, inp, message, "".join(traceback.format_exception(exc)))
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        try:
            (out_dir / ".staging").rmdir()  # only when empty; another process may still stage there
        except OSError:
            pass


def failure_message(exc: BaseException) -> str:
    """One line for the user: the error's own message when bad input or resources explain it
    (:data:`PARTICIPANT_ERRORS`), else the exception's type and message, called a bug."""
    text = one_line(str(exc))
    if isinstance(exc, PARTICIPANT_ERRORS):
        return text or type(exc).__name__
    return (f"unexpected {type(exc).__name__}{': ' + text if text else ''}; this is a bug in bids-fcd: please "
            "report it with the crash record")


def participant_failed(out_dir: Path, who: SubjectInputs | tuple[str, str | None], exc: BaseException,
                       start: float, where: Path | None = None) -> ParticipantResult:
    """Log one line, write the crash record (with the traceback of ``exc``) and return the failure.
    ``where``: the folder being written, named when the disk was full."""
    subject, session = (who.subject, who.session) if isinstance(who, SubjectInputs) else who
    prefix = deriv.participant_prefix(subject, session)
    full = disk_full(exc)
    message = disk_full_message(full, where or out_dir) if full is not None else failure_message(exc)
    log.error("%s failed: %s (crash record: %s)", prefix, message, crash_path(out_dir, (subject, session)))
    log.debug("%s: traceback", prefix, exc_info=exc)
    write_crash(out_dir, (subject, session), message, "".join(traceback.format_exception(exc)))
    return ParticipantResult(prefix, False, message, time.time() - start, disk_full=full is not None)


def resolve_reference(cfg: RunConfig, model: LoadedModel) -> tuple[LoadedReference | None, PostConfig]:
    """The normative reference (``--reference`` or the model's own) and the resolved post setting.

    Precedence for the cluster setting: the user's flags (``cfg.post``), then the setting calibrated
    on the reference, then the model's; how the scored maps are made (drift removal, FLAIR weight,
    re-standardisation: :data:`REFERENCE_MAP_FIELDS`) always comes from the reference's record.
    Without any reference the z-map falls back to within-brain scoring, with a warning. A reference
    built with other sampler settings is used with a warning.
    """
    ref_dir = Path(cfg.reference) if cfg.reference else model.reference_dir
    ref = load_reference(ref_dir) if ref_dir is not None else None
    post = cfg.post or (ref.post if ref is not None and ref.post is not None else model.post)
    if cfg.post is not None and ref is not None and ref.post is not None:
        # the reference's statistics hold for the maps it was built from: keep how those were made
        post = dataclasses.replace(post, **{k: getattr(ref.post, k) for k in REFERENCE_MAP_FIELDS})
    if post.zscore == "normative" and ref is None:
        log.warning("model %s has no normative reference and --reference was not given: z-scoring within the "
                    "brain instead (rim and sulcal residuals can outrank lesions; build one with "
                    "`bids-fcd reference`)", model.name)
        post = dataclasses.replace(post, zscore="within")
    if ref is not None and post.zscore == "normative":
        differ = sampler_differences(ref.meta, cfg.sampler)
        if differ:
            log.warning("the reference %s was built with other sampler settings (%s); its z-scores and calibrated "
                        "clusters may not hold: build a reference with these settings", ref.path, ", ".join(differ))
        rpost = ref.meta.get("post", {})
        if rpost and (rpost.get("smoothing_fwhm_mm"), rpost.get("anomaly")) != (post.smoothing_fwhm_mm, post.anomaly):
            log.warning("the reference %s was built for another anomaly map (smoothing %s mm, %s)", ref.path,
                        rpost.get("smoothing_fwhm_mm"), rpost.get("anomaly"))
    return ref, post


def _participant(layout: Any, subject: str, session: str | None, filters: dict[str, dict[str, Any]], cfg: RunConfig,
                 model: LoadedModel, device: torch.device, ref: LoadedReference | None) -> ParticipantResult:
    """Find one participant/session's inputs and :func:`run_one` it; a failure is its result."""
    prefix = deriv.participant_prefix(subject, session)
    out_dir = Path(cfg.output_dir)
    try:
        inp = find_inputs(layout, subject, session, filters)
    except InputError as exc:
        log.error("%s", exc)
        write_crash(out_dir, (subject, session), str(exc))
        return ParticipantResult(prefix, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug finding one participant's files stops no other
        return participant_failed(out_dir, (subject, session), exc, time.time())
    log.info("%s: T1w %s, FLAIR %s", prefix, inp.t1w.name, inp.flair.name)
    return run_one(inp, cfg, model, device, ref)


def run_participant_level(cfg: RunConfig) -> int:
    """Run every selected participant; returns the exit code (0 all ok, 1 any failed).

    Order: cheap checks, threads and determinism, the model (verified against SHA256SUMS), the
    dataset index; only then is anything written. A participant that finds the disk full fails
    alone; when two in a row do, the run stops. A stop signal (SIGTERM, SIGINT) ends the loop with
    :class:`~bids_fcd.interrupts.Interrupted` after the current participant's crash record.
    """
    bids_dir, out_dir = Path(cfg.bids_dir), Path(cfg.output_dir)
    work = work_dir_for(cfg.output_dir, cfg.work_dir, cfg.env.work_dir)
    check_output_not_in_input(bids_dir, out_dir, work)
    device = resolve_device(cfg.device)
    threads = resolve_threads(cfg.nprocs, cfg.omp_nthreads)
    apply_threads(threads, cfg.ants_nthreads)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    log.info("device %s, %d CPU thread(s), %d for ANTs", device, threads, cfg.ants_nthreads)
    try:
        model = load_model(cfg.model, device, cfg.env.models_dir)
        ref, post = resolve_reference(dataclasses.replace(cfg, sampler=resolve_sampler(cfg.sampler, model)), model)
    except ModelError as exc:
        log.error("%s", exc)
        return 1
    cfg = dataclasses.replace(cfg, post=post, sampler=resolve_sampler(cfg.sampler, model))
    log.info("z-map: %s%s; clusters: z > %g, at least %g mm3", post.zscore,
             f" against {ref.path} ({ref.ref.n} controls)" if ref is not None else "", post.z_threshold,
             post.min_cluster_mm3)
    layout = open_layout(bids_dir, validate=not cfg.skip_bids_validation, database_dir=None)
    filters = read_filter_file(Path(cfg.bids_filter_file) if cfg.bids_filter_file else None)
    subjects = list(cfg.participant_label) or sorted(layout.get_subjects())
    missing = [s for s in subjects if s not in layout.get_subjects()]
    read_participants(bids_dir)  # fail early on a malformed participants.tsv
    deriv.write_dataset_files(out_dir, bids_dir, cfg.env)
    results: list[ParticipantResult] = []
    for s in missing:
        log.error("sub-%s: not found in %s (check --participant-label)", s, bids_dir)
        results.append(ParticipantResult(f"sub-{s}", False, "participant not found"))
    todo = [(subject, session) for subject in subjects if subject not in missing
            for session in subject_sessions(layout, subject, cfg.session_label)]
    try:
        for i, (subject, session) in enumerate(todo):
            if len(results) >= 2 and results[-1].disk_full and results[-2].disk_full:
                rest = todo[i:]
                log.error("the disk is still full after two participants: stopping; %d not started (%s); free space "
                          "and rerun the same command", len(rest), " ".join(deriv.participant_prefix(*w) for w in rest))
                results += [ParticipantResult(deriv.participant_prefix(*w), False, "not started: the disk is full",
                                              disk_full=True) for w in rest]
                break
            stop_point()
            results.append(_participant(layout, subject, session, filters, cfg, model, device, ref))
    except KeyboardInterrupt as exc:
        name = signal_name(getattr(exc, "signum", signal.SIGINT))
        log.error("participant level stopped by %s after %d of %d participants; rerun the same command to resume "
                  "(complete participants are skipped)", name, len(results) - len(missing), len(todo))
        raise
    failed = [r for r in results if not r.ok]
    skipped = sum(r.message == "skipped" for r in results)
    log.info("participant level: %d ok (%d skipped as complete), %d failed", len(results) - len(failed), skipped,
             len(failed))
    log.info("%s", participant_summary(results))
    for r in failed:
        log.error("  %s: %s", r.prefix, r.message)
    return 1 if failed or not results else 0
