# ruff: noqa: B023 (the per-case lambdas are called within their loop iteration only)
"""One device check: the CUDA kernels against the CPU kernels on real clouds, timed, plus the ONNX models
on the CUDA / TensorRT providers.  Writes ``device_check.json`` and ``device_check.txt`` into ``--out``.

Every step records its own failure (``steps.<name>.error``) and the check goes on: no GPU, too little
memory, a driver/runtime mismatch, a provider that cannot build its engine each end as one log line
and a report entry, never a crash.  ``--dry-run`` runs everything on Numba's CUDA simulator on a few
hundred points (checks the script itself on a machine without a GPU; its timings mean nothing).

    bash bench/device_check.sh            # on the GPU machine (installs numba-cuda, onnxruntime-gpu)
    bash bench/device_check.sh --dry-run  # here, no GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
T_CAM_LIDAR = [[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.1], [1.0, 0.0, 0.0, 0.2], [0.0, 0.0, 0.0, 1.0]]


def log(msg: str) -> None:
    print(f"[device_check] {msg}", flush=True)


def step(report: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    try:
        value = fn()
        report["steps"][name] = {"ok": True, "s": round(time.perf_counter() - start, 3)}
        return value
    except Exception as exc:
        line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log(f"step {name} failed: {line}")
        report["steps"][name] = {"ok": False, "error": line, "trace": traceback.format_exc()[-2000:],
                                 "s": round(time.perf_counter() - start, 3)}
        return None


def run_cmd(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed: {exc}"


def environment() -> dict[str, Any]:
    import numpy as np

    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "machine": platform.machine(), "numpy": np.__version__}
    for mod in ("numba", "numba_cuda", "onnxruntime", "cv2"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:
            info[mod] = f"missing ({type(exc).__name__})"
    info["nvidia_smi"] = run_cmd(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm,"
                                  "clocks.max.sm,power.limit", "--format=csv,noheader"])
    # Jetson: power mode and clocks (docs/JETSON.md)
    info["nvpmodel"] = run_cmd(["nvpmodel", "-q"])
    info["jetson_clocks"] = run_cmd(["jetson_clocks", "--show"])
    tegra = Path("/etc/nv_tegra_release")
    info["nv_tegra_release"] = tegra.read_text().strip() if tegra.exists() else None
    return info


def clouds(n: int | None) -> dict[str, Any]:
    import numpy as np

    out = {}
    k = np.fromfile(DATA / "kitti_object_3frames/training/velodyne/000000.bin", np.float32).reshape(-1, 4)
    path = next((DATA / "nuscenes_demo_sample").glob("*LIDAR_TOP*.pcd.bin"))
    nu = np.fromfile(path, np.float32).reshape(-1, 5)[:, :4]
    for name, full in (("kitti_000000", k), ("nuscenes_lidar_top", nu)):
        out[name] = np.ascontiguousarray(full[:: max(1, full.shape[0] // n)][:n] if n else full)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 4), "p99_ms": round(float(np.percentile(a, 99)), 4),
            "n": len(samples)}


def timed(fn: Callable[[], Any], obj: Any, repeats: int) -> dict[str, Any]:
    fn()
    walls: list[float] = []
    kernels: list[float] = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        timing = getattr(obj, "last_timing", None)
        if isinstance(timing, dict):
            kernels.append(timing["kernel_s"])
    out = {"with_copies": percentiles(walls)}
    if kernels:
        out["without_copies"] = percentiles(kernels)
    return out


def kernels(report: dict[str, Any], data: dict[str, Any], repeats: int) -> None:
    import numpy as np

    from edgefuse.fusion import cuda as gpu
    from edgefuse.fusion._models import EQUIDISTANT, PINHOLE
    from edgefuse.fusion.bev import BevGrid
    from edgefuse.fusion.deskew import ConstantVelocity, Deskewer
    from edgefuse.fusion.projection import Projector
    from edgefuse.fusion.voxel import DynamicVoxelizer, Voxelizer

    results = report["kernels"]
    K = np.array([[720.0, 0.0, 620.0], [0.0, 720.0, 188.0], [0.0, 0.0, 1.0]])
    w, h = (1242, 375) if repeats > 3 else (64, 24)
    if repeats <= 3:
        K = np.array([[30.0, 0.0, 32.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])
    vs, pr = [0.05, 0.05, 0.1], [0.0, -40.0, -3.0, 70.4, 40.0, 1.0]
    if repeats <= 3:
        vs = [2.0, 2.0, 1.0]
    for cloud_name, pts in data.items():
        xyz = np.ascontiguousarray(pts[:, :3])
        n = xyz.shape[0]
        t = np.linspace(0, 100_000_000, n).astype(np.int64)
        cv = ConstantVelocity((10.0, 0.0, 0.0), (0.0, 0.0, 0.5))
        cases: dict[str, tuple[Any, Any, Callable[[Any], Any], Callable[[Any, Any], dict[str, Any]]]] = {
            "projection_pinhole": (Projector(PINHOLE, K, None, w, h, T_CAM_LIDAR),
                                   gpu.CudaProjector(PINHOLE, K, None, w, h, T_CAM_LIDAR),
                                   lambda o: o.project(xyz, per_point=True), _cmp_projection),
            "projection_equidistant": (Projector(EQUIDISTANT, K, [0.05, 0.01, 0.0, 0.0], w, h, T_CAM_LIDAR),
                                       gpu.CudaProjector(EQUIDISTANT, K, [0.05, 0.01, 0.0, 0.0], w, h, T_CAM_LIDAR),
                                       lambda o: o.project(xyz, per_point=True), _cmp_projection),
            "voxel_dynamic": (DynamicVoxelizer(vs, pr), gpu.CudaDynamicVoxelizer(vs, pr), lambda o: o.voxelize(pts),
                              _cmp_fields("point_voxel", "coords", "num_points")),
            "voxel_hard": (Voxelizer(vs, pr, max_points_per_voxel=5, max_voxels=40000),
                           gpu.CudaVoxelizer(vs, pr, max_points_per_voxel=5, max_voxels=40000),
                           lambda o: o.voxelize(pts), _cmp_fields("voxels", "coords", "num_points")),
            "bev": (BevGrid((0, 70.4), (-40, 40), 0.1 if repeats > 3 else 4.0),
                    gpu.CudaBevGrid((0, 70.4), (-40, 40), 0.1 if repeats > 3 else 4.0),
                    lambda o: o.compute(pts), _cmp_arrays(1e-4)),
            "deskew": (Deskewer(), gpu.CudaDeskewer(), lambda o: o.deskew(xyz, t, cv, reference_time_ns=0).points,
                       _cmp_arrays(1e-9)),
        }
        for case, (cpu, cuda_obj, call, compare) in cases.items():
            key = f"{cloud_name}.{case}"

            def one(cpu: Any = cpu, cuda_obj: Any = cuda_obj, call: Callable[[Any], Any] = call,
                    compare: Callable[[Any, Any], dict[str, Any]] = compare, n: int = n) -> None:
                a = _owned(call(cpu))
                b = _owned(call(cuda_obj))
                entry: dict[str, Any] = {"points": n, "agreement": compare(a, b)}
                entry["cpu"] = timed(lambda: call(cpu), None, repeats)["with_copies"]
                entry["cuda"] = timed(lambda: call(cuda_obj), cuda_obj, repeats)
                entry["cuda_device_allocations_steady"] = _steady_allocs(cuda_obj, call)
                results[key] = entry

            step(report, f"kernel.{key}", one)


def _owned(result: Any) -> Any:
    import numpy as np

    if isinstance(result, np.ndarray):
        return result.copy()
    return result.copy() if hasattr(result, "copy") else result


def _steady_allocs(obj: Any, call: Callable[[Any], Any]) -> int:
    pool: Any = getattr(obj, "pool", None)
    if pool is None:
        return -1
    before = pool.allocations
    call(obj)
    return int(pool.allocations - before)


def _cmp_projection(a: Any, b: Any) -> dict[str, Any]:
    import numpy as np

    both = a.valid & b.valid
    return {"index_identical": bool(np.array_equal(a.index, b.index)),
            "index_mismatch_pixels": int(np.count_nonzero(a.index != b.index)),
            "valid_mismatch": int(np.count_nonzero(a.valid != b.valid)),
            "uv_max_abs_px": float(np.max(np.abs(a.uv[both] - b.uv[both]))) if both.any() else 0.0,
            "depth_max_abs_m": float(np.max(np.abs(a.depth - b.depth)))}


def _cmp_fields(*names: str) -> Callable[[Any, Any], dict[str, Any]]:
    import numpy as np

    def cmp(a: Any, b: Any) -> dict[str, Any]:
        return {name: bool(np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)) for name in names}

    return cmp


def _cmp_arrays(tol: float) -> Callable[[Any, Any], dict[str, Any]]:
    import numpy as np

    def cmp(a: Any, b: Any) -> dict[str, Any]:
        diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        worst = float(np.nanmax(diff)) if np.any(np.isfinite(diff)) else 0.0
        return {"identical": bool(np.array_equal(a, b, equal_nan=True)), "max_abs": worst, "tolerance": tol,
                "within": worst <= tol * max(1.0, float(np.nanmax(np.abs(a))) if tol >= 1e-4 else 1.0)}

    return cmp


def models(report: dict[str, Any], repeats: int) -> None:
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError as exc:
        report["models"]["error"] = f"onnxruntime missing: {exc}"
        return
    report["models"]["available_providers"] = ort.get_available_providers()
    # shipped models live in edgefuse/data/models (packaged); models/ holds training scripts and exports
    found = sorted({*(ROOT / "edgefuse" / "data" / "models").rglob("*.onnx"), *(ROOT / "models").rglob("*.onnx")})
    if not found:
        report["models"]["note"] = "no .onnx model under edgefuse/data/models/ or models/"
    from edgefuse.infer.providers import ProviderSettings, is_qdq, model_op_types
    from edgefuse.infer.runtime import ModelRuntime

    # the runtime's own option builder: engine + timing cache under <cache>/trt/<model-ort-gpu-precision>
    cache = Path(os.environ.get("EDGEFUSE_TRT_CACHE", ROOT / ".trt-cache"))
    for path in found:
        qdq = is_qdq(model_op_types(path))
        variants: list[tuple[str, list[str], str]] = [("tensorrt_fp16", ["tensorrt", "cuda", "cpu"], "fp16")]
        if qdq:  # INT8 from the model's Q/DQ scales; a float model has none
            variants.append(("tensorrt_int8", ["tensorrt", "cuda", "cpu"], "int8"))
        variants += [("cuda", ["cuda", "cpu"], "auto"), ("cpu", ["cpu"], "auto")]
        for name, providers, precision in variants:
            key = f"{path.relative_to(ROOT)}.{name}"

            def one(path: Path = path, providers: list[str] = providers, precision: str = precision,
                    key: str = key) -> None:
                rt = ModelRuntime(path, providers=providers, cache_folder=cache,
                                  settings=ProviderSettings(precision=precision))  # type: ignore[arg-type]
                feeds = {}
                with_dims = None
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.log_severity_level = 3
                for inp in ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).get_inputs():
                    # symbolic dimensions: 1 for the batch, 64 for the others (the image models want H, W % 8 == 0)
                    shape = [d if isinstance(d, int) else (1 if i == 0 else 64) for i, d in enumerate(inp.shape)]
                    dtype = np.float32 if "float" in inp.type else np.int64
                    feeds[inp.name] = np.zeros(shape, dtype=dtype)
                    with_dims = shape
                rt.start(feeds)
                walls = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    rt.run(feeds)
                    walls.append(time.perf_counter() - t)
                rep = rt.report()
                if rep["skipped_providers"]:
                    log(f"{key}: asked for {providers[0]}, ran on {rt.provider} (fell back: "
                        f"{'; '.join(s['provider'] + ': ' + s['reason'] for s in rep['skipped_providers'])})")
                report["models"][key] = {"providers": rt.session.get_providers(), "provider": rt.provider,
                                         "skipped": rep["skipped_providers"], "qdq": qdq,
                                         "trt_flags": rep["trt_flags"], "trt_engine_cache": rep["trt_engine_cache"],
                                         "nodes": rep["nodes"], "input_shape": with_dims, "load_ms": rep["load_ms"],
                                         **percentiles(walls)}

            step(report, f"model.{key}", one)


def summary(report: dict[str, Any]) -> str:
    lines = [f"device check ({'dry run, CUDA simulator' if report['dry_run'] else 'GPU'}): "
             f"{report['cuda_status']}", f"nvidia-smi: {report['environment'].get('nvidia_smi')}"]
    for key, e in report["kernels"].items():
        cpu = e["cpu"]["p50_ms"]
        cu = e["cuda"]["with_copies"]["p50_ms"]
        ko = e["cuda"].get("without_copies", {}).get("p50_ms")
        lines.append(f"{key:45s} n={e['points']:7d} cpu p50 {cpu:9.3f} ms | cuda p50 {cu:9.3f} ms "
                     f"(kernels {ko} ms) | agreement {e['agreement']}")
    failed = [k for k, s in report["steps"].items() if not s["ok"]]
    lines.append(f"models: {json.dumps({k: v for k, v in report['models'].items()})[:800]}")
    lines.append(f"failed steps: {failed or 'none'}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CUDA simulator, tiny clouds (no GPU needed)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "device_check"))
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    if args.dry_run:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    repeats = args.repeats or (2 if args.dry_run else 50)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"dry_run": args.dry_run, "steps": {}, "kernels": {}, "models": {},
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    report["environment"] = step(report, "environment", environment) or {}
    from edgefuse.fusion.cuda import cuda_status

    ok, why = cuda_status()
    report["cuda_status"] = {"available": ok, "reason": why}
    if not ok:
        log(f"CUDA unavailable, kernels not compared: {why}")
    else:
        data = step(report, "load_clouds", lambda: clouds(300 if args.dry_run else None))
        if data:
            kernels(report, data, repeats)
    step(report, "models", lambda: models(report, repeats))
    (out_dir / "device_check.json").write_text(json.dumps(report, indent=1, default=str))
    text = summary(report)
    (out_dir / "device_check.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
