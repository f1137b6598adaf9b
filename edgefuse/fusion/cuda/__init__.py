"""GPU execution of the data-level hot paths with Numba CUDA kernels (the ``numba-cuda`` package).

Every class here mirrors a CPU class of :mod:`edgefuse.fusion` (same constructor, same validation,
same result type) and runs its per-point work in CUDA kernels:

==========================================  ==================================================
CPU                                         CUDA
==========================================  ==================================================
:class:`~edgefuse.fusion.projection.Projector`         :class:`CudaProjector` (all camera models, z-buffer)
:class:`~edgefuse.fusion.voxel.DynamicVoxelizer`       :class:`CudaDynamicVoxelizer`
:class:`~edgefuse.fusion.voxel.Voxelizer`              :class:`CudaVoxelizer` (hard, both ``on_cap``)
:class:`~edgefuse.fusion.voxel.PillarVoxelizer`        :class:`CudaPillarVoxelizer`
:class:`~edgefuse.fusion.bev.BevGrid`                  :class:`CudaBevGrid`
:class:`~edgefuse.fusion.deskew.Deskewer`              :class:`CudaDeskewer`
==========================================  ==================================================

Agreement with the CPU kernels (checked by ``tests/fusion/cuda`` under Numba's CUDA simulator and by
``bench/device_check.sh`` on a GPU):

- integer outputs are bit-identical: pixel indices, z-buffer winners (nearest float64 depth, ties to
  the lowest point index, exactly the CPU rule), voxel ids/coords/counts, voxel order (first-point
  order, found with a hash table, an atomic min of the first point index and a prefix sum), the
  kept points of each hard voxel (the lowest indices, sorted), BEV counts and occupancy;
- floating-point outputs use the same formulas in the same precision (the kernels are compiled with
  ``fastmath=False``: no FMA contraction, IEEE division); where the GPU's ``libdevice`` replaces the
  C library (``atan`` of the fisheye model, ``sin``/``cos`` of deskew, ``log`` of BEV density) or
  where atomics sum in a different order (BEV mean intensity) the results agree to the tolerances
  :data:`TOLERANCES` states.

Device buffers come from a :class:`BufferPool` per object (keyed by name, grown geometrically, never
freed): a steady stream of clouds allocates nothing on the device.  Each call copies its input to the
device and its outputs back, synchronously; ``last_timing`` holds the split (``h2d_s``, ``kernel_s``,
``d2h_s``) of the last call, and a stage's timing includes the copies.

:func:`resolve_device` picks the device of a stage (``"auto"``, ``"cpu"``, ``"cuda"``) and says why.
``numba.cuda`` is imported only when a CUDA object is built or the device is probed.
"""

from __future__ import annotations

from typing import Any

from edgefuse.fusion.cuda._runtime import (
    DEVICES,
    TOLERANCES,
    BufferPool,
    CudaUnavailableError,
    cuda_status,
    resolve_device,
)

__all__ = [
    "DEVICES",
    "TOLERANCES",
    "BufferPool",
    "CudaBevGrid",
    "CudaDeskewer",
    "CudaDynamicVoxelizer",
    "CudaPillarVoxelizer",
    "CudaProjector",
    "CudaUnavailableError",
    "CudaVoxelizer",
    "cuda_status",
    "resolve_device",
]

_LAZY = {
    "CudaProjector": "edgefuse.fusion.cuda.projection",
    "CudaDynamicVoxelizer": "edgefuse.fusion.cuda.voxel",
    "CudaVoxelizer": "edgefuse.fusion.cuda.voxel",
    "CudaPillarVoxelizer": "edgefuse.fusion.cuda.voxel",
    "CudaBevGrid": "edgefuse.fusion.cuda.voxel",
    "CudaDeskewer": "edgefuse.fusion.cuda.deskew",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
