"""/diagnostics statuses: windowed latency against budgets, input rate/staleness/drops, the message."""

from __future__ import annotations

from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.typestore import get_typestore
from edgefuse.node.diagnostics import DIAGNOSTICS_TYPE, ERROR, OK, STALE, WARN, Diagnostics, to_message
from edgefuse.node.inputs import InputCounters
from edgefuse.pipeline.latency import LatencyRecorder

MS = 1_000_000
S = 1_000_000_000


def test_latency_levels_follow_the_window_not_the_whole_run() -> None:
    d = Diagnostics("p", window_s=5.0)
    rec = LatencyRecorder("stage", budget_ns=10 * MS)
    for _ in range(100):
        rec.add(50 * MS)  # all late
    assert d.latency_status("stage/x", rec, None, now_ns=1 * S).level == ERROR
    for _ in range(200):
        rec.add(2 * MS)
    d.latency_status("stage/x", rec, None, now_ns=4 * S)
    # 7 s later the window holds only the fast samples
    for _ in range(100):
        rec.add(2 * MS)
    st = d.latency_status("stage/x", rec, None, now_ns=11 * S)
    assert st.level == OK, st
    assert st.values["count"] == "100"
    assert st.values["total_count"] == "400"
    assert float(st.values["p99_ms"]) == 2.0
    rec.add(20 * MS)  # one miss among 101: p99 is still within the deadline
    st = d.latency_status("stage/x", rec, 3.0, now_ns=12 * S)
    assert st.level == WARN
    assert "deadline miss" in st.message


def test_p99_budget_warns() -> None:
    d = Diagnostics("p")
    rec = LatencyRecorder("e2e", budget_ns=100 * MS)
    for _ in range(50):
        rec.add(20 * MS)
    st = d.latency_status("end_to_end", rec, 10.0, now_ns=S)
    assert (st.level, st.name) == (WARN, "edgefuse/p/end_to_end")


def test_inputs_go_stale_and_warn_on_new_drops() -> None:
    d = Diagnostics("p", stale_after_s=1.0, window_s=2.0)
    c = InputCounters("/a", "/robot/a", "sensor_msgs/msg/Imu")
    assert d.input_status("a", c, now_ns=2 * S, active_since_ns=0).level == STALE
    for t in range(10):
        c.recent.append(S + t * 100 * MS)
        c.received += 1
    c.last_recv_ns = S + 900 * MS
    st = d.input_status("a", c, now_ns=2 * S, active_since_ns=0)
    assert st.level == OK
    assert float(st.values["rate_hz"]) == 5.0  # 10 messages in the 2 s window
    c.drop("queue_full", 3)
    st = d.input_status("a", c, now_ns=2 * S, active_since_ns=0)
    assert (st.level, st.values["dropped_queue_full"]) == (WARN, "3")
    assert d.input_status("a", c, now_ns=2 * S, active_since_ns=0).level == OK  # nothing new since
    st = d.input_status("a", c, now_ns=4 * S, active_since_ns=0)
    assert st.level == STALE
    assert "no message for 2.1 s" in st.message


def test_the_message_round_trips_in_both_wire_formats() -> None:
    d = Diagnostics("p")
    rec = LatencyRecorder("x", budget_ns=MS)
    rec.add(5 * MS)
    statuses = [d.latency_status("stage/x", rec, None, now_ns=S)]
    msg = to_message(statuses, 1_700_000_000 * S, get_typestore())
    for fmt in ("cdr", "ros1"):
        back = deserialize(serialize(msg, DIAGNOSTICS_TYPE, fmt=fmt), DIAGNOSTICS_TYPE, fmt=fmt)
        assert back.status[0].level == ERROR
        assert back.status[0].name == "edgefuse/p/stage/x"
        assert {kv.key: kv.value for kv in back.status[0].values}["deadline_ms"] == "1.000"
