"""Export trained depth-completion checkpoints to ONNX (opset 17) and quantize them to INT8.

Inputs ``image`` ``[1, 3, H, W]`` float32 (RGB, 0-1) and ``sparse_depth`` ``[1, 1, H, W]`` float32 (metres,
0 = no return); output ``depth`` ``[1, 1, H, W]`` float32 metres.  ``H`` and ``W`` are dynamic (multiples
of 8).  INT8: ONNX Runtime static quantization (QDQ, per-channel int8 weights, uint8 activations, MinMax
calibration) on crops of the training frames only, of the learned layers only: the convolutions with their
ReLU and the decoder's nearest upsampling; the head's pixel shuffle then runs on uint8.  Checks ONNX Runtime
against PyTorch on one frame::

    .venv/bin/python -m models.depth_completion.export [--modes gated concat lidar]

Writes ``models/depth_completion/build/<mode>.onnx`` / ``<mode>.int8.onnx``; the shipped model is copied
to ``edgefuse/data/models/depth_completion/depth_completion_concat.onnx`` (package data, beside its card; run
``python -m models.depth_completion.make_card`` after) by ``--ship concat`` (the default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from models.depth_completion.data import TRAIN_RECORDINGS, load, split_points
from models.depth_completion.net import DepthCompletionNet

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def move_dequantize_after_depth_to_space(model: onnx.ModelProto) -> int:
    """Run the head's pixel shuffle (``DepthToSpace``, a pure permutation) on the quantized uint8 tensor and
    dequantize after it: the same numbers, a quarter of the memory traffic.  Returns how many were moved."""
    nodes = list(model.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    uses: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    moved = 0
    for n in nodes:
        dq = producer.get(n.input[0]) if n.op_type == "DepthToSpace" else None
        if dq is None or dq.op_type != "DequantizeLinear" or uses[dq.output[0]] != 1:
            continue
        out = n.output[0]
        n.input[0], n.output[0] = dq.input[0], out + "_quantized"
        dq.input[0], dq.output[0] = out + "_quantized", out
        model.graph.node.remove(dq)  # keep the topological order: the DequantizeLinear now follows
        model.graph.node.insert(list(model.graph.node).index(n) + 1, dq)
        moved += 1
    onnx.checker.check_model(model)
    return moved


def export(mode: str, calib: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, object]:
    model = DepthCompletionNet(mode)
    model.load_state_dict(torch.load(HERE / "checkpoints" / f"{mode}.pt"))
    model.eval()
    BUILD.mkdir(exist_ok=True)
    fp32 = BUILD / f"{mode}.onnx"
    img, dep = calib[0]
    args = (torch.from_numpy(img), torch.from_numpy(dep))
    torch.onnx.export(model, args, str(fp32), input_names=["image", "sparse_depth"], output_names=["depth"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"image": {2: "H", 3: "W"}, "sparse_depth": {2: "H", 3: "W"},
                                    "depth": {2: "H", 3: "W"}})
    with torch.no_grad():
        ref = model(*args).numpy()
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}  # the LiDAR-only net has no image input
    got = sess.run(["depth"], {k: v for k, v in (("image", img), ("sparse_depth", dep)) if k in names})[0]

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter([{k: v for k, v in (("image", i), ("sparse_depth", d)) if k in names}
                               for i, d in calib])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    pre = BUILD / f"{mode}.pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    int8 = BUILD / f"{mode}.int8.onnx"
    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    # the learned layers only (convolutions with their ReLU, the decoder's nearest upsampling):
                    # the in-graph candidate depths and the final blend stay float (uint8 steps of 80 m / 255
                    # would cost more than the whole error budget)
                    op_types_to_quantize=["Conv", "Relu", "Resize"])
    pre.unlink()
    qmodel = onnx.load(str(int8))
    move_dequantize_after_depth_to_space(qmodel)
    onnx.save(qmodel, str(int8))
    return {"mode": mode, "fp32": fp32.name, "fp32_sha256": sha256(fp32), "fp32_bytes": fp32.stat().st_size,
            "int8": int8.name, "int8_sha256": sha256(int8), "int8_bytes": int8.stat().st_size,
            "ort_vs_torch_max_abs_err_m": float(np.max(np.abs(ref - got))), "opset": 17}


def calibration_set(n: int = 16, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frames = load(TRAIN_RECORDINGS)
    out = []
    for k in range(n):
        f = frames[k % len(frames)]
        inp, _ = split_points(f.depth, 0.2, rng)
        out.append((np.ascontiguousarray(f.image.transpose(2, 0, 1)[None], np.float32),
                    np.ascontiguousarray(inp[None, None], np.float32)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modes", nargs="+", default=["gated", "concat", "lidar"])
    ap.add_argument("--ship", default="concat")
    a = ap.parse_args()
    torch.set_num_threads(2)
    calib = calibration_set()
    info = {m: export(m, calib) for m in a.modes}
    (BUILD / "export.json").write_text(json.dumps(info, indent=1))
    if a.ship:
        ship = HERE.parents[1] / "edgefuse" / "data" / "models" / "depth_completion"
        shutil.copyfile(BUILD / f"{a.ship}.onnx", ship / f"depth_completion_{a.ship}.onnx")
        shutil.copyfile(BUILD / f"{a.ship}.int8.onnx", ship / f"depth_completion_{a.ship}.int8.onnx")
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
