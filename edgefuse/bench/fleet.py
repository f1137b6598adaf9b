"""Fleet replay: one bench task per bag, in this process or on Dask.

Without ``workers``/``scheduler`` the bags are replayed one after the other here.  With ``workers=N`` a Dask
``LocalCluster`` is started on the loopback interface only (127.0.0.1, no dashboard): N worker processes with
one thread each, and Numba / OpenMP / ONNX Runtime limited to one thread per worker (environment set before
the workers import anything), so N workers use N cores.  ``scheduler="tcp://HOST:PORT"`` uses an existing
cluster instead (its workers need edgefuse and the bags at the same paths).

Faults: a bag that cannot be replayed (corrupt, missing topics) is listed as failed with its one-line error
and the others go on; a task whose worker dies is re-run elsewhere by the scheduler, and one that raises
something unexpected is retried (``retries``) before it is listed as failed.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from edgefuse.bench.run import bench_bag, merge_records
from edgefuse.errors import EdgefuseError, ReplayError

#: environment of every local worker: one thread for each numeric library
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "EDGEFUSE_NUMBA_THREADS": "1", "EDGEFUSE_ORT_THREADS": "1"}


def expand_bags(specs: Sequence[str]) -> list[str]:
    """Bags from globs and comma-separated lists, in the order given (each glob sorted), duplicates dropped."""
    out: list[str] = []
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
            if not matches:
                raise ReplayError(f"no bag matches {part!r}")
            out += [m for m in matches if m not in out]
    return out


def bench_task(pipeline: str, bag: str, repeats: int, rate: float | None, max_speed: bool) -> dict[str, Any]:
    """One bag (runs on a worker): its record, or ``{"bag", "error"}`` when the bag cannot be replayed."""
    try:
        return bench_bag(pipeline, bag, repeats=repeats, rate=rate, max_speed=max_speed)
    except (EdgefuseError, OSError) as exc:
        from edgefuse._cli_common import one_line

        return {"bag": bag, "error": one_line(exc)}


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise ReplayError("fleet replay on Dask needs dask[distributed]: pip install 'edgefuse[bench]'") from None
    return distributed


def run_fleet(pipeline: str, bags: Sequence[str], *, repeats: int = 1, rate: float | None = 1.0,
              max_speed: bool = False, workers: int | None = None, scheduler: str | None = None,
              retries: int = 2, progress: TextIO | None = None,
              on_record: Callable[[int, dict[str, Any]], None] | None = None,
              on_started: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Bench every bag; returns the merged record (``per_bag``, ``failed``, ``outliers``; see
    :func:`edgefuse.bench.run.merge_records`) with ``fleet`` timing added.  ``on_record(index, record)`` is
    called for every bag's record as it arrives (to write per-bag reports); ``on_started(client)`` once the
    Dask client is up (tests use it to kill a worker)."""
    records: dict[int, dict[str, Any]] = {}
    failed: list[dict[str, Any]] = []

    def done(i: int, rec: dict[str, Any]) -> None:
        if "error" in rec:
            failed.append({"bag": bags[i], "error": rec["error"]})
        else:
            records[i] = rec
            if on_record is not None:
                on_record(i, rec)
        if progress is not None:
            state = "FAILED: " + rec["error"] if "error" in rec else rec["verdict"].removeprefix("edgefuse: ")
            progress.write(f"bench: {len(records) + len(failed)}/{len(bags)} {Path(bags[i]).name}: {state}\n")
            progress.flush()

    t0 = time.perf_counter()
    mode = "in-process"
    if workers is None and scheduler is None:
        for i, bag in enumerate(bags):
            done(i, bench_task(pipeline, bag, repeats, rate, max_speed))
    else:
        mode = _run_dask(pipeline, bags, repeats, rate, max_speed, workers=workers, scheduler=scheduler,
                         retries=retries, done=done, on_started=on_started)
    wall = time.perf_counter() - t0
    merged = merge_records([records[i] for i in sorted(records)], failed=failed)
    merged["fleet"] = {"mode": mode, "workers": workers, "scheduler": scheduler, "wall_s": wall,
                       "bags_per_s": len(bags) / wall if wall > 0 else None,
                       "recorded_s_per_wall_s": merged["recorded_span_s"] * merged["repeats"] / wall if wall else None}
    return merged


def _run_dask(pipeline: str, bags: Sequence[str], repeats: int, rate: float | None, max_speed: bool, *,
              workers: int | None, scheduler: str | None, retries: int,
              done: Callable[[int, dict[str, Any]], None], on_started: Callable[[Any], None] | None) -> str:
    distributed = _require_dask()
    import logging

    cluster = None
    if scheduler is None:
        n = workers or 1
        if n < 1:
            raise ReplayError(f"--workers must be >= 1, got {n}")
        # worker processes inherit this process's environment at spawn: set the thread limits for them
        saved = {k: os.environ.get(k) for k in WORKER_ENV}
        os.environ.update(WORKER_ENV)
        try:
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                               dashboard_address=None, silence_logs=logging.ERROR,
                                               env=dict(WORKER_ENV))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        client = distributed.Client(cluster)
        mode = f"dask LocalCluster, {n} worker process(es) x 1 thread on 127.0.0.1"
    else:
        try:
            client = distributed.Client(scheduler, timeout=30)
        except OSError as exc:
            raise ReplayError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        mode = f"dask scheduler {scheduler}"
    try:
        if on_started is not None:
            on_started(client)
        index = {}
        futures = []
        for i, bag in enumerate(bags):
            fut = client.submit(bench_task, pipeline, str(bag), repeats, rate, max_speed, retries=retries,
                                pure=False, key=f"edgefuse-bench-{i}-{os.getpid()}-{time.monotonic_ns()}")
            index[fut.key] = i
            futures.append(fut)
        for fut in distributed.as_completed(futures):
            i = index[fut.key]
            if fut.status == "finished":
                done(i, fut.result())
            else:
                err = fut.exception()
                done(i, {"bag": bags[i], "error": f"{type(err).__name__}: {err}".splitlines()[0]})
    finally:
        client.close(timeout=30)
        if cluster is not None:
            cluster.close(timeout=30)
    return mode
