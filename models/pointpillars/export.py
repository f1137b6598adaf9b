"""Export the UNTRAINED PointPillars-contract network to ONNX (FP32) and quantize it to INT8.

The weights are PyTorch's default random initialisation (seed 0): the files are for latency and
INT8-speed measurements only and detect nothing.  They are not committed (19 MB FP32); this script
rebuilds them in under a minute::

    .venv/bin/python -m models.pointpillars.export            # -> models/pointpillars/build/*.onnx

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
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE / "build")
    print(json.dumps(export(ap.parse_args().out), indent=1))


if __name__ == "__main__":
    main()
