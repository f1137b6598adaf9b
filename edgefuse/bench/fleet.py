"""Fleet replay: one bench task per bag, in this process or on Dask.

Without ``workers``/``scheduler`` the bags are replayed one after the other here.  With ``workers=N`` a Dask
``LocalCluster`` is started on the loopback interface only (127.0.0.1, no dashboard): N worker processes with
one thread each, and Numba / OpenMP / ONNX Runtime limited to one thread per worker (environment set before
the workers import anything), so N workers use N cores.  ``scheduler="tcp://HOST:PORT"`` uses an existing
cluster instead (its workers need edgefuse and the bags at the same paths).

Start-up is kept apart from throughput: before the bags are timed, every process that will replay them
starts the pipeline once (:func:`warm_pipeline`: imports, Numba kernels loaded from the on-disk cache or
compiled, models loaded, the first bag opened), as one long-lived process does with its first bag.  Each
bag still gets a fresh, started :class:`~edgefuse.pipeline.runner.PipelineRunner` (no state carries over
from one bag to the next, so every bag's results equal those of a fresh process); only the process-wide
caches are warm.  On Dask the warm-up is a worker plugin, so a worker that replaces a dead one warms up
too.  The record's ``fleet`` section gives ``start_s`` (cluster start and warm-up), ``wall_s`` (the bags,
warm) and ``total_s`` (everything).  Dask's sampling profiler (a thread that walks the task's stack every
10 ms) is off in the local workers, and they keep glibc's default memory trimming (Dask's nannies set
``MALLOC_TRIM_THRESHOLD_=65536``, which makes every bag fault its large arrays' pages in again), and the
cluster's periodic monitors wake up less often (:data:`WORKER_DASK_CONFIG`).

Faults: a bag that cannot be replayed (corrupt, missing topics) is listed as failed with its one-line error
and the others go on; a task whose worker dies is re-run elsewhere by the scheduler, and one that raises
something unexpected is retried (``retries``) before it is listed as failed.
"""

from __future__ import annotations

import contextlib
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
#: Dask settings of the local cluster (see the module doc): no sampling profiler, and glibc's own
#: malloc trimming instead of the 64 KiB trim threshold Dask's nannies set (which returns freed memory to the
#: kernel after every large array and costs a replay ~35 000 page faults and a quarter more CPU per bag); and
#: fewer wake-ups of the scheduler, nannies and workers (event-loop watchdog, system and memory monitors; no
#: work stealing, which equal one-bag tasks handed out as workers free up do not need): together about half
#: the scheduler/client/nanny CPU time and 5 % of the workers'
WORKER_DASK_CONFIG = {"distributed.worker.profile.enabled": False,
                      "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                      "distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "5s",
                      "distributed.worker.memory.monitor-interval": "1s", "distributed.scheduler.work-stealing": False}

#: pipelines started in this process by :func:`warm_pipeline`: (path, mtime) -> what the start took
_WARM: dict[tuple[str, int], dict[str, Any]] = {}


def warm_pipeline(pipeline: str, bag: str | None = None) -> dict[str, Any]:
    """Start every stage of ``pipeline`` once in this process and open ``bag``, then stop again: the imports,
    Numba kernels (from the on-disk cache, or compiled) and models are then loaded for every later run here.
    Done once per process and pipeline file (a second call returns the first one's figures with ``cached``
    true).  Returns ``{"pid", "start_s", "stages_ms", "cached"}``, or ``{"pid", "error"}`` when the
    pipeline or bag cannot be loaded (the bag tasks then report that error themselves)."""
    from edgefuse._cli_common import one_line

    path = Path(pipeline).resolve()
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        return {"pid": os.getpid(), "error": one_line(exc)}
    hit = _WARM.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    from edgefuse.pipeline.config import load_pipeline
    from edgefuse.pipeline.runner import PipelineRunner
    from edgefuse.sources import open_source

    t0 = time.perf_counter()
    try:
        runner = PipelineRunner(load_pipeline(path), [])
        runner.start()
        runner.finish()
        if bag is not None:
            with open_source(Path(bag), on_error="skip") as source:
                source.topics()
    except (EdgefuseError, OSError) as exc:
        return {"pid": os.getpid(), "error": one_line(exc)}
    rec = {"pid": os.getpid(), "start_s": time.perf_counter() - t0, "stages_ms": dict(runner.start_ms)}
    _WARM[key] = rec
    return {**rec, "cached": False}


#: name of the warm-up worker plugin (see :func:`_warm_plugin`)
WARM_PLUGIN = "edgefuse-warm"


def _warm_plugin(distributed: Any, pipeline: str, bag: str | None) -> Any:
    """A Dask worker plugin that runs :func:`warm_pipeline` when a worker joins (the first ones and any
    replacement), in a thread so that the worker keeps answering the scheduler meanwhile."""

    class WarmPlugin(distributed.WorkerPlugin):  # type: ignore[misc]
        name = WARM_PLUGIN

        def __init__(self) -> None:
            self.result: dict[str, Any] | None = None

        async def setup(self, worker: Any) -> None:
            import asyncio

            self.result = await asyncio.get_running_loop().run_in_executor(None, warm_pipeline, pipeline, bag)

    return WarmPlugin()


def _warm_result(dask_worker: Any) -> dict[str, Any] | None:
    plugin = dask_worker.plugins.get(WARM_PLUGIN)
    return None if plugin is None else plugin.result


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
              on_started: Callable[[Any], None] | None = None, warm: bool = True) -> dict[str, Any]:
    """Bench every bag; returns the merged record (``per_bag``, ``failed``, ``outliers``; see
    :func:`edgefuse.bench.run.merge_records`) with ``fleet`` timing added: ``start_s`` (cluster start and,
    with ``warm``, every process's :func:`warm_pipeline`), ``wall_s`` (from the first bag submitted to the
    last record in), ``total_s``, ``bags_per_s`` and ``recorded_s_per_wall_s`` (over ``wall_s``);
    ``driver_cpu_s``: this process's CPU time over ``wall_s`` (on Dask: the client, and the scheduler and
    nannies of a local cluster; in-process: the replays themselves).
    ``on_record(index, record)`` is called for every bag's record as it arrives (to write per-bag reports);
    ``on_started(client)`` once the Dask client is up (tests use it to kill a worker)."""
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
    timing: dict[str, Any] = {}
    mode = "in-process"
    if workers is None and scheduler is None:
        timing["warm"] = [warm_pipeline(pipeline, bags[0] if bags else None)] if warm else []
        timing["bags_from"], timing["cpu_from"] = time.perf_counter(), time.process_time()
        for i, bag in enumerate(bags):
            done(i, bench_task(pipeline, bag, repeats, rate, max_speed))
    else:
        mode = _run_dask(pipeline, bags, repeats, rate, max_speed, workers=workers, scheduler=scheduler,
                         retries=retries, done=done, on_started=on_started, warm=warm, timing=timing)
    t1 = time.perf_counter()
    start = timing["bags_from"] - t0
    wall = timing.get("bags_to", t1) - timing["bags_from"]
    driver_cpu = timing.get("cpu_to", time.process_time()) - timing["cpu_from"]
    merged = merge_records([records[i] for i in sorted(records)], failed=failed)
    merged["fleet"] = {"mode": mode, "workers": workers, "scheduler": scheduler, "start_s": start, "wall_s": wall,
                       "total_s": t1 - t0, "warm": timing["warm"],
                       "driver_cpu_s": driver_cpu,
                       "bags_per_s": len(bags) / wall if wall > 0 else None,
                       "recorded_s_per_wall_s": merged["recorded_span_s"] * merged["repeats"] / wall if wall else None}
    return merged


def _run_dask(pipeline: str, bags: Sequence[str], repeats: int, rate: float | None, max_speed: bool, *,
              workers: int | None, scheduler: str | None, retries: int,
              done: Callable[[int, dict[str, Any]], None], on_started: Callable[[Any], None] | None,
              warm: bool, timing: dict[str, Any]) -> str:
    distributed = _require_dask()
    import logging

    import dask

    cluster = None
    if scheduler is None:
        n = workers or 1
        if n < 1:
            raise ReplayError(f"--workers must be >= 1, got {n}")
        # worker processes inherit this process's environment at spawn: set the thread limits for them
        saved = {k: os.environ.get(k) for k in WORKER_ENV}
        os.environ.update(WORKER_ENV)
        try:
            with dask.config.set(WORKER_DASK_CONFIG):  # the nannies hand this configuration to their workers
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None,
                                                   silence_logs=logging.ERROR, env=dict(WORKER_ENV))
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
        timing["warm"] = []
        if warm and bags:
            # runs setup() on every worker now (waits for them) and on any worker that joins later; a worker
            # lost meanwhile is not an error (its replacement warms up when it joins, or its first bag does)
            with contextlib.suppress(OSError):
                client.register_plugin(_warm_plugin(distributed, pipeline, str(bags[0])))
            timing["warm"] = [r for r in client.run(_warm_result, on_error="return").values()
                              if isinstance(r, dict)]
        timing["bags_from"], timing["cpu_from"] = time.perf_counter(), time.process_time()
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
        timing["bags_to"], timing["cpu_to"] = time.perf_counter(), time.process_time()
    finally:
        client.close(timeout=30)
        if cluster is not None:
            cluster.close(timeout=30)
    return mode
