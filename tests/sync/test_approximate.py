"""Approximate-time policy: hand-checked cases, the C++ semantics, and its documented properties."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import ApproximateTimeSynchronizer, approximate_sync_batch, make_synchronizer

from .helpers import as_rows, feed, rows, stamp_order
from .reference import brute_force_sets, reference_sets

AB = ("a", "b")
ABC = ("a", "b", "c")


def approx(inputs: tuple[str, ...] = AB, **params: Any) -> ApproximateTimeSynchronizer:
    return ApproximateTimeSynchronizer(inputs, **params)


# -- hand-checked cases (message_filters test_approximate_time_policy.cpp style) ---------------------


def test_exact_match_pairs_one_to_one() -> None:
    s = [[0, 100, 200, 300], [0, 100, 200, 300]]
    sets = feed(approx(), s)
    assert rows(sets, AB) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert all(x.spread_ns == 0 and x.stamp_ns == 100 * i for i, x in enumerate(sets))


def test_published_early_without_flush_when_provably_optimal() -> None:
    # a: 0, 3 ; b: 1.  After a@3 arrives, {a0, b1} (span 1) cannot be beaten: any later set contains b1
    # and a message >= 3.
    sync = approx(age_penalty=0.0)
    assert sync.push("a", 0, "a0") == []
    assert sync.push("b", 1, "b0") == []
    out = sync.push("a", 3, "a1")
    assert [(x.members, x.stamp_ns, x.spread_ns) for x in out] == [({"a": "a0", "b": "b0"}, 1, 1)]


def test_waits_while_a_better_set_may_still_come() -> None:
    # a: 0, 2 ; b: 3.  {a@2, b@3} (span 1) beats {a@0, b@3}; a later a-message could be closer still.
    sync = approx(age_penalty=0.0)
    out = sync.push("a", 0, 0) + sync.push("b", 3, 0) + sync.push("a", 2, 1)
    assert out == []
    out = sync.push("a", 4, 2)  # a@4: span 1 as well, not better (ties keep the earlier) -> publish a@2
    assert rows(out, AB) == [(1, 0)]
    assert sync.stats.inputs["a"].dropped == {"unmatched": 1}  # a@0 was passed over


def test_one_fast_one_slow_topic() -> None:
    # a at 10 Hz-ish (every 10), b every 3: each a message takes the nearest b message.
    a = [0, 10, 20, 30, 40]
    b = list(range(1, 45, 3))  # 1, 4, 7, 10, 13, ...
    sets = feed(approx(age_penalty=0.0), [a, b])
    pairs = [(a[i], b[j]) for i, j in rows(sets, AB)]
    assert pairs == [(0, 1), (10, 10), (20, 19), (30, 31), (40, 40)]


def test_dropped_messages_gap_in_one_topic() -> None:
    # b misses the message near 20: the a@20 message is skipped, not paired with something far away.
    a = [0, 10, 20, 30]
    b = [1, 11, 31]
    sets = feed(approx(age_penalty=0.0), [a, b])
    assert [(a[i], b[j]) for i, j in rows(sets, AB)] == [(0, 1), (10, 11), (30, 31)]


def test_max_interval_rejects_wide_sets_and_counts_drops() -> None:
    a = [0, 100, 200]
    b = [5, 150, 203]
    sync = approx(max_interval_ns=10, age_penalty=0.0)
    sets = feed(sync, [a, b])
    assert [(a[i], b[j]) for i, j in rows(sets, AB)] == [(0, 5), (200, 203)]
    assert all(x.spread_ns <= 10 for x in sets)
    stats = sync.stats
    assert stats.dropped().get("max_interval", 0) == 2  # a@100 and b@150
    assert stats.balanced()


def test_queue_size_drops_oldest_and_is_counted() -> None:
    sync = approx(queue_size=3)
    for i, t in enumerate([0, 10, 20, 30, 40]):
        assert sync.push("a", t, i) == []
    st_a = sync.stats.inputs["a"]
    assert st_a.dropped == {"queue_full": 2}
    assert st_a.queued == 3
    assert st_a.balanced()


def test_three_topics_regular_rates() -> None:
    a = list(range(0, 300, 30))  # 30
    b = list(range(2, 300, 10))  # 10, offset 2
    c = list(range(1, 300, 100))  # slow, offset 1
    sets = feed(approx(ABC, age_penalty=0.0), [a, b, c])
    got = [(a[i], b[j], c[k]) for i, j, k in rows(sets, ABC)]
    assert got == [(0, 2, 1), (90, 92, 101), (210, 202, 201)]


def test_out_of_order_and_duplicates_are_dropped_with_reason() -> None:
    sync = approx()
    sync.push("a", 10, 0)
    assert sync.push("a", 10, 1) == []
    assert sync.push("a", 5, 2) == []
    d = sync.stats.inputs["a"].dropped
    assert d == {"duplicate": 1, "out_of_order": 1}
    assert sync.stats.balanced()


def test_bad_inputs_raise_sync_error() -> None:
    sync = approx()
    with pytest.raises(SyncError, match="unknown input"):
        sync.push("zz", 1, None)
    with pytest.raises(SyncError, match="integer nanoseconds"):
        sync.push("a", 1.5, None)  # type: ignore[arg-type]
    for bad in (
        {"queue_size": 0},
        {"age_penalty": -1.0},
        {"max_interval_ns": -5},
        {"inter_message_lower_bound_ns": {"nope": 3}},
    ):
        with pytest.raises(SyncError, match=next(iter(bad))):
            make_synchronizer("approximate", AB, **bad)


def test_numpy_int_stamps_accepted() -> None:
    sync = approx()
    stamp: Any = np.int64(5)
    out = sync.push("a", stamp, 0) + sync.push("b", stamp, 0) + sync.flush()
    assert rows(out, AB) == [(0, 0)]
    assert isinstance(out[0].stamp_ns, int)


# -- properties ------------------------------------------------------------------------------------


@st.composite
def sorted_streams(draw: st.DrawFn, k_min: int = 2, k_max: int = 3, n_max: int = 12) -> list[list[int]]:
    k = draw(st.integers(k_min, k_max))
    streams = []
    for _ in range(k):
        values = draw(st.lists(st.integers(0, 200), min_size=0, max_size=n_max, unique=True))
        streams.append(sorted(values))
    return streams


@st.composite
def interleaving(draw: st.DrawFn, streams: list[list[int]]) -> list[int]:
    remaining = [len(s) for s in streams]
    order: list[int] = []
    while any(remaining):
        choices = [k for k, r in enumerate(remaining) if r]
        k = draw(st.sampled_from(choices))
        order.append(k)
        remaining[k] -= 1
    return order


params_strategy = st.fixed_dictionaries(
    {
        "age_penalty": st.sampled_from([0.0, 0.1, 0.5]),
        "max_interval_ns": st.sampled_from([None, 5, 30]),
        "inter_message_lower_bound_ns": st.sampled_from([0, 1, 3]),
    }
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_invariants(sets_rows: list[tuple[int, ...]], streams: list[list[int]]) -> None:
    k = len(streams)
    for col in range(k):
        used = [r[col] for r in sets_rows]
        assert len(used) == len(set(used)), "a message was used twice"
    for prev, cur in itertools.pairwise(sets_rows):
        assert all(cur[i] > prev[i] for i in range(k)), "sets cross"
        assert max(streams[i][cur[i]] for i in range(k)) >= max(streams[i][prev[i]] for i in range(k))


@FAST
@given(data=st.data(), streams=sorted_streams(), params=params_strategy)
def test_arrival_order_does_not_change_the_sets(
    data: st.DataObject, streams: list[list[int]], params: dict[str, Any]
) -> None:
    names = tuple("abc"[: len(streams)])
    # The lower bound must be true of the data (a violated bound voids the guarantee): spread the stamps.
    bound = int(params["inter_message_lower_bound_ns"])
    streams = [[t + i * bound for i, t in enumerate(s)] for s in streams]
    reference = rows(feed(ApproximateTimeSynchronizer(names, **params), streams), names)
    order = data.draw(interleaving(streams))
    sync = ApproximateTimeSynchronizer(names, **params)
    got = rows(feed(sync, streams, order), names)
    assert got == reference
    _check_invariants(got, streams)
    stats = sync.stats
    assert stats.balanced()
    assert all(s.queued == 0 for s in stats.inputs.values())  # flush empties the queues
    assert all(s.used == len(got) for s in stats.inputs.values())


@FAST
@given(data=st.data(), streams=sorted_streams(), params=params_strategy, queue_size=st.integers(1, 6))
def test_matches_slow_reference_any_order_any_queue(
    data: st.DataObject, streams: list[list[int]], params: dict[str, Any], queue_size: int
) -> None:
    names = tuple("abc"[: len(streams)])
    order = data.draw(interleaving(streams))
    sync = ApproximateTimeSynchronizer(names, queue_size=queue_size, **params)
    got = rows(feed(sync, streams, order), names)
    expected = reference_sets(
        streams,
        order,
        queue_size=queue_size,
        max_interval=params["max_interval_ns"],
        age_penalty=params["age_penalty"],
        lower_bounds=[params["inter_message_lower_bound_ns"]] * len(streams),
    )
    assert got == expected
    _check_invariants(got, streams)
    assert sync.stats.balanced()


@FAST
@given(streams=sorted_streams(n_max=6))
def test_equals_brute_force_optimum(streams: list[list[int]]) -> None:
    names = tuple("abc"[: len(streams)])
    got = rows(feed(ApproximateTimeSynchronizer(names, age_penalty=0.0), streams), names)
    assert got == brute_force_sets(streams)


@FAST
@given(
    streams=sorted_streams(),
    params=params_strategy,
    queue_size=st.sampled_from([2, 4, 100]),
    flush=st.booleans(),
)
def test_batch_equals_streaming(
    streams: list[list[int]], params: dict[str, Any], queue_size: int, flush: bool
) -> None:
    names = tuple("abc"[: len(streams)])
    sync = ApproximateTimeSynchronizer(names, queue_size=queue_size, **params)
    streamed = rows(feed(sync, streams, stamp_order(streams), flush=flush), names)
    batch = approximate_sync_batch(
        [np.array(s, dtype=np.int64) for s in streams],
        queue_size=queue_size,
        flush=flush,
        **params,
    )
    assert batch.dtype == np.int64
    assert batch.shape == (len(streamed), len(streams))
    assert as_rows(batch) == streamed


def test_batch_equals_streaming_on_long_jittery_streams() -> None:
    rng = np.random.default_rng(7)
    a = np.cumsum(rng.integers(30_000_000, 36_000_000, 600))
    b = np.cumsum(rng.integers(95_000_000, 105_000_000, 200))
    c = np.cumsum(rng.integers(8_000_000, 12_000_000, 2000))
    streams = [a.tolist(), b.tolist(), c.tolist()]
    all_params: list[dict[str, Any]] = [{}, {"queue_size": 5}, {"max_interval_ns": 4_000_000}]
    for params in all_params:
        sync = ApproximateTimeSynchronizer(ABC, **params)
        streamed = rows(feed(sync, streams), ABC)
        assert as_rows(approximate_sync_batch([a, b, c], **params)) == streamed
        assert sync.stats.balanced()
        assert len(streamed) > (150 if "max_interval_ns" not in params else 20)
        assert all(
            x.spread_ns <= params.get("max_interval_ns", 10**18)
            for x in feed(ApproximateTimeSynchronizer(ABC, **params), streams)
        )


def test_batch_rejects_bad_input() -> None:
    with pytest.raises(SyncError, match="integer"):
        approximate_sync_batch([np.array([0.5, 1.5]), np.array([1, 2])])
    with pytest.raises(SyncError, match="at least 2"):
        approximate_sync_batch([np.array([1, 2])])
    with pytest.raises(SyncError, match="queue_size"):
        approximate_sync_batch([np.array([1]), np.array([1])], queue_size=0)
