"""Stage timing: ``with stage("n4"):`` around each step; a benchmark collects them.

Library code marks its stages with :func:`stage`; that costs a clock read and a DEBUG log line.
A caller that wants the figures (``benchmarks/speed.py``) wraps the work in :func:`record` and
gets ``[(name, seconds), ...]`` in the order the stages finished, or in :func:`record_spans` and gets
``[(name, start, end), ...]`` (``time.perf_counter`` seconds), which tells nested stages apart.
Nothing is recorded outside such a block, and nothing is global: the recorders live in context
variables.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_RECORDER: contextvars.ContextVar[list[tuple[str, float]] | None] = contextvars.ContextVar("bids_fcd_stages",
                                                                                          default=None)
_SPANS: contextvars.ContextVar[list[tuple[str, float, float]] | None] = contextvars.ContextVar("bids_fcd_spans",
                                                                                            default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` (appended to the active :func:`record` and :func:`record_spans`, if any)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        end = time.perf_counter()
        seconds = end - start
        log.debug("stage %s: %.2f s", name, seconds)
        rec = _RECORDER.get()
        if rec is not None:
            rec.append((name, seconds))
        spans = _SPANS.get()
        if spans is not None:
            spans.append((name, start, end))


@contextmanager
def record() -> Iterator[list[tuple[str, float]]]:
    """Collect every :func:`stage` finished inside the block into the yielded list."""
    rec: list[tuple[str, float]] = []
    token = _RECORDER.set(rec)
    try:
        yield rec
    finally:
        _RECORDER.reset(token)


@contextmanager
def record_spans() -> Iterator[list[tuple[str, float, float]]]:
    """Collect every :func:`stage` finished inside the block as ``(name, start, end)`` (perf_counter seconds)."""
    spans: list[tuple[str, float, float]] = []
    token = _SPANS.set(spans)
    try:
        yield spans
    finally:
        _SPANS.reset(token)
