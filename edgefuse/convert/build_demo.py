"""Build the bundled demo recording ``edgefuse/data/demo/`` from the RADIATE ``tiny_foggy`` sample.

Rebuild (from the repository root; SRC is the RADIATE sample the demo comes from: a checkout of
``marcelsheeny/radiate_sdk`` (its ``data/radiate/tiny_foggy`` with ``config/default-calib.yaml``), see
``edgefuse/data/demo/SOURCE.md``; without SRC, ``$EDGEFUSE_RADIATE_DIR`` is used, as by the rebuild test)::

    .venv/bin/python -m edgefuse.convert.build_demo /path/to/radiate_sdk --out edgefuse/data/demo --overwrite

What it does: :func:`edgefuse.convert.convert` with layout ``radiate``, streams ``zed_left``,
``velo_lidar`` and ``radar``, CompressedImage (the original PNG bytes) for camera and radar,
MCAP storage, limited to the window all three streams cover (the left camera's span,
1574859772.427742418 → 1574859775.766505217 s).  The bag folder gets ``rig.yaml``,
``convert_report.json``, ``digests.json`` (per-topic sha256 over the serialized messages, see
:func:`edgefuse.convert.bag_digests`) and ``SOURCE.md``.  The build is deterministic: rebuilding
gives identical digests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from edgefuse.convert.converter import bag_digests, convert
from edgefuse.convert.radiate import find_calibration, find_sequence
from edgefuse.convert.report import ConvertReport
from edgefuse.errors import ConvertError, EdgefuseError

DEMO_STREAMS = ("zed_left", "velo_lidar", "radar")
#: Camera frames are re-encoded as JPEG (what ROS camera drivers publish on /compressed): a quarter of
#: the PNG size and about 8x faster to decode, which matters for a real-time demo on 2 cores.
DEMO_JPEG_QUALITY = 95
DIGESTS_FILE = "digests.json"
SOURCE_FILE = "SOURCE.md"
#: where the rebuild test (and this module without SRC) finds the RADIATE sample
RADIATE_DIR_VARIABLE = "EDGEFUSE_RADIATE_DIR"
REBUILD_COMMAND = "python -m edgefuse.convert.build_demo /path/to/radiate_tiny_foggy --out edgefuse/data/demo"

SOURCE_TEXT = """\
# edgefuse demo recording — RADIATE `tiny_foggy` (fog), camera + LiDAR + radar, 3.3 s

A ROS 2 bag (MCAP, zstd-compressed chunks) converted from real RADIATE data by `edgefuse convert`.

## Source and attribution
- Data: the `tiny_foggy` sample sequence (`fog_6_0`, test set, RADIATE v1.0) shipped with the
  official RADIATE SDK, repository `marcelsheeny/radiate_sdk` (snapshot commit
  `b1d5de559784b3aa57bea99b00c13d495d79e846`), folder `data/radiate/tiny_foggy/` and
  `config/default-calib.yaml`.
- Licence: the SDK repository is MIT (Copyright (c) 2020 Marcel Sheeny); it states no separate
  data licence. The data are an excerpt of the RADIATE dataset — please cite:
  M. Sheeny, E. De Pellegrin, S. Mukherjee, A. Ahrabian, S. Wang, A. Wallace,
  "RADIATE: A Radar Dataset for Automotive Perception in Bad Weather", ICRA 2021.
  Check the RADIATE dataset terms before redistributing it outside edgefuse.

## What was converted, and how
Command (from the repository root):

    {command}

- Window: {window} (the span every converted stream covers; it is the left camera's span).
- `/zed_left/image_raw/compressed` (sensor_msgs/CompressedImage, format `jpeg`): the original ZED
  left PNGs (672x376, unrectified, 15 Hz) re-encoded by OpenCV as JPEG, quality 95 (lossy); frame
  `zed_left`.
  `/zed_left/camera_info`: one per image, from `default-calib.yaml` (plumb_bob, D = k1, k2, 0, 0, 0).
- `/velodyne_points` (sensor_msgs/PointCloud2): `velo_lidar/NNNNNN.csv` lines x,y,z,intensity,ring
  as x, y, z, intensity (float32, metres; x right, y forward, z up) and ring (uint16); frame
  `velodyne`. No per-point time: the data do not say which instant of the sweep the stamp is.
- `/radar/polar/compressed` (sensor_msgs/CompressedImage, format `png`): the Navtech CTS350-X
  polar scans (576 range bins of 0.173611 m (rows) x 400 azimuths (columns), mono8), bytes
  unchanged; frame `radar`.
- `/tf_static` (tf2_msgs/TFMessage, once, latched): the rig from `default-calib.yaml`
  (radar is the base frame; see `rig.yaml`), plus an identity `lidar -> velodyne`.
- Stamps: the dataset's `Frame: N Time: <unix s>` files, parsed exactly to integer ns; header
  stamp = record time.
- Not included: the right camera (size), GPS/IMU (its clock is ≈ 60 s after the other sensors in
  this sample, so it does not overlap the window), Navtech_Cartesian (a resampling of the polar
  scans) and the annotations.

## Messages
{counts}

Skipped while reading (see `convert_report.json`): {skipped}.
`digests.json` holds a sha256 per topic over (record time, serialized message) in bag order.
"""


def build_demo(src: Path, out: Path, *, overwrite: bool = False) -> ConvertReport:
    """Convert the RADIATE sample at ``src`` into the demo bag folder ``out``.

    Raises:
        ConvertError: ``src`` is not a RADIATE sequence, or ``out`` exists without ``overwrite``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConvertError("output exists (use --overwrite)", file=out)
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / out.name
        report = convert(Path(src), bag, layout="radiate", storage="mcap", compress_images=True, compress=True,
                         camera_jpeg_quality=DEMO_JPEG_QUALITY,
                         streams=DEMO_STREAMS, window_ns="overlap")
        report.source = "radiate_sdk/data/radiate/tiny_foggy"
        report.output = out.name
        report.rig_path = "rig.yaml" if report.rig_path else None
        base = sample_root(Path(src))
        report.notes = [_strip_paths(n, base) for n in report.notes]
        report.skipped = [type(s)(s.stream, s.item, s.reason, _rel(s.file, base), s.line)
                          for s in report.skipped]
        report.write_json(bag / "convert_report.json")
        digests = bag_digests(bag)
        (bag / DIGESTS_FILE).write_text(json.dumps(
            {t: {"count": d.count, "sha256": d.sha256} for t, d in digests.items()}, indent=2) + "\n")
        (bag / SOURCE_FILE).write_text(_source_text(report), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(bag, out)
    return report


def sample_root(src: Path) -> Path:
    """The folder the report's paths are relative to: the sample's root (``radiate_sdk``, the folder holding
    ``config/default-calib.yaml`` above the sequence), whether ``src`` is that root or the sequence folder."""
    seq = find_sequence(Path(src))
    calib = find_calibration(seq)
    if calib is None:
        return Path(src)
    return calib.parent.parent if calib.parent.name == "config" else calib.parent


def _rel(file: str | None, src: Path) -> str | None:
    if file is None:
        return None
    try:
        return str(Path(file).resolve().relative_to(Path(src).resolve()))
    except ValueError:
        return Path(file).name


def _strip_paths(note: str, src: Path) -> str:
    return note.replace(str(Path(src).resolve()) + "/", "").replace(str(src) + "/", "")


def _source_text(report: ConvertReport) -> str:
    assert report.window_ns is not None
    start, end = report.window_ns
    window = f"{start // 10**9}.{start % 10**9:09d} s → {end // 10**9}.{end % 10**9:09d} s"
    counts = "\n".join(f"| `{t}` | {s.msgtype} | {s.count} |" for t, s in sorted(report.topics.items()))
    counts = "| topic | type | count |\n|---|---|---:|\n" + counts
    skipped = ", ".join(f"{n} {stream}" for stream, n in sorted(report.skipped_by_stream().items())) or "none"
    return SOURCE_TEXT.format(command=REBUILD_COMMAND, window=window, counts=counts, skipped=skipped)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m edgefuse.convert.build_demo SRC [--out DIR] [--overwrite]``."""
    parser = argparse.ArgumentParser(prog="python -m edgefuse.convert.build_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, nargs="?", default=None,
                        help="RADIATE tiny_foggy sample: the sequence folder or a folder above it, such as a "
                             "radiate_sdk checkout (default: $EDGEFUSE_RADIATE_DIR)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "demo")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    src = args.src if args.src is not None else os.environ.get(RADIATE_DIR_VARIABLE) or None
    if src is None:
        print(f"build_demo: error: give SRC, the RADIATE tiny_foggy sample of radiate_sdk (see {SOURCE_FILE} in "
              f"the demo folder), or set {RADIATE_DIR_VARIABLE}", file=sys.stderr)
        return 2
    try:
        report = build_demo(Path(src), args.out, overwrite=args.overwrite)
    except EdgefuseError as err:
        print(f"build_demo: error: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
