"""NMEA parsing and epochs checked against gpsd's reference decodes of four real receiver logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.gnss.fix import COV_APPROXIMATED, COV_DIAGONAL_KNOWN, UERE_M, ClockOffsetEstimator
from edgefuse_drivers.gnss.nmea import GGA, GSA, GST, KNOT_M_S, RMC, VTG, NmeaStats, checksum, parse_sentence
from edgefuse_drivers.gnss.velocity import TwistStampedData

from edgefuse.envelope import Envelope
from edgefuse.msgs import deserialize, from_payload, serialize, to_payload
from edgefuse.msgs.types import NavSatFixData
from edgefuse.sources import open_source

DATA = Path(__file__).resolve().parents[2] / "data" / "gps_nmea_logs"
LOGS = ["mt3339", "haicom-305N", "neo-m8n", "ublox-zed-f9p-nmea"]
DAY_S = 86_400


def sentence(body: str) -> bytes:
    return f"${body}*{checksum(body.encode()):02X}".encode()


def read_log(name: str) -> tuple[list[Envelope], dict[str, object]]:
    src = open_source(f"nmea://{DATA / (name + '.log')}")
    with src:
        envs = list(src.envelopes())
    return envs, src.stats()  # type: ignore[attr-defined]


def reference(name: str) -> tuple[dict[float, dict[str, float]], dict[float, dict[str, float]]]:
    """gpsd's TPV reports carrying a time, by time of day (the last one of each epoch: gpsd reports as the
    epoch's sentences come in).  The regression files' dates are off (gpsd's replay moves the GPS week), so
    only the time of day is compared; positions and speeds are what gpsd decoded."""
    fixes: dict[float, dict[str, float]] = {}
    speeds: dict[float, dict[str, float]] = {}
    for line in (DATA / f"{name}.log.chk").read_bytes().splitlines():
        if not line.startswith(b'{"class":"TPV"'):
            continue
        tpv = json.loads(line)
        if "time" not in tpv:
            continue
        hh, mm, ss = tpv["time"][11:-1].split(":")
        tod = int(hh) * 3600 + int(mm) * 60 + float(ss)
        if "lat" in tpv and "altHAE" in tpv:
            fixes[tod] = tpv
        if "speed" in tpv and "track" in tpv:
            speeds[tod] = tpv
    return fixes, speeds


def test_parses_each_handled_sentence_type() -> None:
    gga = parse_sentence(b"$GPGGA,202640.000,4404.1306,N,12118.8515,W,2,10,0.98,1127.7,M,-19.6,M,0000,0000*6C")
    assert isinstance(gga, GGA)
    assert gga.time_s == 20 * 3600 + 26 * 60 + 40
    assert gga.latitude_deg == pytest.approx(44 + 4.1306 / 60)
    assert gga.longitude_deg == pytest.approx(-(121 + 18.8515 / 60))
    assert (gga.quality, gga.satellites, gga.hdop, gga.altitude_msl_m, gga.geoid_sep_m) == (2, 10, 0.98, 1127.7, -19.6)
    rmc = parse_sentence(b"$GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D*73")
    assert isinstance(rmc, RMC)
    assert rmc.valid and rmc.date == (2015, 4, 13) and rmc.mode == "D"
    assert rmc.speed_m_s == pytest.approx(0.03 * KNOT_M_S) and rmc.course_deg == 225.97
    vtg = parse_sentence(b"$GNVTG,,T,,M,0.025,N,0.045,K,A*3B")
    assert isinstance(vtg, VTG) and math.isnan(vtg.course_deg) and vtg.speed_m_s == pytest.approx(0.045 / 3.6)
    gsa = parse_sentence(b"$GNGSA,A,3,82,66,81,,,,,,,,,,1.05,0.64,0.83,2*0C")
    assert isinstance(gsa, GSA) and gsa.prns == (82, 66, 81) and gsa.system_id == 2 and gsa.vdop == 0.83
    gst = parse_sentence(b"$GNGST,003956.00,235111,,,,2.3,3.5,4.0*46")
    assert isinstance(gst, GST) and (gst.lat_std_m, gst.lon_std_m, gst.alt_std_m) == (2.3, 3.5, 4.0)


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "BD"])
def test_talkers(talker: str) -> None:
    s = parse_sentence(sentence(f"{talker}GGA,120000.00,4916.45,N,12311.12,W,1,08,0.9,545.4,M,46.9,M,,"))
    assert isinstance(s, GGA) and s.talker == talker and s.latitude_deg == pytest.approx(49 + 16.45 / 60)


def test_bad_input_is_counted_and_skipped() -> None:
    st = NmeaStats()
    good = b"$GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D*73"
    assert parse_sentence(good.replace(b"*73", b"*74"), st) is None
    assert parse_sentence(good.replace(b"4404.1306", b"4404.1307"), st) is None
    assert st.bad_checksum == 2
    assert parse_sentence(good[:-3], st) is None  # no checksum
    assert parse_sentence(sentence("GPGGA,1x0000,4916.45,N,12311.12,W,1,08,0.9,545.4,M,46.9,M,,"), st) is None
    assert parse_sentence(sentence("GPGGA,120000,9916.45,N,12311.12,W,1,08,0.9,545.4,M,46.9,M,,"), st) is None
    assert st.malformed == 3
    assert parse_sentence(sentence("GPZDA,202640.000,13,04,2015,,"), st) is None
    assert parse_sentence(sentence("XXGGA,120000,4916.45,N,12311.12,W,1,08,0.9,545.4,M,46.9,M,,"), st) is None
    assert st.unhandled == {"GPZDA": 1, "XXGGA": 1}
    assert isinstance(parse_sentence(b"\x07\xff garbage" + good, st), RMC)
    assert st.garbage_bytes == 10 and st.sentences == {"RMC": 1}


@pytest.mark.parametrize("name", ["mt3339", "neo-m8n", "haicom-305N"])
def test_fixes_match_gpsd_reference_decode(name: str) -> None:
    envs, stats = read_log(name)
    fixes = {e.stamp_ns // 10**6 % (DAY_S * 1000) / 1000: e.payload for e in envs if e.topic == "/gnss/fix"}
    ref, _ = reference(name)
    common = sorted(set(fixes) & set(ref))
    assert len(common) >= 20, (len(common), len(ref))
    err_lat = max(abs(fixes[t].latitude_deg - ref[t]["lat"]) for t in common)
    err_lon = max(abs(fixes[t].longitude_deg - ref[t]["lon"]) for t in common)
    err_alt = max(abs(fixes[t].altitude_m - ref[t]["altHAE"]) for t in common)
    assert err_lat < 1e-8 and err_lon < 1e-8 and err_alt < 1e-6  # gpsd prints 9 decimals / millimetres
    assert stats["nmea"]["bad_checksum"] == 0 and stats["nmea"]["malformed"] == 0  # type: ignore[index]


def test_velocity_matches_gpsd_reference_decode() -> None:
    """haicom-305N moves (5 m W, 10 m S, then back): speed and track from RMC, as gpsd decodes them."""
    envs, _ = read_log("haicom-305N")
    vels = {e.stamp_ns // 10**6 % (DAY_S * 1000) / 1000: e.payload for e in envs if e.topic == "/gnss/vel"}
    _, ref = reference("haicom-305N")
    common = sorted(set(vels) & set(ref))
    assert len(common) >= 50
    moving = 0
    for t in common:
        v: TwistStampedData = vels[t]
        speed = float(np.hypot(v.linear[0], v.linear[1]))
        assert speed == pytest.approx(ref[t]["speed"], abs=1e-3)  # gpsd rounds to mm/s
        if speed > 0.5:
            moving += 1
            track = math.degrees(math.atan2(v.linear[0], v.linear[1])) % 360
            assert abs((track - ref[t]["track"] + 180) % 360 - 180) < 1e-3
    assert moving >= 5


def test_epochs_dates_status_and_covariance() -> None:
    envs, stats = read_log("ublox-zed-f9p-nmea")
    fixes = [e for e in envs if e.topic == "/gnss/fix"]
    assert len(fixes) == 29 and stats["epochs"] == 29
    first: NavSatFixData = fixes[0].payload
    assert fixes[0].stamp_ns == 1555029596 * 10**9  # 2019-04-12 00:39:56 UTC (RMC date + time)
    assert np.all(np.diff([e.stamp_ns for e in fixes]) == 10**9)
    assert first.status == 0 and first.service == 1 | 2 | 4 | 8  # GPS+GLONASS+BeiDou+Galileo (GSA system ids)
    # GST: lat std 2.3, lon std 3.5, alt std 4.0 → ENU diagonal (lon², lat², alt²)
    assert first.position_covariance_type == COV_DIAGONAL_KNOWN
    assert np.allclose(np.diag(first.position_covariance), [3.5**2, 2.3**2, 4.0**2])
    assert first.altitude_m == pytest.approx(14.2 + 1.8)
    # mt3339 has no GST: HDOP × UERE (DGPS), VDOP from GSA
    mt = [e.payload for e in read_log("mt3339")[0] if e.topic == "/gnss/fix"]
    assert mt[0].status == 1 and mt[0].position_covariance_type == COV_APPROXIMATED
    assert np.allclose(np.diag(mt[0].position_covariance), [(0.98 * UERE_M[2]) ** 2] * 2 + [(1.31 * UERE_M[2]) ** 2])


def test_fix_and_velocity_serialize_roundtrip() -> None:
    envs, _ = read_log("haicom-305N")
    for env in envs[:10]:
        raw = serialize(from_payload(env.payload, msgtype=env.msgtype), env.msgtype)
        back = to_payload(deserialize(raw, env.msgtype), env.msgtype)
        assert back.stamp_ns == env.stamp_ns
        if env.topic == "/gnss/vel":
            assert np.array_equal(back.linear, env.payload.linear)
        else:
            assert back.latitude_deg == env.payload.latitude_deg


def test_clock_offset_estimator() -> None:
    est = ClockOffsetEstimator(window=8)
    rng = np.random.default_rng(1)
    delays = rng.uniform(0.05e9, 0.08e9, 20)
    for i, d in enumerate(delays):
        est.add(i * 10**9, i * 10**9 + 5 * 10**9 + int(d))
    assert est.offset_ns == 5 * 10**9 + int(min(delays[-8:]))
    assert est.jitter_ns is not None and 1e6 < est.jitter_ns < 2e7


def _mutations(n: int, seed: int) -> int:
    lines = [ln for name in LOGS for ln in (DATA / f"{name}.log").read_bytes().splitlines() if ln.startswith(b"$")]
    rng = np.random.default_rng(seed)
    st = NmeaStats()
    parsed = 0
    for _ in range(n):
        line = bytearray(lines[int(rng.integers(len(lines)))])
        kind = int(rng.integers(4))
        if kind == 0:  # flip bytes
            for _ in range(int(rng.integers(1, 4))):
                line[int(rng.integers(len(line)))] = int(rng.integers(256))
        elif kind == 1:  # truncate
            line = line[: int(rng.integers(len(line)))]
        elif kind == 2:  # mutate a field and fix the checksum (the parser's field checks alone stand)
            body = bytearray(line[1:-3])
            for _ in range(int(rng.integers(1, 3))):
                body[int(rng.integers(len(body)))] = int(rng.choice(list(b"0123456789.,-NSEWAV*$ x\xff")))
            line = bytearray(b"$" + bytes(body) + f"*{checksum(bytes(body)):02X}".encode())
        else:  # random bytes
            line = bytearray(rng.integers(0, 256, int(rng.integers(0, 90))).astype(np.uint8).tobytes())
        if parse_sentence(bytes(line), st) is not None:
            parsed += 1
    assert st.parsed == parsed
    return parsed


def test_fuzz_parser_never_raises() -> None:
    assert _mutations(4000, seed=7) > 30


@pytest.mark.slow
def test_fuzz_parser_never_raises_long() -> None:
    assert _mutations(150_000, seed=11) > 1000
