"""Export the UNTRAINED PointPillars-contract network to ONNX (FP32) and quantize it to INT8.

The weights are PyTorch's default random initialisation (seed 0): the files are for latency and
INT8-speed measurements only and detect nothing.  They are not committed (19 MB FP32); this script
rebuilds them in under a minute::

    .venv/bin/python -m models.pointpillars.export            # -> models/pointpillars/build/*.onnx + cards

Each ONNX file gets its edgefuse model card beside it (``build/<stem>.yaml``, format in models/CARD.md, the
file's sha256 filled in), so ``onnx_model`` runs the build as it would a user's own export; the card of
the build measured here is committed as ``models/pointpillars/card.yaml`` (its ``model`` points into
``build/``).

INT8: ONNX Runtime static quantization (QOperator: QLinearConv / QLinearMatMul, per-tensor uint8
activations, int8 weights, MinMax calibration) on the pillars of the three KITTI object frames in
``tests/data/kitti_object_3frames`` (test fixture; nothing is trained on them).  A user's own trained
OpenPCDet / CUDA-PointPillars export with the same inputs and outputs drops in instead of the FP32 file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.pointpillars.net import MAX_POINTS, POINT_RANGE, VOXEL_SIZE, PointPillars

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KITTI = REPO / "tests" / "data" / "kitti_object_3frames" / "training" / "velodyne"
INPUTS = ("voxels", "voxel_num", "voxel_idxs")
OUTPUTS = ("cls_preds", "box_preds", "dir_cls_preds")


def pillarize(points: np.ndarray, max_pillars: int = 16000) -> dict[str, np.ndarray]:
    """The network's inputs from an (N, 4) cloud, made by edgefuse's own pillar voxelizer."""
    from edgefuse.fusion.voxel import PillarVoxelizer

    vox = PillarVoxelizer(VOXEL_SIZE[:2], POINT_RANGE, max_points_per_pillar=MAX_POINTS, max_pillars=max_pillars,
                          augment=False, coord_order="zyx", on_cap="continue")
    p = vox.voxelize(np.ascontiguousarray(points, dtype=np.float32))
    idx = np.zeros((p.n_pillars, 4), np.int32)
    idx[:, 1:] = p.coords
    return {"voxels": np.ascontiguousarray(p.features, np.float32),
            "voxel_num": np.ascontiguousarray(p.num_points, np.int32), "voxel_idxs": idx}


def kitti_clouds() -> list[np.ndarray]:
    return [np.fromfile(f, dtype=np.float32).reshape(-1, 4) for f in sorted(KITTI.glob("*.bin"))]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


DESCRIPTION = (
    "UNTRAINED: random weights (PyTorch default initialisation, seed 0); detects nothing; for latency and INT8 "
    "speed only. No trained PointPillars weights can be fetched here: a user's own OpenPCDet export with the "
    "same contract drops in instead (models/pointpillars/README.md). Architecture: PointPillars as OpenPCDet "
    "tools/cfgs/kitti_models/pointpillar.yaml (PillarVFE 10->64, scatter to a 64 x 496 x 432 canvas, "
    "BaseBEVBackbone [3,5,5] layers, [64,128,256] filters, upsampled to 3 x 128, AnchorHeadSingle: 3 classes x 2 "
    "rotations, 2 direction bins), rebuilt from the published config (models/pointpillars/net.py). Pre-processing: "
    "the pillars_input stage (PillarVoxelizer: 0.16 m pillars over [0, -39.68, -3, 69.12, 39.68, 1], 32 points, "
    "raw x, y, z, intensity; the 10-feature decoration is inside the graph). Post-processing: the "
    "pointpillars_decode stage (Numba; OpenPCDet's KITTI anchors, ResidualCoder, direction classifier) -> "
    "Detections3D in the LiDAR frame."
)


def card_text(name: str, model: str, sha: str, *, int8: bool, figures: dict[str, object] | None = None) -> str:
    """The edgefuse model card (models/CARD.md) of one built file; ``model`` relative to the card."""
    import io

    from ruamel.yaml import YAML

    frame = "velodyne"  # KITTI's LiDAR frame: x forward, y left, z up
    card: dict[str, object] = {
        "edgefuse_model_card": 1,
        "name": name,
        "model": model,
        "sha256": sha,
        "opset": 17,
        "description": DESCRIPTION + (" INT8: ONNX Runtime static quantization (QOperator QLinearConv/QLinearMatMul, "
                                      "uint8 activations, int8 weights, MinMax on 3 KITTI clouds)." if int8 else ""),
        "inputs": [
            {"name": "voxels", "edge": "Tensor", "shape": ["N", MAX_POINTS, 4], "dtype": "float32", "frame": frame},
            {"name": "voxel_num", "edge": "Tensor", "shape": ["N"], "dtype": "int32"},
            {"name": "voxel_idxs", "edge": "Tensor", "shape": ["N", 4], "dtype": "int32"},
        ],
        "outputs": [
            {"name": "cls_preds", "edge": "Tensor", "shape": [1, 248, 216, 18], "dtype": "float32", "frame": frame},
            {"name": "box_preds", "edge": "Tensor", "shape": [1, 248, 216, 42], "dtype": "float32", "frame": frame},
            {"name": "dir_cls_preds", "edge": "Tensor", "shape": [1, 248, 216, 12], "dtype": "float32",
             "frame": frame},
        ],
        "training": {"data": "none: untrained (calibration of the INT8 file: the 3 KITTI object clouds in "
                             "tests/data, a test fixture)" if int8 else "none: untrained",
                     "licence": "Apache-2.0 (this repository's code; no one else's weights)"},
        "metric": {"name": "none (untrained)"},
    }
    if figures:
        card["figures"] = figures
    head = ("# Written by python -m models.pointpillars.export (format: models/CARD.md). Do not edit by hand.\n"
            "# UNTRAINED network: latency and INT8 speed only.\n")
    yaml = YAML()
    yaml.width = 115
    yaml.default_flow_style = None
    buf = io.StringIO()
    yaml.dump(card, buf)
    return head + buf.getvalue()


def export(out_dir: Path) -> dict[str, object]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = PointPillars().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "pointpillars_kitti_untrained.onnx"
    feeds = pillarize(kitti_clouds()[0])
    args = tuple(torch.from_numpy(feeds[k]) for k in INPUTS)
    torch.onnx.export(model, args, str(fp32), input_names=list(INPUTS), output_names=list(OUTPUTS),
                      opset_version=17, dynamo=False,
                      dynamic_axes={"voxels": {0: "N"}, "voxel_num": {0: "N"}, "voxel_idxs": {0: "N"}})
    with torch.no_grad():
        ref = [t.numpy() for t in model(*args)]
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUTS), feeds)
    max_err = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got, strict=True))

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([pillarize(c) for c in kitti_clouds()])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    pre = out_dir / "pointpillars_kitti_untrained.pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    int8 = out_dir / "pointpillars_kitti_untrained.int8.onnx"
    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "ConvTranspose", "MatMul"])
    pre.unlink()
    info = {"fp32": fp32.name, "fp32_sha256": sha256(fp32), "fp32_bytes": fp32.stat().st_size,
            "int8": int8.name, "int8_sha256": sha256(int8), "int8_bytes": int8.stat().st_size,
            "params": sum(p.numel() for p in model.parameters()), "ort_vs_torch_max_abs_err": max_err,
            "opset": 17, "trained": False}
    (out_dir / "export.json").write_text(json.dumps(info, indent=1))
    for path, digest, int8_file in ((fp32, info["fp32_sha256"], False), (int8, info["int8_sha256"], True)):
        stem = path.name[: -len(".onnx")]
        path.with_name(stem + ".yaml").write_text(card_text(stem, path.name, str(digest), int8=int8_file))
    if out_dir.resolve() == (HERE / "build").resolve():
        (HERE / "card.yaml").write_text(card_text(
            "pointpillars_kitti_untrained", f"build/{fp32.name}", str(info["fp32_sha256"]), int8=False,
            figures=_bench_figures()))
    return info


def _bench_figures() -> dict[str, object] | None:
    """The latency figures of bench/bench_pointpillars.py's last run, if any (FP32 and INT8, ms)."""
    res = REPO / "bench" / "results" / "pointpillars.json"
    if not res.is_file():
        return None
    d = json.loads(res.read_text())
    out: dict[str, object] = {"source": "python bench/bench_pointpillars.py (bench/results/pointpillars.json)",
                              "threads": d.get("threads"), "load_average_1min": d.get("load_average_1min")}
    for kind in ("fp32", "int8"):
        e = d.get(kind, {})
        out[f"{kind}_end_to_end_p50_ms"] = e.get("end_to_end", {}).get("p50_ms")
        out[f"{kind}_end_to_end_p99_ms"] = e.get("end_to_end", {}).get("p99_ms")
        out[f"{kind}_model_p50_ms"] = e.get("model_run", {}).get("p50_ms")
    out["int8_speedup_model_p50"] = d.get("int8_speedup_model_p50")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE / "build")
    print(json.dumps(export(ap.parse_args().out), indent=1))


if __name__ == "__main__":
    main()
