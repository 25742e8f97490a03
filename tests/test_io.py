"""bids_fcd.io: atomic writes (text, bytes, JSON, NIfTI, arrays, copies) and sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_fcd import io


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_every_writer_leaves_a_whole_file_and_no_temporary(tmp_path: Path):
    io.write_text(tmp_path / "a" / "t.txt", "é\n")
    io.write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    io.write_json(tmp_path / "a" / "j.json", {"k": [1, 2]})
    img = nib.Nifti1Image(np.arange(8, dtype=np.float32).reshape(2, 2, 2), np.eye(4))
    io.write_nifti(tmp_path / "a" / "v.nii.gz", img)
    io.write_npy(tmp_path / "a" / "x.npy", np.ones(3))
    io.copy_file(tmp_path / "a" / "b.bin", tmp_path / "a" / "c.bin")
    a = tmp_path / "a"
    assert (a / "t.txt").read_text(encoding="utf-8") == "é\n" and (a / "c.bin").read_bytes() == b"\x00\x01"
    assert json.loads((a / "j.json").read_text()) == {"k": [1, 2]} and (a / "j.json").read_text().endswith("}\n")
    assert np.array_equal(np.asarray(nib.load(a / "v.nii.gz").dataobj), np.asarray(img.dataobj))
    assert (a / "v.nii.gz").read_bytes()[:2] == b"\x1f\x8b", "the temporary name kept .nii.gz: compressed"
    assert np.array_equal(np.load(a / "x.npy"), np.ones(3))
    assert _leftovers(a) == []


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "r.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        io.write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1} and _leftovers(tmp_path) == []


def test_sha256(tmp_path: Path):
    data = bytes(range(256)) * 5000
    io.write_bytes(tmp_path / "d", data)
    assert io.sha256_file(tmp_path / "d") == io.sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "m.json"
    io.write_text(target, "old\n")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_write_tsv_header_rows_and_unix_line_ends(tmp_path):
    from bids_fcd.io import write_tsv

    p = tmp_path / "t.tsv"
    write_tsv(p, [{"a": 1, "b": "x"}, {"a": 2}], ("a", "b"))
    assert p.read_bytes() == b"a\tb\n1\tx\n2\t\n"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_a_full_disk_is_found_behind_other_errors_and_named_with_its_file(tmp_path):
    import errno

    from bids_fcd.io import disk_full, disk_full_message

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "a.nii.gz"))
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("could not write the image") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped) is full
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None
    message = disk_full_message(full, tmp_path)
    assert message.startswith(f"the disk is full writing {tmp_path / 'a.nii.gz'} (the file system of {tmp_path}, ")
    assert "MiB free now); free space there or write to another disk, then rerun the same command" in message
    quota = disk_full_message(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    assert quota.startswith(f"the disk quota is used up writing {tmp_path} ")
