"""The end-of-run summary table of the participant level."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bids_fcd.workflows.summary import SummaryRow, format_duration, format_summary, participant_summary, summary_rows


@dataclass
class Result:
    """Stands in for the participant loop's ParticipantResult."""

    prefix: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    clusters: int | None = None


def test_the_table_of_given_rows():
    rows = [SummaryRow("sub-00001", "done", 3, 42.4), SummaryRow("sub-00002", "skipped"),
            SummaryRow("sub-00003_ses-1", "failed", None, 65.0), SummaryRow("sub-00004", "done", 12, 7262.0)]
    assert format_summary(rows).splitlines() == [
        "participant summary (4 participants: 2 done, 1 skipped, 1 failed)",
        "  participant      status   clusters        time",
        "  sub-00001        done            3        42 s",
        "  sub-00002        skipped         -           -",
        "  sub-00003_ses-1  failed          -  1 min 05 s",
        "  sub-00004        done           12  2 h 01 min",
    ]


def test_durations():
    assert [format_duration(s) for s in (None, 0.2, 59.4, 60, 65, 3599, 3600, 7262)] == [
        "-", "0 s", "59 s", "1 min 00 s", "1 min 05 s", "59 min 59 s", "1 h 00 min", "2 h 01 min"]


def test_rows_from_results():
    results = [Result("sub-01", True, seconds=12.0, clusters=2), Result("sub-02", True, "skipped"),
               Result("sub-03", False, "the FLAIR is missing", 1.5), Result("sub-04", True, seconds=3.0, clusters=0)]
    assert summary_rows(results) == [SummaryRow("sub-01", "done", 2, 12.0), SummaryRow("sub-02", "skipped", None, None),
                                     SummaryRow("sub-03", "failed", None, 1.5), SummaryRow("sub-04", "done", 0, 3.0)]
    assert participant_summary(results).splitlines()[0] == "participant summary (4 participants: 2 done, 1 skipped, 1 failed)"


def test_one_participant_and_none():
    assert format_summary([SummaryRow("sub-01", "done", 0, 1.0)]).splitlines()[0] == \
        "participant summary (1 participant: 1 done, 0 skipped, 0 failed)"
    assert format_summary([]).splitlines() == ["participant summary (0 participants: 0 done, 0 skipped, 0 failed)",
                                               "  participant  status  clusters  time"]


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status 'crashed'"):
        format_summary([SummaryRow("sub-01", "crashed")])
