"""Decode throughput and latency of the sensor drivers, against reference decoders where one runs here.

All packets are read into memory first (file reading is not timed, except where said), the JIT is warmed
up, then each decoder is timed in rounds that alternate ours / theirs (best round kept, so a busy moment on
the shared machine hurts both alike).  Figures:

- Velodyne VLP-16 (strongest, dual), VLP-32C, HDL-32E vs the ``velodyne-decoder`` package (test extra):
  * ``batch``: ours ``Decoder.decode`` of the whole capture as one (N, 1206) array vs ``ScanDecoder.decode``
    of a prebuilt ``PacketVector`` (its per-scan API);
  * ``stream``: packet by packet as a live driver gets them, with sweep assembly and the output cloud —
    ours ``SweepAssembler.add`` (batches of 64 packets) + ``finish`` vs ``StreamDecoder.decode`` + ``finish``;
  * latency: one packet (``Decoder.decode`` of a 1-packet array) and one sweep (the packets of one turn,
    or of the whole capture when it holds less than a turn) — p50/p99;
- Ouster (OS-1-128 / OS-0-32 / OS-2-32 from ouster-sdk's test pcaps): pcap → complete frames → xyz (file
  reading included on both sides) — ours ``OusterPcap.scans`` + ``LidarScan.xyz`` vs ouster-sdk's
  ``PcapScanSource`` + ``XYZLut`` when ``ouster.sdk`` imports (it pins rosbags==0.9.23, so it is installed
  apart: ``pip install --no-deps --target /tmp/ouster_ref ouster-sdk==1.0.1 more-itertools psutil
  prettytable`` and run with ``PYTHONPATH=/tmp/ouster_ref``); per-packet latency of ``parse_lidar_packet``;
- Hesai XT32 (nebula's recording, 2,000 packets), Continental ARS548 (SOME/IP detection/object lists) and
  SRR520 (CAN-FD frames → lists): no reference decoder runs here, absolute throughput and p50/p99 latency
  per packet and per sweep/list.

    python bench/bench_drivers.py [--min-time 0.3] [--rounds 3]

Prints JSON and writes ``bench/results/drivers.json``.  Ratios are ``ours / theirs`` throughput (> 1:
ours faster) measured in the same run: ``ratio_ours_vs_theirs`` from each side's best round,
``ratio_per_round`` the min and median of the per-round ratios (ours and theirs timed back to back).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _env import environment, write_json
from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.velodyne.decode import PACKET_BYTES, Decoder
from edgefuse_drivers.velodyne.models import VelodyneModel
from edgefuse_drivers.velodyne.source import detect_model
from edgefuse_drivers.velodyne.sweep import SweepAssembler

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TESTDATA = ROOT / "tests" / "data"
SHARED = next((p for p in (ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data",
                           Path("/work/shared/data")) if p.is_dir()), None)
MIN_RANGE, MAX_RANGE = 0.3, 200.0

VELODYNE = {  # name → capture (data port 2368)
    "VLP-16 strongest": ("shared", "velodyne_pcaps/rust-lidar-utils/velodyne-test/test_files/velodyne_vlp16.pcap"),
    "VLP-16 dual": ("tests", "velodyne/nebula_vlp16.pcap"),
    "VLP-32C": ("tests", "velodyne/nebula_vlp32.pcap"),
    "HDL-32E": ("tests", "velodyne/hdl32e.pcap"),
}
OUSTER = {
    "OS-1-128": ("OS-1-128_v2.3.0_1024x10_lb_n3.pcap", "OS-1-128_v2.3.0_1024x10.json"),
    "OS-0-32": ("OS-0-32-U1_v2.2.0_1024x10.pcap", "OS-0-32-U1_v2.2.0_1024x10.json"),
    "OS-2-32": ("OS-2-32-U0_v2.0.0_1024x10.pcap", "OS-2-32-U0_v2.0.0_1024x10.json"),
}


# --- timing helpers ---------------------------------------------------------------------------------------------

def _per_call(fn: Callable[[], Any], min_time: float) -> float:
    """Seconds per call of ``fn``, repeated until ``min_time`` has passed."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return el / n


#: seconds per call of each function in each round of the last :func:`_race` (for per-round ratios)
_ROUNDS: dict[str, list[float]] = {}


def _race(fns: dict[str, Callable[[], Any]], min_time: float, rounds: int) -> dict[str, float]:
    """Best seconds per call of each function, rounds alternating between them (every round's time is
    kept in ``_ROUNDS``)."""
    for fn in fns.values():
        fn()  # warm up (JIT, caches)
    _ROUNDS.clear()
    for name in fns:
        _ROUNDS[name] = []
    for _ in range(rounds):
        for name, fn in fns.items():
            _ROUNDS[name].append(_per_call(fn, min_time))
    return {name: min(times) for name, times in _ROUNDS.items()}


def _round_ratios(ours: str, theirs: str) -> dict[str, float]:
    """``theirs / ours`` of each round (both timed back to back): min and median over the rounds."""
    r = np.asarray(_ROUNDS[theirs]) / np.asarray(_ROUNDS[ours])
    return {"min": round(float(r.min()), 2), "median": round(float(np.median(r)), 2), "rounds": len(r)}


def _quantiles(fn: Callable[[int], Any], items: int, reps: int) -> dict[str, float]:
    """p50/p99/max [µs] of ``fn(i)`` over ``reps`` passes over ``items``."""
    fn(0)
    t = []
    for _ in range(reps):
        for i in range(items):
            t0 = time.perf_counter_ns()
            fn(i)
            t.append(time.perf_counter_ns() - t0)
    a = np.asarray(t, np.float64) / 1e3
    return {"p50_us": round(float(np.percentile(a, 50)), 2), "p99_us": round(float(np.percentile(a, 99)), 2),
            "max_us": round(float(a.max()), 2), "samples": len(t)}


def _rates(sec: float, packets: int, points: int) -> dict[str, float]:
    return {"packets_per_s": round(packets / sec), "points_per_s": round(points / sec),
            "ms_per_pass": round(sec * 1e3, 3)}


# --- Velodyne ---------------------------------------------------------------------------------------------------

def _capture(where: str, rel: str) -> Path | None:
    base = TESTDATA if where == "tests" else SHARED
    return None if base is None or not (base / rel).is_file() else base / rel


def _sweep_groups(arr: npt.NDArray[np.uint8]) -> list[slice]:
    """Packets of each turn (a new turn where the first block's azimuth drops by more than 180°)."""
    az = arr[:, 2].astype(np.int64) | (arr[:, 3].astype(np.int64) << 8)
    cuts = [0, *(np.flatnonzero(np.diff(az) < -18000) + 1).tolist(), len(az)]
    return [slice(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def bench_velodyne(name: str, path: Path, min_time: float, rounds: int) -> dict[str, Any]:
    caps = [p for p in CaptureReader(path) if p.dst_port == 2368 and len(p.payload) == PACKET_BYTES]
    payloads = [p.payload for p in caps]
    stamps = np.array([p.stamp_ns for p in caps], np.int64)
    mdl: VelodyneModel = detect_model(payloads)
    arr = np.frombuffer(b"".join(payloads), np.uint8).reshape(-1, PACKET_BYTES)
    n = len(payloads)
    dec = Decoder(mdl, min_range=MIN_RANGE, max_range=MAX_RANGE)
    ours_points = len(dec.decode(arr, stamps))

    def ours_batch() -> None:
        dec.decode(arr, stamps)

    def ours_stream() -> int:
        asm = SweepAssembler(mdl, min_range=MIN_RANGE, max_range=MAX_RANGE)
        k = 0
        for pl, t in zip(payloads, stamps.tolist(), strict=True):
            k += len(asm.add(pl, t))
        return k + len(asm.finish())

    fns: dict[str, Callable[[], Any]] = {"ours_batch": ours_batch, "ours_stream": ours_stream}
    out: dict[str, Any] = {"capture": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                           "model": mdl.name, "packets": n, "points": ours_points}
    groups = _sweep_groups(arr)
    try:
        import velodyne_decoder as vd
    except ImportError:
        vd = None
        out["reference"] = "velodyne-decoder not installed (pip install -e .[test])"
    if vd is not None:
        cfg = vd.Config()
        cfg.model = {"VLP16": vd.Model.VLP16, "VLP32C": vd.Model.VLP32C, "HDL32E": vd.Model.HDL32E}[mdl.name]
        cfg.min_range, cfg.max_range = MIN_RANGE, MAX_RANGE
        secs = (stamps * 1e-9).tolist()
        pv = vd.PacketVector([vd.VelodynePacket(s, p) for s, p in zip(secs, payloads, strict=True)])
        group_pvs = [vd.PacketVector([vd.VelodynePacket(s, p) for s, p in zip(secs[g], payloads[g], strict=True)])
                     for g in groups]
        scan_dec = vd.ScanDecoder(cfg)
        try:
            theirs_points = len(scan_dec.decode(pv)[1])
        except RuntimeError as exc:  # e.g. a product byte it does not accept for the model
            out["reference"] = f"velodyne-decoder {vd.__version__} refuses this capture: {exc}"
            vd = None
    if vd is not None:

        def theirs_batch() -> None:
            scan_dec.decode(pv)

        def theirs_stream() -> int:
            sd = vd.StreamDecoder(cfg)
            k = 0
            for s, p in zip(secs, payloads, strict=True):
                k += sd.decode(s, p) is not None
            return k + (sd.finish() is not None)

        fns |= {"theirs_batch": theirs_batch, "theirs_stream": theirs_stream}
        out["reference"] = f"velodyne-decoder {vd.__version__}"
        out["reference_points"] = theirs_points
    best = _race(fns, min_time, rounds)
    pts = {"ours_batch": ours_points, "ours_stream": ours_points}
    if vd is not None:
        pts |= {"theirs_batch": theirs_points, "theirs_stream": theirs_points}
    out["throughput"] = {k: _rates(v, n, pts[k]) for k, v in best.items()}
    if vd is not None:
        out["ratio_ours_vs_theirs"] = {"batch": round(best["theirs_batch"] / best["ours_batch"], 2),
                                       "stream": round(best["theirs_stream"] / best["ours_stream"], 2)}
        out["ratio_per_round"] = {"batch": _round_ratios("ours_batch", "theirs_batch"),
                                  "stream": _round_ratios("ours_stream", "theirs_stream")}
    # latency: one packet, one sweep
    one = [arr[i : i + 1] for i in range(n)]
    out["latency_packet"] = {"ours": _quantiles(lambda i: dec.decode(one[i], stamps[i : i + 1]), n, 5)}
    out["sweep_packets"] = [g.stop - g.start for g in groups]
    out["latency_sweep"] = {"ours": _quantiles(lambda i: dec.decode(arr[groups[i]], stamps[groups[i]]),
                                               len(groups), max(20, 200 // len(groups)))}
    if vd is not None:
        out["latency_sweep"]["theirs"] = _quantiles(lambda i: scan_dec.decode(group_pvs[i]), len(groups),
                                                    max(20, 200 // len(groups)))
    return out


# --- Ouster -----------------------------------------------------------------------------------------------------

def bench_ouster(name: str, pcap: Path, meta: Path, min_time: float, rounds: int) -> dict[str, Any]:
    from edgefuse_drivers.ouster.metadata import SensorInfo
    from edgefuse_drivers.ouster.packets import lidar_packet_bytes, parse_lidar_packet
    from edgefuse_drivers.ouster.pcap import read_udp
    from edgefuse_drivers.ouster.scan import OusterPcap, xyz_lut

    info = SensorInfo.from_json(meta)
    lut = xyz_lut(info)
    size = lidar_packet_bytes(info)
    lidar = [d.payload for d in read_udp(pcap) if len(d.payload) == size]

    def ours() -> tuple[int, int]:
        frames = pts = 0
        for scan in OusterPcap(pcap, info).scans():
            xyz, _, _ = scan.xyz(lut)
            frames += 1
            pts += len(xyz)
        return frames, pts

    frames, points = ours()
    fns: dict[str, Callable[[], Any]] = {"ours": ours}
    out: dict[str, Any] = {"capture": pcap.name, "packets": len(lidar), "frames": frames, "points": points,
                           "scope": "pcap file -> complete frames -> xyz (file reading included)"}
    try:
        from ouster.sdk import core as ocore
        from ouster.sdk import pcap as opcap
    except ImportError as exc:
        ocore = opcap = None
        out["reference"] = f"ouster-sdk not importable here ({exc}); see the module docstring"
    if ocore is not None and opcap is not None:
        oinfo = ocore.SensorInfo(meta.read_text())
        olut = ocore.XYZLut(oinfo, use_extrinsics=False)

        def theirs() -> tuple[int, int]:
            fr = pt = 0
            for item in opcap.PcapScanSource(str(pcap), sensor_info=[oinfo]):
                scan = item[0]
                if scan is None:
                    continue
                xyz = olut(scan)
                ok = scan.field(ocore.ChanField.RANGE) > 0
                fr += 1
                pt += int(np.count_nonzero(ok))
                del xyz
            return fr, pt

        tf, tp = theirs()
        out["reference"] = "ouster-sdk " + getattr(sys.modules.get("ouster.sdk"), "__version__", "?")
        out["reference_frames"], out["reference_points"] = tf, tp
        fns["theirs"] = theirs
    best = _race(fns, min_time, rounds)
    out["throughput"] = {k: _rates(v, len(lidar), points if k == "ours" else out["reference_points"])
                         | {"frames_per_s": round((frames if k == "ours" else out["reference_frames"]) / v, 1)}
                         for k, v in best.items()}
    if "theirs" in best:
        out["ratio_ours_vs_theirs"] = round(best["theirs"] / best["ours"], 2)
        out["ratio_per_round"] = _round_ratios("ours", "theirs")
    out["latency_packet"] = {"ours_parse_lidar_packet": _quantiles(lambda i: parse_lidar_packet(lidar[i], info),
                                                                   len(lidar), 3)}
    return out


# --- Hesai XT32 -------------------------------------------------------------------------------------------------

def bench_hesai(min_time: float, rounds: int) -> dict[str, Any]:
    from edgefuse_drivers.hesai.xt32 import Xt32Calibration, Xt32Decoder
    from edgefuse_drivers.packet_bag import read_packets

    full = None if SHARED is None else SHARED / "nebula_radar_lidar_packets" / "hesai_xt32" / "1673400677802009732"
    if full is not None and full.is_dir():
        packets = [p.data for p in read_packets(full)]
        src = "shared nebula_radar_lidar_packets/hesai_xt32 (whole recording)"
    else:
        with np.load(TESTDATA / "nebula_radar_lidar_packets" / "hesai_xt32_excerpt" / "excerpt.npz") as z:
            packets = [bytes(p) for p in z["packets"]]
        src = "tests/data excerpt"
    cal = Xt32Calibration.load()

    def run() -> tuple[int, int]:
        dec = Xt32Decoder(cal)
        sweeps = dec.add(packets)
        return len(sweeps), sum(len(s.points) for s in sweeps)

    sweeps, points = run()
    best = _race({"ours": run}, min_time, rounds)
    out: dict[str, Any] = {"capture": src, "packets": len(packets), "complete_sweeps": sweeps,
                           "points_in_complete_sweeps": points, "reference": "none runs here (nebula is C++/ROS)",
                           "throughput": {"ours": _rates(best["ours"], len(packets), points)}}
    dec = Xt32Decoder(cal)
    out["latency_packet"] = {"ours": _quantiles(lambda i: dec.add(packets[i : i + 1]), len(packets), 2)}
    # one sweep: the packets of one turn decoded in one call (fresh decoder each time, so it starts cold)
    per = max(1, len(packets) // max(1, sweeps + 1))
    chunks = [packets[i : i + per] for i in range(0, len(packets) - per + 1, per)]
    out["latency_sweep"] = {"ours": _quantiles(lambda i: Xt32Decoder(cal).add(chunks[i]), len(chunks), 10),
                            "packets_per_sweep": per}
    return out


# --- Continental ------------------------------------------------------------------------------------------------

def bench_continental(min_time: float, rounds: int) -> dict[str, Any]:
    from edgefuse_drivers.continental.ars548 import decode_ars548
    from edgefuse_drivers.continental.srr520 import Srr520Assembler, decode_srr520_frame
    from edgefuse_drivers.packet_bag import read_packets

    out: dict[str, Any] = {"reference": "none runs here (nebula is C++/ROS)"}
    ars = [p.data for p in read_packets(TESTDATA / "nebula_continental" / "ars548" / "1708578204")]

    def ars_all() -> int:
        return sum(decode_ars548(d) is not None for d in ars)

    best = _race({"ars": ars_all}, min_time, rounds)
    out["ARS548"] = {"packets": len(ars), "bytes": [len(d) for d in ars],
                     "throughput": {"ours": {"lists_per_s": round(len(ars) / best["ars"]),
                                             "us_per_pass": round(best["ars"] * 1e6, 1)}},
                     "latency_list": {"ours": _quantiles(lambda i: decode_ars548(ars[i]), len(ars), 200)}}
    srr = [p.data for p in read_packets(TESTDATA / "nebula_radar_lidar_packets" / "srr520" / "1708578209")]

    def srr_all() -> int:
        asm = Srr520Assembler()
        return sum(asm.add(decode_srr520_frame(d)) is not None for d in srr)

    lists = srr_all()
    best = _race({"srr": srr_all}, min_time, rounds)
    asm = Srr520Assembler()
    lat: list[float] = []
    list_lat: list[float] = []
    for _ in range(20):
        for d in srr:
            t0 = time.perf_counter_ns()
            done = asm.add(decode_srr520_frame(d))
            dt = time.perf_counter_ns() - t0
            (list_lat if done is not None else lat).append(dt / 1e3)

    def q(a: list[float]) -> dict[str, float]:
        return {"p50_us": round(float(np.percentile(a, 50)), 2), "p99_us": round(float(np.percentile(a, 99)), 2),
                "samples": len(a)}

    out["SRR520"] = {"packets": len(srr), "lists": lists,
                     "throughput": {"ours": {"packets_per_s": round(len(srr) / best["srr"]),
                                             "lists_per_s": round(lists / best["srr"])}},
                     "latency_packet": {"ours": q(lat)},
                     "latency_list_completing_packet": {"ours": q(list_lat)}}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per timed round (default 0.3)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept (default 3)")
    ap.add_argument("--out", type=Path, default=RESULTS / "drivers.json")
    args = ap.parse_args(argv)
    res: dict[str, Any] = {"environment": environment(), "min_time_s": args.min_time, "rounds": args.rounds,
                           "velodyne": {}, "ouster": {}}
    for name, (where, rel) in VELODYNE.items():
        path = _capture(where, rel)
        if path is None:
            res["velodyne"][name] = {"skipped": f"{rel} not found"}
            continue
        res["velodyne"][name] = bench_velodyne(name, path, args.min_time, args.rounds)
    pcaps = None if SHARED is None else SHARED / "ouster_sdk_pcaps" / "tests" / "pcaps"
    for name, (pcap, meta) in OUSTER.items():
        if pcaps is None or not (pcaps / pcap).is_file():
            res["ouster"][name] = {"skipped": f"{pcap} not found (../shared/data/ouster_sdk_pcaps)"}
            continue
        res["ouster"][name] = bench_ouster(name, pcaps / pcap, pcaps / meta, args.min_time, args.rounds)
    res["hesai_xt32"] = bench_hesai(args.min_time, args.rounds)
    res["continental"] = bench_continental(args.min_time, args.rounds)
    write_json(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
