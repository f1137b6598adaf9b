"""Live UDP at twice the recorded packet rate: ``edgefuse drivers play-pcap --rate 2`` (a separate process)
→ a receiver in this process on 127.0.0.1, decoding as it goes.

Scenarios (each about ``--seconds`` long, the capture looped to fill it):

- ``velodyne_hdl32e``: HDL-32E capture (≈1,800 packets/s recorded → ≈3,600/s) into the live source
  ``velodyne://127.0.0.1:PORT?model=HDL32E`` (``UdpReceiver`` thread + ``SweepAssembler``), sweeps consumed;
- ``velodyne_vlp16_dual``: nebula's VLP-16 dual-return packets (≈1,000/s → ≈2,000/s), same source;
- ``hesai_xt32``: nebula's XT32 recording (≈5,000 packets/s → ≈10,000/s, 1,080 B) into a raw ``UdpReceiver``
  whose datagrams are decoded by ``Xt32Decoder`` in batches of 64 (there is no Ouster live source yet).

Per scenario: datagrams sent (the player's count) and received, drops in our queue and in the kernel (the
socket's ``SO_RXQ_OVFL`` counter, and the machine-wide ``/proc/net/snmp`` ``Udp: RcvbufErrors`` before/after
— other processes' sockets count there too), CPU seconds of this (receiving) process over the run and
its CPU % over the player's send window, sweeps/points decoded.  Goal: no drops.

    python bench/bench_udp_live.py [--seconds 6] [--rate 2]

Prints JSON and writes ``bench/results/udp_live.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import environment, write_json
from edgefuse_drivers.pcap import CaptureReader, write_pcap

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT / "tests" / "data"
IDLE_S = 5.0  # the stream has ended when nothing arrived for this long (the player starts within it)
SHARED = next((p for p in (ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data",
                           Path("/work/shared/data")) if p.is_dir()), None)


def _snmp_rcvbuf_errors() -> int | None:
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    except OSError:
        return None
    return int(dict(zip(lines[0][1:], lines[1][1:], strict=True))["RcvbufErrors"])


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _player(capture: Path, port: int, rate: float, loops: int) -> subprocess.Popen[str]:
    exe = shutil.which("edgefuse", path=str(Path(sys.executable).parent)) or "edgefuse"
    return subprocess.Popen([exe, "drivers", "play-pcap", str(capture), "--to", f"udp://127.0.0.1:{port}",
                             "--rate", str(rate), "--loop", str(loops), "--port", "2368"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _capture_span(capture: Path) -> tuple[int, float]:
    st = [p.stamp_ns for p in CaptureReader(capture) if p.dst_port == 2368]
    return len(st), (st[-1] - st[0]) / 1e9 if len(st) > 1 else 0.0


def _finish_player(proc: subprocess.Popen[str], timeout: float) -> tuple[int, float, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    sent = int(out.split()[1]) if out.startswith("sent ") else -1
    span = float(out.split(" over ")[1].split()[0]) if " over " in out else float("nan")
    return sent, span, out.strip()


def run_velodyne(capture: Path, model_name: str, rate: float, seconds: float) -> dict[str, Any]:
    from edgefuse_drivers.velodyne.source import VelodyneSource

    n, span = _capture_span(capture)
    loops = max(1, round(seconds * rate / span))
    port = _free_port()
    src = VelodyneSource(f"velodyne://127.0.0.1:{port}?model={model_name}", idle_timeout_s=IDLE_S).open()
    sweeps = points = 0
    snmp0 = _snmp_rcvbuf_errors()
    cpu0, wall0 = time.process_time(), time.monotonic()
    proc = _player(capture, port, rate, loops)
    try:
        for env in src.envelopes():
            sweeps += 1
            points += env.payload.width * env.payload.height
            if time.monotonic() - wall0 > seconds * 3 + 30:
                break
        cpu = time.process_time() - cpu0
        sent, wall, line = _finish_player(proc, 30)
        assert src.receiver is not None
        assert src.assembler is not None
        stats, rcvbuf, report = src.receiver.stats, src.receiver.rcvbuf, src.report()
    finally:
        if proc.poll() is None:
            proc.kill()
        src.close()
    snmp1 = _snmp_rcvbuf_errors()
    return _result(capture, n, span, rate, loops, sent, line, stats.received, snmp0, snmp1, cpu, wall,
                   queue_drops=stats.dropped_queue, socket_drops=stats.dropped_kernel,
                   extra={"sweeps": sweeps, "points": points, "rcvbuf_bytes": rcvbuf, "source_report": report})


def run_hesai(capture: Path, rate: float, seconds: float) -> dict[str, Any]:
    from edgefuse_drivers.hesai.xt32 import Xt32Decoder
    from edgefuse_drivers.udp import UdpReceiver

    n, span = _capture_span(capture)
    loops = max(1, round(seconds * rate / span))
    rcv = UdpReceiver("127.0.0.1", 0).start()
    dec = Xt32Decoder()
    received = sweeps = points = 0
    snmp0 = _snmp_rcvbuf_errors()
    cpu0, wall0 = time.process_time(), time.monotonic()
    proc = _player(capture, rcv.port, rate, loops)
    batch: list[bytes] = []
    try:
        idle = time.monotonic() + IDLE_S  # the player needs a moment to start
        while time.monotonic() - idle < 1.0 and time.monotonic() - wall0 < seconds * 3 + 30:
            d = rcv.get(timeout=0.05)
            if d is None:
                if batch:
                    out = dec.add(batch)
                    batch = []
                    sweeps += len(out)
                    points += sum(len(s.points) for s in out)
                continue
            idle = time.monotonic()
            received += 1
            batch.append(d.payload)
            if len(batch) >= 64:
                out = dec.add(batch)
                batch = []
                sweeps += len(out)
                points += sum(len(s.points) for s in out)
        cpu = time.process_time() - cpu0
        sent, wall, line = _finish_player(proc, 30)
        stats = rcv.stats
    finally:
        if proc.poll() is None:
            proc.kill()
        rcv.close()
    snmp1 = _snmp_rcvbuf_errors()
    res = _result(capture, n, span, rate, loops, sent, line, received, snmp0, snmp1, cpu, wall,
                  queue_drops=stats.dropped_queue, socket_drops=stats.dropped_kernel,
                  extra={"sweeps": sweeps, "points": points, "rcvbuf_bytes": rcv.rcvbuf,
                         "decoder_rejected": dict(dec.counters.rejected)})
    return res


def _result(  # noqa: PLR0917 (one row of figures)
        capture: Path, n: int, span: float, rate: float, loops: int, sent: int, line: str, received: int,
            snmp0: int | None, snmp1: int | None, cpu: float, wall: float, *, queue_drops: int | None,
            socket_drops: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "capture": capture.name, "capture_packets": n, "capture_span_s": round(span, 4), "rate": rate,
        "loops": loops, "offered_packets_per_s": round(n / span * rate) if span else None,
        "sent": sent, "received": received, "lost": sent - received if sent >= 0 else None,
        "dropped_queue": queue_drops, "dropped_kernel_socket": socket_drops,
        "snmp_rcvbuf_errors_delta_machine_wide": None if snmp0 is None or snmp1 is None else snmp1 - snmp0,
        "receiver_cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "receiver_cpu_percent": round(100 * cpu / wall, 1) if wall > 0 else None,
        "player": line, **extra,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each scenario (default 6)")
    ap.add_argument("--rate", type=float, default=2.0, help="play-pcap speed factor (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "udp_live.json")
    args = ap.parse_args(argv)
    res: dict[str, Any] = {"environment": environment(), "host": "127.0.0.1", "seconds": args.seconds,
                           "rate": args.rate, "scenarios": {}}
    # warm the JIT kernels before timing CPU
    from edgefuse_drivers.velodyne.source import read_sweeps

    list(read_sweeps(TESTDATA / "velodyne" / "hdl32e.pcap")[0])
    res["scenarios"]["velodyne_hdl32e"] = run_velodyne(TESTDATA / "velodyne" / "hdl32e.pcap", "HDL32E",
                                                       args.rate, args.seconds)
    res["scenarios"]["velodyne_vlp16_dual"] = run_velodyne(TESTDATA / "velodyne" / "nebula_vlp16.pcap", "VLP16",
                                                           args.rate, args.seconds)
    full = None if SHARED is None else SHARED / "nebula_radar_lidar_packets" / "hesai_xt32" / "1673400677802009732"
    if full is not None and full.is_dir():
        from edgefuse_drivers.hesai.xt32 import Xt32Decoder
        from edgefuse_drivers.packet_bag import read_packets

        pk = list(read_packets(full))
        Xt32Decoder().add([p.data for p in pk[:64]])  # JIT
        with tempfile.TemporaryDirectory() as tmp:
            cap = Path(tmp) / "hesai_xt32.pcap"
            write_pcap(cap, [(p.recv_ns, p.data) for p in pk], dst_port=2368)
            res["scenarios"]["hesai_xt32"] = run_hesai(cap, args.rate, args.seconds)
    else:
        res["scenarios"]["hesai_xt32"] = {"skipped": "../shared/data/nebula_radar_lidar_packets/hesai_xt32 absent"}
    res["zero_drops"] = all(s.get("lost") == 0 and not s.get("dropped_queue") and not s.get("dropped_kernel_socket")
                            for s in res["scenarios"].values() if "skipped" not in s)
    write_json(args.out, res)
    return 0 if os.environ.get("BENCH_STRICT") != "1" or res["zero_drops"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
