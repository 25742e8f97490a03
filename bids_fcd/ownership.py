"""Names of the folders a process writes alone in a shared directory, and the removal of those whose
process is gone.

A process's own folder (a staging folder, a partial cache folder, a private temporary directory) is
named ``<name>.<pid>-<host>[<not a letter or digit><anything>]`` (:func:`owner_tag`). Runs on
several machines may share a work or output directory (a job array on a cluster file system), so
only the host that made a folder can tell whether its process is gone: :func:`remove_stale`
removes a folder only when it was made on this host by a process that no longer runs (or, for
names from before the host was recorded, ``<name>.<pid>``, by a process not running here).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_OWNER = re.compile(r"(\d+)(?:-([A-Za-z0-9]+))?")


def host_tag() -> str:
    """This machine's name, letters and digits only (at most 24), as it appears in folder names."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0])[:24] or "host"


def owner_tag() -> str:
    """``<pid>-<host>``: this process, for the name of a folder only it writes."""
    return f"{os.getpid()}-{host_tag()}"


def owner_of(name: str) -> tuple[int, str | None] | None:
    """(pid, host or None) of a folder named ``<name>.<pid>[-<host>]...``, or None for other names."""
    parts = name.split(".", 1)
    match = _OWNER.match(parts[1]) if len(parts) > 1 else None
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def left_behind(name: str) -> bool:
    """True when the folder ``name`` was made on this host by a process that is gone."""
    owner = owner_of(name)
    if owner is None:
        return False
    pid, host = owner
    if host is not None and host != host_tag():
        return False
    return pid != os.getpid() and not _pid_alive(pid)


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove the entries ``folder/<pattern>`` that :func:`left_behind` says a gone process left."""
    for p in folder.glob(pattern) if folder.is_dir() else []:
        if left_behind(p.name):
            log.info("removing %s, left by a run that was killed", p)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
