"""bids_fcd.timing: stages are recorded only inside record()/record_spans(), nested spans told apart."""

from bids_fcd.timing import record, record_spans, stage


def test_spans_nest_and_nothing_is_recorded_outside():
    with stage("outside"):
        pass
    with record() as rec, record_spans() as spans:
        with stage("write"), stage("report"):
            pass
    assert [n for n, _ in rec] == ["report", "write"] and [n for n, _, _ in spans] == ["report", "write"]
    (_, r0, r1), (_, w0, w1) = spans
    assert w0 <= r0 <= r1 <= w1, "the report span lies inside the write span"
    assert abs(rec[0][1] - (r1 - r0)) < 1e-9
