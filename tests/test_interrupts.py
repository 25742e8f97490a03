"""Stop signals become Interrupted at once, or at the end of a deferred block; handlers are restored."""

from __future__ import annotations

import os
import signal

import pytest

from bids_fcd.interrupts import Interrupted, deferred, exit_code, handle_interrupts

pytestmark = pytest.mark.usefixtures("stop_signals_at_their_defaults")


def test_sigterm_raises_interrupted_and_the_previous_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info, handle_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between two Python instructions
            pass
        pytest.fail("SIGTERM did not stop the block")
    assert info.value.signum == signal.SIGTERM and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_deferred_block_finishes_before_the_signal_is_raised():
    steps = []
    with pytest.raises(Interrupted) as info, handle_interrupts():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("after the signal")
            os.kill(os.getpid(), signal.SIGINT)  # a second one while stopping is only logged
            steps.append("end of the block")
        steps.append("never")
    assert steps == ["after the signal", "end of the block"]
    assert info.value.signum == signal.SIGINT


def test_an_error_leaving_a_deferred_block_gives_way_to_the_signal():
    with pytest.raises(Interrupted), handle_interrupts(), deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        raise OSError("no space")


def test_an_ignored_signal_stays_ignored():
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with handle_interrupts():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, old)


def test_exit_codes_follow_the_shell_convention():
    assert exit_code(signal.SIGTERM) == 143 and exit_code(signal.SIGINT) == 130


def test_a_signal_swallowed_by_library_code_is_raised_again_at_the_next_safe_point():
    from bids_fcd.interrupts import check

    with pytest.raises(Interrupted), handle_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        except BaseException:  # noqa: BLE001 - what some libraries do
            pass
        check()
