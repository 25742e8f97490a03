"""Stopping cleanly on SIGTERM and SIGINT: a batch scheduler's time limit (SLURM sends SIGTERM, then
SIGKILL after its ``KillWait``), ``docker stop``, ``scancel``, or Ctrl-C.

:func:`handle_interrupts` installs a handler for both signals while a command runs and restores the
previous handlers after. The first signal raises :class:`Interrupted` in the main thread at the next
Python instruction, as Ctrl-C raises :class:`KeyboardInterrupt` (of which it is a subclass, so no
``except Exception`` of a workflow swallows it). The workflows clean up as it unwinds (staging
folders, partial cache folders, temporary files), write the crash record of the interrupted
participant, and the CLI exits with :func:`exit_code` (128 + the signal number: 143 for SIGTERM, 130
for SIGINT).

Library code that catches every exception can swallow it; :func:`check` raises it again at the
workflows' safe points (before a participant, before publishing), so the run stops all the same.
Inside :func:`deferred` (publishing a participant's outputs and writing their manifest, the end of a
training epoch, saving a reference) a signal is held and raised when the block ends, so those steps
are never cut in half. A signal that arrives while the run is already stopping is logged and
otherwise ignored, so the clean-up is not cut short either (Apptainer forwards SIGTERM to the
process that SLURM signals as well: it can come twice).

Compiled code that runs long without returning to Python (one ANTs registration) finishes its call
before the signal is seen; SIGKILL after the scheduler's grace period still leaves nothing
half-published (outputs are staged and renamed into place), only no crash record.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

#: The signals that stop a run cleanly.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM or SIGINT) was received; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal_name(signum)}")


def signal_name(signum: int) -> str:
    """``SIGTERM``, ``SIGINT``, ... (the number for an unknown signal)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number (143 SIGTERM, 130 SIGINT)."""
    return 128 + signum


@dataclass
class _Guard:
    """The handlers' state: how deep in :func:`deferred` blocks the main thread is, and the stop
    signal received (later ones are logged only)."""

    held: int = 0
    received: int | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            log.warning("%s received while stopping; still cleaning up (SIGKILL stops at once, leaving no crash "
                        "record)", signal_name(signum))
            return
        self.received = signum
        if self.held:
            log.warning("%s received: finishing the step that must not be cut in half first", signal_name(signum))
            return
        log.warning("%s received: stopping", signal_name(signum))
        raise Interrupted(signum)

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(self.received)


_guard: _Guard | None = None


@contextmanager
def handle_interrupts() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` while the block runs; the previous handlers
    are restored after. A signal the process was started to ignore (``SIG_IGN``, e.g. SIGINT of a
    background job) stays ignored. Outside the main thread (where handlers cannot be set) it does nothing."""
    global _guard
    if threading.current_thread() is not threading.main_thread() or _guard is not None:
        yield
        return
    guard = _Guard()
    previous = {}
    for sig in STOP_SIGNALS:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN:
            continue
        previous[sig] = old
        signal.signal(sig, guard.on_signal)
    _guard = guard
    try:
        yield
    finally:
        _guard = None
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a stop signal until the block ends (then :class:`Interrupted` is raised); for steps that
    must not be cut in half (an error leaving the block gives way to the signal, as its context).
    Without :func:`handle_interrupts` active it does nothing."""
    guard = _guard
    if guard is None:
        yield
        return
    guard.held += 1
    try:
        yield
    finally:
        guard.held -= 1
        if guard.held == 0:
            guard.check()  # also when the block failed: the stop is not lost


def check() -> None:
    """Raise :class:`Interrupted` when a stop signal has been received: a safe point. The handler
    raises it at once already; a safe point raises it again where library code swallowed it (some
    catch ``BaseException``), so the run still stops, at the latest at the next safe point."""
    if _guard is not None:
        _guard.check()
