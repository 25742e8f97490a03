"""Where the time goes: one phantom participant through the participant level, stage by stage.

Usage::

    python benchmarks/speed.py OUT [--size full|tiny] [--nprocs N] [--preset fast|paper]
                                   [--slices all|paper] [--scaling] [--write-benchmarks]

Makes a phantom participant (``bids-fcd phantom OUT/bids --n-fcd 1 --n-hc 0 --seed S --size SIZE``;
full = 1 mm T1w + 3D FLAIR), runs the participant level in this process through
``bids_fcd.cli.main.main`` inside :func:`bids_fcd.timing.record` with a fresh work directory, and
prints one table: every recorded stage with its seconds and share of the end-to-end time (the
import of the workflow included; "unstaged" is what no stage covered), the sampler per slice,
peak RSS (``getrusage``, this process and its children; the phantom is made in a subprocess so it
does not count), and on CUDA the peak GPU memory. UNet and classifier FLOPs per slice are counted
with ``torch.utils.flop_counter.FlopCounterMode`` on one chunk, and the achieved rate is reported
(GFLOP/s on CPU; TFLOP/s and the share of the device's bf16 dense peak on a GPU).

``--scaling`` times 1, 2 and 4 participants: as parallel processes with ``--nprocs`` split
(``nprocs // N`` each) while N ≤ the cores given, else one after another with all of them (the
table says which), and reports each process's peak RSS. ``--write-benchmarks`` writes the tables
into the "Speed by stage" section of BENCHMARKS.md with the device, date and this command.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

#: bf16 dense peak TFLOP/s (vendor datasheets, without sparsity).
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 756.0,
                    "A100": 312.0, "L40S": 362.0, "L4": 121.0}
#: Where each preset's detection figure comes from: a benchmark results file (as `bids-fcd benchmark`
#: or benchmarks/rescore.py wrote it, relative to the checkout) and the row of that preset.
#: Both rows are the test cohort of seed 2031 (12 FCD + 8 controls) with the 2 mm model (`--preset default`),
#: the model the stage blocks of 2026-12-02/04 timed; point them at the shipped model's results when it is rerun.
DETECTION_RESULTS = {
    "fast": ("docs/benchmarks/test-seed2031-2mm-d4.json", "method (stochastic, L=300, K=3, D=4, s=20)"),
    "paper": ("docs/benchmarks/paper-preset-seed2031.json", "test | self | budget 0.25 | extent"),
}
DETECTION_COHORT = "test cohort, seed 2031"
TARGET_S, TARGET_RSS_GIB = 600.0, 6.0
SEED = 13
SECTION = "## Speed by stage (benchmarks/speed.py)"


def detection(preset: str, root: Path = ROOT) -> str:
    """The preset's detection figure read from its benchmark results (:data:`DETECTION_RESULTS`),
    e.g. ``7 of 12 at 0.125 FP clusters/HC (R@10 0.630)``; ``n/a`` when there is none."""
    if preset not in DETECTION_RESULTS:
        return "n/a"
    rel, row = DETECTION_RESULTS[preset]
    try:
        data = json.loads((root / rel).read_text())
        r = data.get("results", data)[row]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        return f"n/a ({rel}: {type(exc).__name__})"
    sens, fp = float(r["subject_sensitivity"]), float(r["fp_clusters_per_control"])
    n = r.get("n_scored")
    hit = f"{round(sens * n)} of {n}" if n else f"sensitivity {sens:.3f}"
    r10 = f" (R@10 {r['R@10']:.3f})" if r.get("R@10") is not None else ""
    return f"{hit} at {fp:.3g} FP clusters/HC{r10}"


# ---------------------------------------------------------------- measuring

def peak_rss_gib(children_before_kib: int = 0) -> float:
    """Peak resident set size, GiB (Linux ru_maxrss is KiB): this process, or its largest child when
    that grew past ``children_before_kib`` (so a phantom made earlier in a subprocess does not count)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids if kids > children_before_kib else 0) / 2**20


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def make_phantom(bids: Path, size: str, n_fcd: int = 1, n_hc: int = 0) -> None:
    """``bids-fcd phantom`` in a subprocess (its memory does not count towards the participant's)."""
    if (bids / "dataset_description.json").exists():
        return
    subprocess.run([sys.executable, "-m", "bids_fcd", "phantom", str(bids), "--n-fcd", str(n_fcd), "--n-hc",
                    str(n_hc), "--seed", str(SEED), "--size", size], check=True, cwd=ROOT)


def participant_argv(bids: Path, out: Path, work: Path, label: str, nprocs: int, preset: str, slices: str,
                     device: str) -> list[str]:
    return [str(bids), str(out), "participant", "--participant-label", label, "--work-dir", str(work),
            "--nprocs", str(nprocs), "--omp-nthreads", str(nprocs), "--skip-bids-validation",
            "--sampler-preset", preset, "--slices", slices, "--device", device]


def nesting(spans: list[tuple[str, float, float, float]]) -> list[str | None]:
    """For each (name, seconds, start, end) span, the name of the innermost span around it (or None)."""
    parents: list[str | None] = []
    for i, (_, _, s0, e0) in enumerate(spans):
        around = [(e1 - s1, n1) for j, (n1, _, s1, e1) in enumerate(spans)
                  if j != i and s1 <= s0 + 1e-4 and e0 <= e1 + 1e-4 and (e1 - s1) > (e0 - s0)]
        parents.append(min(around)[1] if around else None)
    return parents


def run_participant(bids: Path, out: Path, work: Path, label: str, nprocs: int, preset: str, slices: str,
                    device: str = "auto") -> dict:
    """One participant in this process; stage seconds, total, exit code, peak memory."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    from bids_fcd.timing import record, record_spans, stage

    kids_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    with record() as rec, record_spans() as marks:
        with stage("import"):
            import torch

            from bids_fcd.cli.main import main
            from bids_fcd.workflows import participant  # noqa: F401  (the import a CLI run pays)

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        code = main(participant_argv(bids, out, work, label, nprocs, preset, slices, device))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    total = time.perf_counter() - start
    gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    spans = [(name, end - s0, s0 - start, end - start) for name, s0, end in marks]
    return {"stages": list(rec), "spans": spans, "total_s": total, "code": code, "peak_rss_gib": peak_rss_gib(kids_before),
            "peak_gpu_gib": gpu, "threads": torch.get_num_threads()}


def sampled_slice_count(out: Path, slices: str) -> tuple[int, int]:
    """(sampled, grid) slice counts from the brain mask the run wrote (slices with brain in the band)."""
    import nibabel as nib
    import numpy as np

    from bids_fcd.nets.checkpoint import load_model
    from bids_fcd.workflows.analysis import sampled_slices

    grid = load_model(None, __import__("torch").device("cpu")).net.grid
    masks = sorted(out.rglob("*desc-brain_mask.nii.gz"))
    if not masks:
        return 0, 0
    vol = np.asarray(nib.load(masks[0]).get_fdata()) > 0.5  # (W, H, S)
    stack = vol.transpose(2, 1, 0)
    return int(sampled_slices(grid, stack, slices).sum()), stack.shape[0]


def preset_sampler(preset: str):
    """The sampler of ``--sampler-preset PRESET --guidance-scale 20`` (what the timed runs use)."""
    import dataclasses

    from bids_fcd.config import SAMPLER_PRESETS, SamplerConfig

    return dataclasses.replace(SamplerConfig(), **{**SAMPLER_PRESETS[preset], "guidance_scale": 20.0})  # type: ignore[arg-type]


def flops(preset: str, device_name: str) -> dict:
    """FLOPs per item of one UNet forward and one guidance gradient (classifier forward + backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bids_fcd.nets.checkpoint import load_model
    from bids_fcd.sampling.ddim import chunk_size
    from bids_fcd.sampling.guidance import autocast

    device = torch.device(device_name)
    model = load_model(None, device)
    s = preset_sampler(preset)
    b = chunk_size(device, s.batch_size)
    h, w = model.net.grid.shape
    x = torch.zeros(b, model.net.in_channels, h, w, device=device)
    t = torch.full((b,), 100, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as fc, torch.inference_mode(), autocast(device):
        model.unet(x, timesteps=t, class_labels=torch.zeros_like(t))
    unet = fc.get_total_flops() / b
    # log_prob_grad's arithmetic, with .backward() (FlopCounterMode does not support autograd.grad)
    xg = x[:, :1].clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fc2, autocast(device):
        torch.log_softmax(model.classifier(xg, t).float(), dim=-1)[:, 0].sum().backward()
    clf = fc2.get_total_flops() / b
    k = s.steps or s.noise_level
    guided = s.guidance_scale > 0
    if s.encoding == "stochastic":
        unet_passes, clf_passes = k * s.draws, (k * s.draws if guided else 0)
    else:
        unet_passes, clf_passes = 2 * k, (k if guided else 0)
    return {"unet_gflop": unet / 1e9, "clf_grad_gflop": clf / 1e9, "unet_passes": unet_passes,
            "clf_passes": clf_passes, "per_slice_gflop": (unet * unet_passes + clf * clf_passes) / 1e9,
            "sampler": {"encoding": s.encoding, "L": s.noise_level, "K": k, "D": s.draws, "s": s.guidance_scale},
            "chunk": b}


def bf16_peak(name: str) -> float | None:
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return BF16_PEAK_TFLOPS[key]
    return None


# ---------------------------------------------------------------- tables

def stage_table(res: dict) -> str:
    """Stages in finishing order; a stage inside another (by its time span) is shown as ↳ and left
    out of the sum, so "unstaged" is the end-to-end time no top-level stage covered."""
    total = res["total_s"]
    spans = res.get("spans") or [(n, sec, 0.0, 0.0) for n, sec in res["stages"]]
    parents = nesting(spans) if res.get("spans") else [None] * len(spans)
    merged: dict[tuple[str, str | None], float] = {}
    for (name, sec, _, _), parent in zip(spans, parents, strict=True):
        merged[(name, parent)] = merged.get((name, parent), 0.0) + sec
    rows = ["| stage | seconds | share |", "|---|---:|---:|"]
    staged = 0.0
    for (name, parent), sec in merged.items():
        label = name if parent is None else f"↳ {name} (inside {parent})"
        staged += sec if parent is None else 0.0
        rows.append(f"| {label} | {sec:.1f} | {100 * sec / total:.1f} % |")
    rows.append(f"| unstaged (logging, BIDS queries, model load, ...) | {total - staged:.1f} | "
                f"{100 * (total - staged) / total:.1f} % |")
    rows.append(f"| **end to end** | **{total:.1f}** | 100 % |")
    return "\n".join(rows)


def summary_lines(res: dict) -> list[str]:
    f = res["flops"]
    merged = dict.fromkeys(("encode", "decode"), 0.0)
    for name, sec in res["stages"]:
        if name in merged:
            merged[name] += sec
    sampler_s = merged["encode"] + merged["decode"]
    n = res["sampled_slices"]
    lines = [f"- sampler ({f['sampler']['encoding']}, L = {f['sampler']['L']}, K = {f['sampler']['K']}, "
             f"D = {f['sampler']['D']}, s = {f['sampler']['s']:g}): {sampler_s:.1f} s for {n} of "
             f"{res['grid_slices']} slices = **{sampler_s / max(n, 1):.3f} s per slice** "
             f"(chunks of {f['chunk']} slices)",
             f"- FLOPs per slice: UNet {f['unet_gflop']:.2f} GFLOP per pass × {f['unet_passes']}, classifier "
             f"guidance gradient {f['clf_grad_gflop']:.2f} GFLOP × {f['clf_passes']} = "
             f"{f['per_slice_gflop']:.1f} GFLOP per slice"]
    rate = f["per_slice_gflop"] * n / max(sampler_s, 1e-9)
    if res["device_kind"] == "cuda":
        peak = bf16_peak(res["device"])
        share = f", {100 * rate / 1e3 / peak:.1f} % of the bf16 dense peak ({peak:g} TFLOP/s)" if peak else ""
        lines.append(f"- achieved in the sampler: {rate / 1e3:.2f} TFLOP/s{share}")
        lines.append(f"- peak GPU memory: {res['peak_gpu_gib']:.2f} GiB")
    else:
        lines.append(f"- achieved in the sampler: {rate:.1f} GFLOP/s (CPU, float32)")
    lines.append(f"- peak RSS: **{res['peak_rss_gib']:.2f} GiB** (this process or its largest child)")
    lines.append(f"- torch threads: {res['threads']}; load average before / after: {res['load_before']} / "
                 f"{res['load_after']} (1, 5, 15 min; 2 cores means ≥ 2 is contention)")
    return lines


def target_line(res: dict) -> str:
    t, m = res["total_s"], res["peak_rss_gib"]
    ok_t = "met" if t <= TARGET_S else "missed"
    ok_m = "met" if m <= TARGET_RSS_GIB else "missed"
    return (f"Target (2 CPU cores, default settings, full-size participant, whole cerebrum): ≤ 10 min end to end "
            f"**{ok_t}** ({t / 60:.1f} min, {abs(TARGET_S - t) / 60:.1f} min {'under' if t <= TARGET_S else 'over'}; "
            f"stretch 5 min {'met' if t <= 300 else 'missed'}), ≤ 6 GiB peak RSS **{ok_m}** ({m:.2f} GiB).")


def scaling_table(rows: list[dict]) -> str:
    out = ["| participants | how | nprocs each | wall s | s per participant | peak RSS per participant GiB |",
           "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['n']} | {r['how']} | {r['nprocs']} | {r['wall_s']:.1f} | {r['wall_s'] / r['n']:.1f} | "
                   f"{max(r['rss_gib']):.2f} |")
    return "\n".join(out)


# ---------------------------------------------------------------- scaling

def _child(argv: list[str]) -> int:
    """``--_child BIDS OUT WORK LABEL NPROCS PRESET SLICES``: one participant, one JSON line on stdout."""
    bids, out, work, label, nprocs, preset, slices = argv
    with contextlib.redirect_stdout(io.StringIO()):
        res = run_participant(Path(bids), Path(out), Path(work), label, int(nprocs), preset, slices)
    print(json.dumps({"total_s": res["total_s"], "code": res["code"], "rss_gib": res["peak_rss_gib"]}))
    return 0


def scaling(root: Path, size: str, nprocs: int, preset: str, slices: str) -> list[dict]:
    bids = root / "bids-scaling"
    make_phantom(bids, size, n_fcd=2, n_hc=2)
    labels = [f"{i:05d}" for i in range(1, 5)]
    rows = []
    for n in (1, 2, 4):
        parallel = n <= nprocs
        each = max(1, nprocs // n) if parallel else nprocs
        cmds = [[sys.executable, str(Path(__file__).resolve()), "--_child", str(bids), str(root / f"sc{n}-out-{i}"),
                 str(root / f"sc{n}-work-{i}"), labels[i], str(each), preset, slices] for i in range(n)]
        start = time.perf_counter()
        results = []
        if parallel:
            procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True, cwd=ROOT) for c in cmds]
            for p in procs:
                results.append(json.loads(p.communicate()[0].strip().splitlines()[-1]))
        else:
            for c in cmds:
                results.append(json.loads(subprocess.run(c, stdout=subprocess.PIPE, text=True, check=True,
                                                         cwd=ROOT).stdout.strip().splitlines()[-1]))
        wall = time.perf_counter() - start
        rows.append({"n": n, "how": f"{n} parallel processes" if parallel else "serial (N > cores)", "nprocs": each,
                     "wall_s": wall, "rss_gib": [r["rss_gib"] for r in results],
                     "ok": all(r["code"] == 0 for r in results)})
        print(f"scaling: {rows[-1]}", flush=True)
    return rows


# ---------------------------------------------------------------- chunk size

def chunk_sweep(preset: str, nprocs: int, sizes: tuple[int, ...] = (16, 32, 64, 132), rounds: int = 2) -> str:
    """Sampler alone on 66 random slices at the model grid, per CPU chunk size, rounds interleaved.

    Reports wall and process-CPU seconds per slice (CPU time is less sensitive to other load), and
    whether each chunk size gives the same bits as the first (it need not: see ``ddim``)."""
    import torch

    from bids_fcd.nets.checkpoint import load_model
    from bids_fcd.nets.networks import build_scheduler
    from bids_fcd.sampling import ddim

    torch.set_num_threads(nprocs)
    model = load_model(None, torch.device("cpu"))
    smp = preset_sampler(preset)
    h, w = model.net.grid.shape
    x = torch.rand(66, model.net.in_channels, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sch = build_scheduler(model.net)
    times: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    outs: dict[int, object] = {}
    saved = ddim.CPU_MICRO_BATCH
    try:
        for _ in range(rounds):
            for b in sizes:
                ddim.CPU_MICRO_BATCH = b
                c0, w0 = time.process_time(), time.perf_counter()
                outs[b] = ddim.pseudo_healthy(model.unet, model.classifier, sch, x, smp.noise_level, smp.steps,
                                              smp.guidance_scale, smp.batch_size, smp.encoding, smp.draws,
                                              torch.Generator().manual_seed(0))
                times[b].append((time.perf_counter() - w0, time.process_time() - c0))
    finally:
        ddim.CPU_MICRO_BATCH = saved
    rows = [f"Sampler alone, preset `{preset}`, 66 slices, {nprocs} threads, {rounds} interleaved rounds (best "
            f"of each); load after {load_avg()}.", "",
            "| CPU chunk (items per network call) | wall s per slice | CPU s per slice | same bits as chunk "
            f"{sizes[0]} |", "|---:|---:|---:|---|"]
    for b in sizes:
        wall, cpu = min(t[0] for t in times[b]), min(t[1] for t in times[b])
        rows.append(f"| {b}{' (default)' if b == saved else ''} | {wall / 66:.3f} | {cpu / 66:.3f} | "
                    f"{'yes' if torch.equal(outs[b], outs[sizes[0]]) else 'no'} |")
    return "\n".join(rows)


# ---------------------------------------------------------------- BENCHMARKS.md

def _block(key: str, body: str, data: dict) -> str:
    return f"<!-- speed-run {key} {json.dumps(data)} -->\n{body.strip()}\n<!-- /speed-run {key} -->"


def write_benchmarks(path: Path, key: str, body: str, data: dict) -> None:
    """Replace (or add) this run's block in the Speed section and rebuild the presets table."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start < 0:
        before, section, after = text.rstrip() + "\n\n", "", ""
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        before, section = text[:start], text[start: nxt if nxt >= 0 else len(text)]
        after = text[nxt + 1:] if nxt >= 0 else ""
    blocks = {k: full for full, k in re.findall(r"(<!-- speed-run (\S+) .*?<!-- /speed-run \2 -->)", section, re.S)}
    blocks[key] = _block(key, body, data)
    runs = []
    for k, blk in blocks.items():
        m = re.match(r"<!-- speed-run \S+ (\{.*?\}) -->", blk)
        if m:
            runs.append((k, json.loads(m.group(1))))
    rows = [f"| preset | sampler | detection ({DETECTION_COHORT}) | end to end per participant | sampler per slice | "
            "peak RSS | measured on |", "|---|---|---|---:|---:|---:|---|"]
    for preset in ("fast", "paper"):
        for _k, d in sorted(runs):
            if d.get("preset") == preset and d.get("kind") == "stages" and d.get("size") == "full":
                rows.append(f"| {preset} | {d['sampler']} | {detection(preset)} | {d['total_s'] / 60:.1f} min "
                            f"({d['total_s']:.0f} s) | {d['per_slice_s']:.3f} s | {d['rss_gib']:.2f} GiB | "
                            f"{d['device']}, {d['size']} phantom, --slices {d['slices']} |")
        if not any(d.get("preset") == preset and d.get("device_kind") == "cuda" for _, d in runs):
            rows.append(f"| {preset} | | {detection(preset)} | unmeasured (no GPU lent) | "
                        "unmeasured (no GPU lent) | | H100/H200 |")
    intro = (f"{SECTION}\n\nWritten by `benchmarks/speed.py` (stage names from `bids_fcd.timing.stage`; "
             "each block below says its device, date, load and command). Timings on the shared 2-core "
             "machine are noisy: compare rows within one block, and read the load average beside them. "
             "The blocks dated 2026-12-02 and 2026-12-04 timed the 2 mm model (`--preset default`, the shipped "
             "model until 2026-12-06); the shipped 1.5 mm model's end-to-end time is in \"Speed and memory\" "
             "above.\n\n"
             "### Presets: speed against detection\n\n" + "\n".join(rows) + "\n\n"
             "GPU targets (one H100/H200, `paper` preset: diffusion ≤ 15 s for 51 slices, ≤ 45 s for the whole "
             "cerebrum, UNet ≥ 30 % of bf16 peak): unmeasured (no GPU lent). The code is GPU-ready: bf16 autocast, "
             "`--batch-size`-sized chunks, no host synchronisation in the step loop, `BIDS_FCD_COMPILE=1` for "
             "`torch.compile`; run `python benchmarks/speed.py OUT --preset paper --write-benchmarks` on the GPU.\n\n"
             "What the rows mean. `--slices all` (the default) samples every axial slice with brain on the model "
             "grid (MNI z −50 … +80 mm, the whole cerebrum); `--slices paper` only z = 0 … +50 mm (the paper's "
             "51 one-millimetre slices through the centre of the cerebrum; 26 slices on the 2 mm grid), with "
             "pseudo = real and anomaly 0 elsewhere. The sampler runs every sampled slice and every draw as one "
             "stream of items; on CPU the networks see fixed chunks of `CPU_MICRO_BATCH` items whatever "
             "`--batch-size` is, because oneDNN chooses its kernels by batch size and they round differently "
             "(the classifier gradient differed by ~1e-7 between batches of 5 and 20), and results must be "
             "bit-identical for any batch size; on a GPU the chunk is `--batch-size` (default 64). "
             "\"sampler per slice\" is encode + decode divided by the sampled slices.\n")
    section = intro + "\n" + "\n\n".join(blocks[k] for k in sorted(blocks)) + "\n"
    path.write_text(before + section + ("\n" + after if after else ""))


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_child":
        return _child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="scratch directory (phantom, outputs, work)")
    ap.add_argument("--size", choices=("full", "tiny"), default="full")
    ap.add_argument("--nprocs", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all cores)")
    ap.add_argument("--preset", choices=("fast", "paper"), default="fast")
    ap.add_argument("--slices", choices=("all", "paper"), default="all")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--scaling", action="store_true", help="also time 1, 2, 4 participants with --nprocs split")
    ap.add_argument("--write-benchmarks", action="store_true", help="write the tables into BENCHMARKS.md")
    ap.add_argument("--chunks", action="store_true",
                    help="only time the sampler at several CPU chunk sizes (no participant run)")
    args = ap.parse_args(argv)
    if args.chunks:
        body = f"### CPU chunk size: sampler alone\n\n{cpu_model()}; {dt.date.today().isoformat()}; " \
               f"`python benchmarks/speed.py OUT {' '.join(a for a in argv if a != str(args.out))}`.\n\n" + \
               chunk_sweep(args.preset, args.nprocs)
        print(body)
        if args.write_benchmarks:
            write_benchmarks(ROOT / "BENCHMARKS.md", f"chunks-{args.preset}-cpu", body, {"kind": "chunks"})
        return 0

    root = args.out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    bids = root / f"bids-{args.size}"
    make_phantom(bids, args.size)
    load_before = load_avg()
    res = run_participant(bids, root / "out", root / "work", "00001", args.nprocs, args.preset, args.slices,
                          args.device)
    res["load_before"], res["load_after"] = load_before, load_avg()
    import torch  # after the run, so that its import counts in the "import" stage
    if res["code"] != 0:
        print(f"the participant level failed (exit {res['code']}); see the log above", file=sys.stderr)
        return 1
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    res["device_kind"] = "cuda" if cuda else "cpu"
    res["device"] = torch.cuda.get_device_name() if cuda else f"{cpu_model()}, {os.cpu_count()} cores"
    res["sampled_slices"], res["grid_slices"] = sampled_slice_count(root / "out", args.slices)
    res["flops"] = flops(args.preset, "cuda" if cuda else "cpu")
    command = "python benchmarks/speed.py OUT " + " ".join(a for a in (argv or []) if a != str(args.out))
    date = dt.date.today().isoformat()
    title = (f"### Stages: preset `{args.preset}`, {args.size}-size phantom participant, --slices {args.slices}, "
             f"{res['device_kind'].upper()}")
    body = "\n".join([title, "", f"{res['device']}; {date}; `{command}`; --nprocs {args.nprocs}.", "",
                      stage_table(res), "", *summary_lines(res)])
    if args.size == "full" and not cuda and args.preset == "fast" and args.slices == "all":
        body += "\n\n" + target_line(res)
    print(body, flush=True)
    sampler_s = sum(s for n, s in res["stages"] if n in ("encode", "decode"))
    f = res["flops"]["sampler"]
    data = {"kind": "stages", "preset": args.preset, "size": args.size, "slices": args.slices,
            "device_kind": res["device_kind"], "device": res["device"].split(",")[0], "total_s": round(res["total_s"], 1),
            "per_slice_s": round(sampler_s / max(res["sampled_slices"], 1), 4), "rss_gib": round(res["peak_rss_gib"], 2),
            "sampler": f"{f['encoding']}, L={f['L']}, K={f['K']}, D={f['D']}, s={f['s']:g}", "date": date}
    key = f"stages-{args.preset}-{args.size}-{args.slices}-{res['device_kind']}"
    if args.write_benchmarks:
        write_benchmarks(ROOT / "BENCHMARKS.md", key, body, data)
    if args.scaling:
        rows = scaling(root, args.size, args.nprocs, args.preset, args.slices)
        sbody = "\n".join([f"### Scaling: preset `{args.preset}`, {args.size}-size phantom participants, "
                           f"{res['device_kind'].upper()}", "",
                           f"{res['device']}; {date}; `{command}`; load before {load_avg()}.", "",
                           scaling_table(rows)])
        print(sbody, flush=True)
        if args.write_benchmarks:
            write_benchmarks(ROOT / "BENCHMARKS.md", f"scaling-{args.preset}-{args.size}-{res['device_kind']}", sbody,
                             {"kind": "scaling", "preset": args.preset, "device_kind": res["device_kind"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
