"""Where a run writes: the work directory and the rule that nothing goes inside the input dataset.

Light on purpose (no pybids, no torch): the CLI checks these before any heavy import.
"""

from __future__ import annotations

from pathlib import Path


class OutputInInputError(ValueError):
    """The output or work directory lies inside the input BIDS dataset."""


def work_dir_for(output_dir: str, work_dir: str | None, env_work_dir: str | None = None) -> Path:
    """``--work-dir``, else ``env_work_dir`` (``$BIDS_FCD_WORK_DIR``, :class:`~bids_fcd.config.Environment`;
    the container sets one under /tmp), else ``OUTPUT_DIR/../bids-fcd-work``; never inside the input
    dataset (checked separately)."""
    if work_dir:
        return Path(work_dir)
    if env_work_dir:
        return Path(env_work_dir)
    return Path(output_dir).resolve().parent / "bids-fcd-work"


def check_output_not_in_input(bids_dir: Path, out_dir: Path, work_dir: Path) -> None:
    """Refuse output or work directories inside (or equal to) the input dataset."""
    b = bids_dir.resolve()
    for what, p in (("output", out_dir), ("work", work_dir)):
        r = p.resolve()
        if r == b or b in r.parents:
            raise OutputInInputError(f"the {what} directory {p} is inside the input BIDS dataset {bids_dir}; "
                                     "choose a directory outside it (bids-fcd never writes into the input)")
