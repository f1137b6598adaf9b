"""The Zenoh transport, live: real Zenoh sessions in separate processes talking over 127.0.0.1 (multicast
scouting off), checked against rmw_zenoh's wire format by a raw Zenoh session and independent decoders
(zenoh.ext's deserializer, xxhash, the published RIHS01 hash of std_msgs/msg/String)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.errors import TransportError
from edgefuse.msgs import deserialize, serialize
from edgefuse.transport.base import LATCHED, RELIABLE, SENSOR_DATA, Received, Transport, open_transport
from tests.transport._zenoh_peer import NAMESPACE, NODE, messages

zenoh = pytest.importorskip("zenoh")
xxhash = pytest.importorskip("xxhash")

from edgefuse.transport.zenoh import (  # noqa: E402  (after the importorskip)
    ZenohTransport,
    decode_attachment,
    encode_attachment,
    qos_token,
    topic_key_expr,
    type_hash,
)

HERE = Path(__file__).parent
DOMAIN = 7
#: REP-2016 hash of std_msgs/msg/String as ROS 2 Jazzy publishes it (rmw_zenoh's docs/design.md examples)
STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
STRING_KEY = f"{DOMAIN}/edgefuse_test/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _same(a: Any, b: Any) -> bool:
    """Decoded ROS messages equal field by field (numpy arrays by value)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a).__name__ == type(b).__name__ and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Child:
    """A helper process (killed in close); its first line must be ``ready <zid>``."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.line(30)
        assert line.startswith("ready "), line
        self.zid = line.split()[1]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from {self.proc.args!r} in {timeout} s") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _raw_session(endpoint: str) -> Any:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
    conf.insert_json5("listen/endpoints", '["tcp/127.0.0.1:0"]')
    conf.insert_json5("scouting/multicast/enabled", "false")
    return zenoh.open(conf)


class _Tokens:
    """The liveliness tokens alive under ``@ros2_lv/<DOMAIN>/`` as a raw session sees them (a liveliness
    subscriber with history, as rmw_zenoh's graph cache does)."""

    def __init__(self, session: Any) -> None:
        self._alive: set[str] = set()
        self._lock = threading.Lock()
        self._sub = session.liveliness().declare_subscriber(f"@ros2_lv/{DOMAIN}/**", self._on, history=True)

    def _on(self, sample: Any) -> None:
        with self._lock:
            if sample.kind == zenoh.SampleKind.PUT:
                self._alive.add(str(sample.key_expr))
            else:
                self._alive.discard(str(sample.key_expr))

    def of(self, zid: str) -> set[str]:
        with self._lock:
            return {t for t in self._alive if t.split("/")[2] == zid}


@pytest.fixture
def hub() -> Iterator[tuple[ZenohTransport, str]]:
    """A ZenohTransport in router mode (rmw_zenoh's topology: a router, peers meshing through gossip) listening
    on a free 127.0.0.1 port that the other sessions connect to."""
    endpoint = f"tcp/127.0.0.1:{_free_port()}"
    transport = ZenohTransport(mode="router", connect=[], listen=[endpoint], domain_id=DOMAIN, namespace=NAMESPACE,
                               node_name="hub", multicast_scouting=False)
    with transport:
        yield transport, endpoint


def _expected_tokens(zid: str, kind: str, qos: str) -> set[str]:
    out = {f"@ros2_lv/{DOMAIN}/{zid}/0/0/NN/%/%edgefuse_test/{NODE}"}
    for i, (topic, msgtype, _) in enumerate(messages(), start=1):
        pkg, _, name = msgtype.split("/")
        out.add(f"@ros2_lv/{DOMAIN}/{zid}/0/{i}/{kind}/%/%edgefuse_test/{NODE}/%edgefuse_test%{topic}/"
                f"{pkg}::msg::dds_::{name}_/{type_hash(msgtype)}/{qos}")
    return out


# --- the format, without a network ------------------------------------------------------------------------------


def test_type_hashes_and_key_expressions_are_rmw_zenohs() -> None:
    assert type_hash("std_msgs/msg/String") == STRING_HASH
    # computed by rosbags from Jazzy's definitions, which match edgefuse's (Humble-based) store for these types
    assert type_hash("sensor_msgs/msg/PointCloud2").startswith("RIHS01_")
    from rosbags.typesys import Stores, get_typestore

    jazzy = get_typestore(Stores.ROS2_JAZZY)
    # NavSatFix: Jazzy only added constants (not on the wire) -> Jazzy's hash, so Jazzy peers match ...
    assert type_hash("sensor_msgs/msg/NavSatFix") == jazzy.hash_rihs01("sensor_msgs/msg/NavSatFix")
    # ... Range: Jazzy added a field, edgefuse's CDR is Humble's -> its own hash, so Jazzy peers don't match
    assert type_hash("sensor_msgs/msg/Range") != jazzy.hash_rihs01("sensor_msgs/msg/Range")
    assert topic_key_expr(0, "/robot1/chatter", "std_msgs/msg/String", STRING_HASH) == (
        f"0/robot1/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}")  # design.md's namespaced example
    assert (qos_token(RELIABLE), qos_token(SENSOR_DATA), qos_token(LATCHED)) == (
        "::,10:,:,:,,", "2::,5:,:,:,,", ":1:,1:,:,:,,")


def test_attachment_matches_zenohs_serializer() -> None:
    from zenoh.ext import Int64, z_deserialize

    gid = bytes(range(16))
    data = encode_attachment(42, 1_700_000_000_123_456_789, gid)
    assert len(data) == 33
    # independent decode: rmw_zenoh writes it with zenoh-ext's serializer as (int64, int64, 16-byte array)
    seq, stamp, raw_gid = z_deserialize(tuple[Int64, Int64, bytes], zenoh.ZBytes(data))
    assert (int(seq), int(stamp), raw_gid) == (42, 1_700_000_000_123_456_789, gid)
    assert decode_attachment(data) == (42, 1_700_000_000_123_456_789, gid)
    # the keyed form of rmw_zenoh 0.2.0-0.2.3, written by zenoh's own serializer, is read too
    from zenoh.ext import z_serialize

    keyed = z_serialize(("sequence_number", Int64(5), "source_timestamp", Int64(77), "source_gid", gid))
    assert decode_attachment(keyed.to_bytes()) == (5, 77, gid)
    for junk in (b"", b"junk", data[:-1], data + b"\0", keyed.to_bytes()[:-3]):
        assert decode_attachment(junk) is None


def test_missing_zenoh_is_a_transport_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zenoh", None)  # import zenoh -> ImportError
    with pytest.raises(TransportError, match=r"pip install 'edgefuse\[zenoh\]'"):
        open_transport("zenoh")


def test_bad_options_are_refused() -> None:
    with pytest.raises(TransportError, match="mode"):
        ZenohTransport(mode="broker")
    with pytest.raises(TransportError, match="domain_id"):
        ZenohTransport(domain_id=-1)
    with pytest.raises(TransportError, match="list of endpoint"):
        ZenohTransport(connect="tcp/127.0.0.1:7447")  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="not open"):
        ZenohTransport(connect=[], listen=[]).advertise("x", "std_msgs/msg/String")
    with pytest.raises(TransportError, match=r"no router|cannot open"):  # client mode needs a router
        ZenohTransport(mode="client", connect=[f"tcp/127.0.0.1:{_free_port()}"]).open()


# --- live, across processes -------------------------------------------------------------------------------------


def test_messages_from_another_process_arrive_decoded_with_rmw_zenoh_metadata(
        hub: tuple[ZenohTransport, str]) -> None:
    transport, endpoint = hub
    assert isinstance(transport, Transport)
    received: dict[str, list[Received]] = {t: [] for t, _, _ in messages()}
    for topic, msgtype, _ in messages():
        transport.subscribe(topic, msgtype, received[topic].append)
    raw = _raw_session(endpoint)
    raw_samples: queue.Queue[Any] = queue.Queue()
    raw_sub = raw.declare_subscriber(f"{DOMAIN}/edgefuse_test/chatter/**", raw_samples.put)
    tokens = _Tokens(raw)
    child = _Child(str(HERE / "_zenoh_peer.py"), "pub", endpoint)
    try:
        _wait(lambda: all(len(r) >= 3 for r in received.values()), 30, "3 messages on each topic")
        # what the other process published is exactly what arrived, once decoded
        for topic, msgtype, msg in messages():
            first = received[topic][0]
            assert (first.topic, first.msgtype, first.fmt) == (f"{NAMESPACE}/{topic}", msgtype, "cdr")
            assert _same(deserialize(first.data, msgtype), msg)
            seqs = [r.seq for r in received[topic][:3]]
            assert seqs[0] is not None and seqs == list(range(seqs[0], seqs[0] + 3))
            assert all(abs(r.source_ns - time.time_ns()) < 60e9 for r in received[topic] if r.source_ns)
            assert all(r.recv_ns <= time.monotonic_ns() for r in received[topic])
        # the wire, seen by a raw Zenoh session: rmw_zenoh's key expression and 33-byte attachment ...
        sample = raw_samples.get(timeout=10)
        assert str(sample.key_expr) == STRING_KEY
        attachment = sample.attachment.to_bytes()
        assert len(attachment) == 33 and attachment[16] == 16
        # ... and liveliness tokens: the node, one publisher per topic (entity ids 1..3, RELIABLE's QoS)
        expected = _expected_tokens(child.zid, "MP", "::,10:,:,:,,")
        _wait(lambda: len(tokens.of(child.zid)) >= 4, 10, "the publisher's liveliness tokens")
        assert tokens.of(child.zid) == expected
        # the GID in the attachment is rmw_zenoh's: XXH3-128 of the publisher's token, low half first
        mp = next(t for t in expected if "/MP/" in t and "%chatter/" in t)
        gid = xxhash.xxh3_128(mp.encode()).digest()  # canonical big-endian: high 64 bits first
        assert attachment[17:] == gid[8:][::-1] + gid[:8][::-1]
        assert received["chatter"][0].publisher == attachment[17:].hex()
        # the publisher process going away undeclares its tokens
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        assert child.proc.wait(timeout=15) == 0
        _wait(lambda: not tokens.of(child.zid), 10, "the tokens of the closed publisher to go")
        assert transport.stats()["type_mismatch"] == 0
    finally:
        child.close()
        raw_sub.undeclare()
        raw.close()


def test_messages_we_publish_are_decoded_by_another_process(hub: tuple[ZenohTransport, str], tmp_path: Path) -> None:
    transport, endpoint = hub
    pubs = [(transport.advertise(t, m, RELIABLE), serialize(msg, m)) for t, m, msg in messages()]
    raw = _raw_session(endpoint)
    tokens = _Tokens(raw)
    child = _Child(str(HERE / "_zenoh_peer.py"), "sub", endpoint, str(tmp_path))
    try:
        # the subscriptions' tokens (SENSOR_DATA is the default subscription QoS)
        _wait(lambda: len(tokens.of(child.zid)) == 4, 10, "the subscriber's liveliness tokens")
        assert tokens.of(child.zid) == _expected_tokens(child.zid, "MS", "2::,5:,:,:,,")
        stamp = 1_700_000_000_000_000_000
        sent = 0
        done = ""
        deadline = time.monotonic() + 30
        while not done.startswith("done") and time.monotonic() < deadline:
            for pub, data in pubs:
                pub.publish(memoryview(data), stamp_ns=stamp)
            sent += 1
            with contextlib.suppress(queue.Empty):
                done = child.lines.get(timeout=0.1)
        assert done.startswith("done"), done
        for i, (topic, msgtype, msg) in enumerate(messages()):
            meta = json.loads((tmp_path / f"{i}.json").read_text())
            assert _same(deserialize((tmp_path / f"{i}.cdr").read_bytes(), msgtype), msg)
            assert meta["topic"] == f"{NAMESPACE}/{topic}" and meta["source_ns"] == stamp
            assert 1 <= meta["seq"] <= sent
            assert meta["publisher"] == pubs[i][0].gid.hex()
        assert child.proc.wait(timeout=15) == 0
        assert transport.stats()["published"] == 3 * sent
        # closing a publisher undeclares its token; the node's stays until the transport closes
        assert len(tokens.of(transport.zid)) == 4  # the node and 3 publishers
        pubs[0][0].close()
        pubs[0][0].close()  # idempotent
        _wait(lambda: len(tokens.of(transport.zid)) == 3, 10, "the closed publisher's token to go")
        with pytest.raises(TransportError, match="closed"):
            pubs[0][0].publish(b"\0\1\0\0")
    finally:
        child.close()
        raw.close()


def test_other_types_and_bad_attachments_are_counted_not_crashing(hub: tuple[ZenohTransport, str]) -> None:
    transport, endpoint = hub
    got: queue.Queue[Received] = queue.Queue()
    transport.subscribe("chatter", "std_msgs/msg/String", got.put)
    raw = _raw_session(endpoint)
    try:
        string = bytes(serialize(messages()[0][2], "std_msgs/msg/String"))
        int32_key = f"{DOMAIN}/edgefuse_test/chatter/std_msgs::msg::dds_::Int32_/{type_hash('std_msgs/msg/Int32')}"
        stale_key = f"{DOMAIN}/edgefuse_test/chatter/std_msgs::msg::dds_::String_/RIHS01_{'0' * 64}"
        gid = bytes(range(16))
        _wait(lambda: transport.stats()["peers"] >= 1, 10, "the raw session to connect")
        time.sleep(0.3)  # its subscription declarations to propagate
        raw.put(int32_key, b"\0\1\0\0\7\0\0\0", attachment=encode_attachment(1, 2, gid))  # another type
        raw.put(stale_key, string, attachment=encode_attachment(1, 2, gid))  # another definition of String
        raw.put(f"{DOMAIN}/edgefuse_test/chatter/sub/std_msgs::msg::dds_::String_/x", string)  # another topic
        raw.put(STRING_KEY, string, attachment=b"garbage")
        raw.put(STRING_KEY, string)
        raw.put(STRING_KEY, string, attachment=encode_attachment(9, 10, gid))
        delivered = [got.get(timeout=10) for _ in range(3)]
        assert [(r.seq, r.source_ns, r.publisher) for r in delivered] == [
            (None, None, None), (None, None, None), (9, 10, gid.hex())]
        assert all(deserialize(r.data, "std_msgs/msg/String").data == messages()[0][2].data for r in delivered)
        time.sleep(0.3)
        assert got.empty()
        stats = transport.stats()
        assert (stats["type_mismatch"], stats["bad_attachment"], stats["no_attachment"], stats["received"]) == (
            2, 1, 1, 3)
    finally:
        raw.close()


def test_a_callback_that_raises_is_counted(hub: tuple[ZenohTransport, str]) -> None:
    transport, endpoint = hub

    def boom(r: Received) -> None:
        raise TransportError("node bug")

    transport.subscribe("chatter", "std_msgs/msg/String", boom)
    with ZenohTransport(connect=[endpoint], listen=[], domain_id=DOMAIN, namespace=NAMESPACE) as other:
        pub = other.advertise("chatter", "std_msgs/msg/String")
        _wait(lambda: transport.stats()["peers"] >= 1, 10, "the peers to connect")
        data = serialize(messages()[0][2], "std_msgs/msg/String")

        def delivered() -> bool:
            pub.publish(data)
            return bool(transport.stats()["callback_errors"] >= 2)

        _wait(delivered, 10, "the callback to be called")
    assert transport.stats()["received"] >= 2


def test_transient_local_serves_late_joiners(hub: tuple[ZenohTransport, str]) -> None:
    transport, endpoint = hub
    data = [serialize(type(messages()[0][2])(data=f"static {i}"), "std_msgs/msg/String") for i in range(3)]
    latched = transport.advertise("tf_static_like", "std_msgs/msg/String", LATCHED)  # depth 1
    for d in data:
        latched.publish(d)
    got: queue.Queue[Received] = queue.Queue()
    with ZenohTransport(connect=[endpoint], listen=[], domain_id=DOMAIN, namespace=NAMESPACE) as late:
        late.subscribe("tf_static_like", "std_msgs/msg/String", got.put, LATCHED)
        first = got.get(timeout=10)
        assert deserialize(first.data, "std_msgs/msg/String").data == "static 2" and first.seq == 3
        time.sleep(0.5)
        assert got.empty()  # only the last `depth` sample


def test_client_reconnects_after_the_router_restarts(tmp_path: Path) -> None:
    endpoint = f"tcp/127.0.0.1:{_free_port()}"
    router = _Child(str(HERE / "_zenoh_router.py"), endpoint)
    got: queue.Queue[Received] = queue.Queue()
    options: dict[str, Any] = {"mode": "client", "connect": [endpoint], "domain_id": DOMAIN}
    sub_side = ZenohTransport(node_name="sub_side", **options)
    pub_side = ZenohTransport(node_name="pub_side", **options)
    data = serialize(messages()[0][2], "std_msgs/msg/String")
    try:
        sub_side.open().subscribe("chatter", "std_msgs/msg/String", got.put, RELIABLE)
        pub = pub_side.open().advertise("chatter", "std_msgs/msg/String")

        def flows() -> bool:
            pub.publish(data)
            try:
                got.get(timeout=0.1)
            except queue.Empty:
                return False
            return True

        _wait(flows, 15, "messages through the router")
        assert sub_side.stats()["routers"] == 1
        router.close()
        _wait(lambda: sub_side.stats()["disconnects"] >= 1 and pub_side.stats()["disconnects"] >= 1, 15,
              "both clients to see the router go")
        assert sub_side.stats()["routers"] == 0
        pub.publish(data)  # no router: dropped, not an error
        router = _Child(str(HERE / "_zenoh_router.py"), endpoint)
        _wait(lambda: sub_side.stats()["reconnects"] >= 1 and pub_side.stats()["reconnects"] >= 1, 30,
              "both clients to reconnect")
        while not got.empty():
            got.get_nowait()
        _wait(flows, 15, "messages to flow again after the restart")
    finally:
        pub_side.close()
        sub_side.close()
        router.close()
