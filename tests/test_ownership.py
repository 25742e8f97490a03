"""Folders a gone process left are removed only by the host that made them."""

from __future__ import annotations

import os
import subprocess
import sys

from bids_fcd.ownership import host_tag, owner_of, owner_tag, remove_stale


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_only_this_hosts_folders_of_gone_processes_are_removed(tmp_path):
    pid, host = _dead_pid(), host_tag()
    names = {f"k.{pid}-{host}.partial": False, f"k.{pid}-othernode7.partial": True, f"k.{owner_tag()}.partial": True,
             f"k.{pid}": False, "k.notapid": True}
    for name in names:
        (tmp_path / name).mkdir()
    remove_stale(tmp_path, "k.*")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, kept in names.items() if kept)


def test_the_owner_is_read_back_from_the_name():
    assert owner_of(f"tmp.{owner_tag()}_x1") == (os.getpid(), host_tag())
    assert owner_of("sub-01.123") == (123, None)
    assert owner_of("grid-8x8x8.nii.gz") is None
