"""Helpers shared by the workflow tests: the stored file list and tree hashes of output folders."""

import hashlib
from pathlib import Path

EXPECTED = Path(__file__).parent.parent / "data" / "expected_outputs.txt"
GROUP_FILES = ("group.html", "group_detection.json", "group_summary.json", "group_summary.tsv")


def expected_outputs(res: str) -> list[str]:
    """The stored participant-level file list, ``res-RES`` filled with the model grid's label."""
    return EXPECTED.read_text().replace("res-RES", f"res-{res}").split()


def files_under(root: Path) -> list[str]:
    """Every file under ``root``, relative and POSIX, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def tree_hash(root: Path) -> str:
    """sha256 over the names and bytes of every file under ``root``."""
    h = hashlib.sha256()
    for rel in files_under(root):
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()
