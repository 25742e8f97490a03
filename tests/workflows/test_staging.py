"""The private temporary directory and the removal of what killed runs left."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from bids_fcd.ownership import owner_tag
from bids_fcd.preprocessing.registration import ants_unsafe_part
from bids_fcd.workflows.staging import private_tmp, remove_stale


def test_the_private_temporary_directory_never_looks_like_a_transform_file(tmp_path):
    names = []
    for _ in range(50):
        with private_tmp(tmp_path) as path:
            assert tempfile.gettempdir() == str(path) and os.environ["TMPDIR"] == str(path)
            names.append(path.name)
        assert not path.exists()
    assert all(n.startswith(f"tmp.{owner_tag()}_") and n.count(".") == 1 for n in names), names[:3]
    assert all(ants_unsafe_part(tmp_path / n) is None for n in names)


def test_folders_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)
    for name in (f"tmp.{pid}_abc", f"tmp.{pid}.abc", f"tmp.{os.getpid()}_xyz", "tmp.other"):
        (tmp_path / name).mkdir()
    remove_stale(tmp_path, "tmp.*")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"tmp.{os.getpid()}_xyz", "tmp.other"])
