"""One writer per participant: a second holder waits for the first and is told who holds the lock."""

from __future__ import annotations

import threading
import time

from bids_fcd.workflows.locking import exclusive_lock, lock_path, participant_lock


def test_a_second_holder_waits_until_the_first_releases(tmp_path, caplog):
    path = lock_path(tmp_path, "sub-01")
    held, events = threading.Event(), []

    def first() -> None:
        with exclusive_lock(path, "sub-01"):
            held.set()
            time.sleep(0.5)
            events.append("first released")

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    with participant_lock(tmp_path, "sub-01") as lock:  # another open file: flock keeps them apart in one process too
        events.append("second holds")
        assert lock.held and lock.waited
    t.join()
    assert events == ["first released", "second holds"]
    assert "sub-01: pid" in caplog.text and "waiting for it to finish" in caplog.text and str(path) in caplog.text
    assert not path.parent.exists(), "the lock file and its folder are removed on release"


def test_other_participants_do_not_wait(tmp_path):
    with participant_lock(tmp_path, "sub-01") as a, participant_lock(tmp_path, "sub-02") as b:
        assert a.held and b.held and not a.waited and not b.waited
