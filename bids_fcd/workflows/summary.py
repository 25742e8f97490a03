"""The table logged at the end of a participant-level run: one row per participant (and session).

    participant summary (3 participants: 1 done, 1 skipped, 1 failed)
      participant      status   clusters        time
      sub-00001        done            3        42 s
      sub-00002        skipped         -           -
      sub-00003_ses-1  failed          -  1 min 05 s

:func:`format_summary` is a pure function of the rows; :func:`summary_rows` reads them from the
participant results (anything with ``prefix``, ``ok``, ``message``, ``seconds`` and ``clusters``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: What can happen to a participant: outputs written, outputs already complete (not recomputed), an error.
STATUSES = ("done", "skipped", "failed")
#: The message of a result whose outputs were already complete.
SKIPPED_MESSAGE = "skipped"
HEADER = ("participant", "status", "clusters", "time")
NOT_KNOWN = "-"


@dataclass(frozen=True)
class SummaryRow:
    """One participant (and session) of the run."""

    participant: str
    #: One of :data:`STATUSES`.
    status: str
    #: Clusters found; None when not known (failed, or skipped: its outputs are from an earlier run).
    clusters: int | None = None
    #: Wall time spent on the participant; None when nothing ran (skipped).
    seconds: float | None = None


class ParticipantOutcome(Protocol):
    """What the participant loop records of one participant (its ``ParticipantResult``)."""

    prefix: str
    ok: bool
    message: str
    seconds: float
    clusters: int | None


def status_of(result: ParticipantOutcome) -> str:
    """``done``, ``skipped`` or ``failed``."""
    if not result.ok:
        return "failed"
    return "skipped" if result.message == SKIPPED_MESSAGE else "done"


def summary_rows(results: Iterable[ParticipantOutcome]) -> list[SummaryRow]:
    """One :class:`SummaryRow` per result, in the order the participants ran."""
    rows = []
    for r in results:
        status = status_of(r)
        rows.append(SummaryRow(r.prefix, status, r.clusters if status == "done" else None,
                               None if status == "skipped" else r.seconds))
    return rows


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``4 min 05 s``, ``2 h 03 min``; :data:`NOT_KNOWN` for None."""
    if seconds is None:
        return NOT_KNOWN
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_summary(rows: Sequence[SummaryRow]) -> str:
    """The summary as text: a title line with the counts, then an aligned table (participant and status
    left-aligned, clusters and time right-aligned). Raises ValueError for a status not in :data:`STATUSES`."""
    for r in rows:
        if r.status not in STATUSES:
            raise ValueError(f"{r.participant}: unknown status {r.status!r}; expected one of {STATUSES}")
    counts = ", ".join(f"{sum(r.status == s for r in rows)} {s}" for s in STATUSES)
    title = f"participant summary ({len(rows)} participant{'' if len(rows) == 1 else 's'}: {counts})"
    cells = [HEADER] + [(r.participant, r.status, NOT_KNOWN if r.clusters is None else str(r.clusters),
                         format_duration(r.seconds)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = [title]
    for name, status, clusters, time in cells:
        lines.append(f"  {name:<{widths[0]}}  {status:<{widths[1]}}  {clusters:>{widths[2]}}  {time:>{widths[3]}}")
    return "\n".join(lines)


def participant_summary(results: Iterable[ParticipantOutcome]) -> str:
    """:func:`format_summary` of :func:`summary_rows`: what the participant level logs at its end."""
    return format_summary(summary_rows(results))
