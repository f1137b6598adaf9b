"""Runtime settings: Numba cache directory and thread counts, and imports without a writable cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEFUSE_", "NUMBA_CACHE"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def test_unwritable_cache_dir_disables_caching_and_still_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")  # a file: nothing can be created below it, even by root
    code = (
        "import numpy as np, edgefuse\n"
        "from edgefuse.config import CONFIG, cache_enabled\n"
        "assert CONFIG.numba_cache_dir is None and not cache_enabled()\n"
        "from edgefuse.fusion import Projector\n"
        "p = Projector(0, np.array([[100.,0,32],[0,100.,24],[0,0,1]]), np.zeros(8), 64, 48, np.eye(4))\n"
        "r = p.project(np.array([[0., 0., 5.]], np.float32))\n"
        "assert r.n_valid == 1 and abs(float(r.depth[24, 32]) - 5.0) < 1e-6\n"
        "print('ok')\n"
    )
    proc = _run(code, {"EDGEFUSE_NUMBA_CACHE_DIR": str(blocker / "cache"), "XDG_CACHE_HOME": str(blocker)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cache_dir_from_environment_is_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = (
        "import numba, edgefuse\n"
        "from edgefuse.config import CONFIG\n"
        f"assert str(CONFIG.numba_cache_dir) == {str(cache)!r}\n"
        f"assert numba.config.CACHE_DIR == {str(cache)!r}\n"
        "print('ok')\n"
    )
    proc = _run(code, {"EDGEFUSE_NUMBA_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert cache.is_dir()


def test_thread_counts_configurable() -> None:
    import numba

    from edgefuse import config

    before = numba.get_num_threads()
    try:
        cfg = config.configure(numba_threads=1, ort_threads=2)
        assert numba.get_num_threads() == 1
        assert cfg.ort_threads == 2
    finally:
        config.configure(numba_threads=before, ort_threads=0)


def test_bad_thread_env_is_reported_and_ignored() -> None:
    proc = _run("import edgefuse\nfrom edgefuse.config import CONFIG\nprint(CONFIG.numba_threads)",
                {"EDGEFUSE_NUMBA_THREADS": "many"})
    assert proc.returncode == 0, proc.stderr
    assert "EDGEFUSE_NUMBA_THREADS must be an integer >= 0, got 'many'; ignored" in proc.stderr
    assert proc.stdout.strip() == "None"


@pytest.mark.parametrize("value", ["2"])
def test_thread_env_applied_by_runner(value: str) -> None:
    proc = _run("import edgefuse\nfrom edgefuse.config import CONFIG, apply_numba_threads\n"
                "print(CONFIG.numba_threads, apply_numba_threads())", {"EDGEFUSE_NUMBA_THREADS": value})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == value
