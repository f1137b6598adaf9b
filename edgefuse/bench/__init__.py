"""edgefuse.bench: latency benchmarks of pipelines over recordings (``edgefuse bench``).

- :mod:`edgefuse.bench.run`: a bag replayed with repeats → a record of mergeable histograms, budget checks,
  timeline, inputs, start-up and device; records of several bags merged exactly;
- :mod:`edgefuse.bench.fleet`: many bags in this process or on Dask (``--workers``, ``--scheduler``);
- :mod:`edgefuse.bench.html`: ``report.json`` + self-contained ``report.html`` (inline SVG) + ``figures/``;
- :mod:`edgefuse.bench.compare`: two reports side by side, regressions beyond a threshold and the noise;
- :mod:`edgefuse.bench.device`: the device profile; :mod:`edgefuse.bench.bags`: re-timed copies of a bag.
"""

from __future__ import annotations

from edgefuse.bench.cli import add_bench_parser

__all__ = ["add_bench_parser"]
