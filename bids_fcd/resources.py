"""Compute resources: the device, how many CPU threads this process may use, and applying a count to torch and ANTs/ITK.

The default thread count is the CPUs the process can actually run on: its affinity mask and,
inside a container, the cgroup CPU quota (``cpu.max``), not the host's core count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) quota, or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        q = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        p = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, capped by the cgroup quota (rounded up), ≥ 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return max(1, n)


def resolve_threads(nprocs: int, omp_nthreads: int) -> int:
    """Threads per process: ``--omp-nthreads``, else ``--nprocs``, else all available CPUs."""
    n = omp_nthreads or nprocs or available_cpus()
    return max(1, min(n, nprocs)) if nprocs else max(1, n)


def apply_threads(n: int, ants_threads: int = 1) -> None:
    """Use ``n`` threads in torch (intra- and inter-op where still settable), ``ants_threads`` in ANTs/ITK.

    ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once, when its first filter runs, so call this
    before any ANTs work in the process. ANTs' registration gives other results run to run with more
    than one thread even at a fixed seed (measured: the rigid, affine and SyN transforms all differ),
    so one thread is the reproducible default; the count is part of the preprocessing cache key.
    """
    import torch

    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, ants_threads))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set (or parallel work started) in this process
        pass


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error (every subcommand).

    Raises ``ValueError`` with the fix when ``--device cuda`` is asked for and no CUDA GPU is visible.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(name)
