"""The device a benchmark ran on: CPU model and flags, cores, governor, memory, GPU and ONNX Runtime
providers, Jetson power mode, package versions and the commit.  Every field is best effort: what cannot be
read is ``None`` (never an error), and nothing here takes more than a few seconds."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: distributions whose versions a result records
PACKAGES = ("edgefuse", "numpy", "numba", "onnxruntime", "onnxruntime-gpu", "opencv-python-headless", "scipy",
            "rosbags", "llvmlite", "dask", "distributed")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in {"model name", "flags", "Features", "Model", "Hardware"} and key not in out:
            out[key] = value.strip()
    return out


def _memory_mb() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    return None


def _gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs from the driver's /proc files (no subprocess), else ``nvidia-smi`` (5 s timeout)."""
    gpus: list[dict[str, Any]] = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        fields = dict(line.split(":", 1) for line in (_read(info) or "").splitlines() if ":" in line)
        gpus.append({"name": fields.get("Model", "").strip() or None, "bus": info.parent.name})
    if gpus or shutil.which("nvidia-smi") is None:
        return gpus
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return gpus
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def _ort_providers() -> list[str] | None:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except (ImportError, AttributeError):
        return None


def _jetson() -> dict[str, Any] | None:
    """L4T release and nvpmodel power mode where readable (a Jetson), else None."""
    release = _read("/etc/nv_tegra_release")
    if release is None:
        return None
    status = _read("/var/lib/nvpmodel/status")
    return {"l4t": release.splitlines()[0], "power_mode": status}


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


#: :func:`commit` of this process, asked once (every bag's record carries it; two git calls per bag add up)
_COMMIT: list[str | None] = []


def commit() -> str | None:
    """The git commit of the checkout edgefuse is imported from (None for an installed wheel), read once per
    process."""
    if not _COMMIT:
        _COMMIT.append(_read_commit())
    return _COMMIT[0]


def _read_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                             check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return (sha + ("-dirty" if dirty.stdout.strip() else "")) if sha else None


def device_profile() -> dict[str, Any]:
    """JSON-ready description of this machine and software (see the module doc)."""
    cpu = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    from edgefuse.config import CONFIG

    return {
        "cpu": cpu.get("model name") or cpu.get("Model") or cpu.get("Hardware") or platform.processor() or None,
        "cpu_flags": (cpu.get("flags") or cpu.get("Features") or "").split() or None,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "memory_mb": _memory_mb(),
        "load_average": load,
        "gpus": _gpus(),
        "ort_providers": _ort_providers(),
        "jetson": _jetson(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": _versions(),
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "ort_threads": CONFIG.ort_threads,
        "commit": commit(),
    }
