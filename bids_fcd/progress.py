"""Progress bars for the long loops (sampling, training, a cohort's participants).

A bar is drawn only on an interactive terminal: :func:`progress_bar` asks ``sys.stderr.isatty()``
each time a bar is made (never at import), so a run whose log goes to a file, a pipe or a job
scheduler writes no bar, only its log lines. A bar only counts: it never touches the work it
follows, so results are the same with or without one. :class:`BarSafeHandler` writes log lines
above the open bars instead of through them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

#: Seconds between two redraws of a bar (a redraw costs a terminal write; CPU runs are long).
MIN_REDRAW_SECONDS = 1.0


def interactive() -> bool:
    """True when stderr (where bars and log lines go) is a terminal a person watches."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True) -> tqdm:
    """A tqdm bar on stderr that disappears when done; disabled (silent, still iterates) when stderr is
    not a terminal or ``enabled`` is False (e.g. on every rank but the first of a distributed run)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                mininterval=MIN_REDRAW_SECONDS, dynamic_ncols=True, disable=not (enabled and interactive()))


class BarSafeHandler(logging.StreamHandler):
    """A stream handler that writes each record with ``tqdm.write``: open bars are cleared, the line is
    written and the bars are drawn again below it (with no bar open it is a plain write)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as logging.StreamHandler.emit: a failed log write must not stop the run
            self.handleError(record)
