"""One writer per participant: an exclusive lock file per participant in the output directory.

Two processes given the same participant and output directory (a job array task resubmitted
while the first still runs, two users, a typo in an array index) would otherwise write the same
files. :func:`participant_lock` holds ``fcntl.flock`` on ``OUTPUT_DIR/.locks/<prefix>.lock``: the
second process logs who holds it and waits; when it gets the lock it finds the outputs complete
and skips them. Different participants use different lock files and run side by side.

The kernel releases a flock when its process ends, however it ends (SIGKILL included), so a
lock is never stale; the file itself is removed on release (a killed run leaves it, harmless). The
lock lives in the output directory, not the work directory, because that is where the files
are that must not have two writers (a work directory on node-local disk would keep apart only
processes of one node).

File systems: flock works on local disks and on most cluster file systems (GPFS; Lustre mounted
with ``-o flock``; NFS through the NFS client's lock emulation when its lock service runs). Where it
is refused (``ENOLCK``, ``EOPNOTSUPP``, ``ENOSYS``: Lustre without ``-o flock``, NFS without lockd) a
warning says so and the run goes on unlocked: do not give one participant to two processes then.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: errno values of a file system that does not support flock.
UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class Lock:
    """``held``: the lock is held (False where the file system refuses locks); ``waited``: another
    process held it first."""

    held: bool
    waited: bool


def lock_path(out_dir: Path, prefix: str) -> Path:
    """``OUTPUT_DIR/.locks/<prefix>.lock``."""
    return out_dir / ".locks" / f"{prefix}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "another process"


def _acquire(path: Path, what: str) -> tuple[int | None, bool]:
    """(the locked file's descriptor, whether it waited); (None, False) where locks are not supported."""
    waited = False
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed by a releasing holder in between: again
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    log.warning("%s: %s is working on it (lock file %s); waiting for it to finish", what,
                                _holder(path), path)
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)  # a stop signal's Interrupted ends the wait
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError) and exc.errno in UNSUPPORTED:
                log.warning("%s: the file system of %s does not support file locks (%s); going on without one: "
                            "do not run this participant in two processes at once", what, path.parent, exc.strerror)
                return None, False
            raise
        try:  # the previous holder may have removed the file between our open and our lock: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd, waited
        os.close(fd)


@contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[Lock]:
    """Hold an exclusive flock on ``path`` while the block runs (waiting for another holder first,
    with one line naming that holder, ``what`` and the lock file).

    A stop signal (:mod:`bids_fcd.interrupts`) ends the wait. The lock file records the holder's pid
    and host, for that message.
    """
    fd, waited = _acquire(path, what)
    if fd is None:
        yield Lock(held=False, waited=False)
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield Lock(held=True, waited=waited)
    finally:
        with suppress(OSError):
            path.unlink()  # while still held: a waiter sees another file and locks that instead
        os.close(fd)
        with suppress(OSError):
            path.parent.rmdir()  # only when empty


@contextmanager
def participant_lock(out_dir: Path, prefix: str) -> Iterator[Lock]:
    """:func:`exclusive_lock` on :func:`lock_path` for one participant's outputs in ``out_dir``."""
    with exclusive_lock(lock_path(out_dir, prefix), prefix) as lock:
        yield lock
