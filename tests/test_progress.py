"""Progress bars: drawn on a terminal only, decided when the bar is made; log lines above them."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from bids_fcd.progress import BarSafeHandler, interactive, progress_bar


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch):
    log_file = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_file)
    assert not interactive()
    bar = progress_bar(range(3), desc="decoding slices")
    assert bar.disable
    assert list(bar) == [0, 1, 2], "a disabled bar still iterates"
    assert log_file.getvalue() == ""


def test_a_bar_on_a_terminal_and_none_when_not_enabled(monkeypatch: pytest.MonkeyPatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert interactive()
    with progress_bar(total=3, desc="decoding slices", unit="slice") as bar:
        assert not bar.disable
        bar.update(3)
    assert "decoding slices" in terminal.getvalue()
    assert progress_bar(total=3, enabled=False).disable, "e.g. the other ranks of a distributed run"


def test_the_terminal_check_is_made_when_the_bar_is_made(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not progress_bar(total=1).disable
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar(total=1).disable


def test_a_stderr_without_isatty_counts_as_no_terminal(monkeypatch: pytest.MonkeyPatch):
    class Bare:
        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Bare())
    assert not interactive()


def test_log_lines_are_written_above_an_open_bar_not_through_it(monkeypatch: pytest.MonkeyPatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = BarSafeHandler(terminal)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("bids_fcd.tests.progress")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with progress_bar(total=4, desc="decoding slices") as bar:
            bar.update(2)
            logger.warning("sub-01: second look on 3 regions")
            bar.update(2)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = terminal.getvalue()
    line_start = text.index("WARNING sub-01: second look on 3 regions")
    assert text[line_start - 1] in "\r\n", "the log line starts at the beginning of a line"
    assert "decoding slices" in text[line_start:], "the bar is drawn again below the log line"
