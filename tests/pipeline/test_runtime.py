"""The pipeline's ``runtime:`` section: ``numba_cache_dir`` is relative to the pipeline file's folder, is not
created by validation, and is where the kernels compiled by the run are cached (issue 10, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_numba_cache_dir_is_relative_to_the_pipeline_and_used(tiny_pipeline: Path, tmp_path: Path) -> None:
    text = tiny_pipeline.read_text().replace("sync:", "runtime: {numba_cache_dir: kernels}\nsync:")
    tiny_pipeline.write_text(text)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    default_cache = tmp_path / "default_cache"
    cache = tiny_pipeline.parent / "kernels"
    code = (
        "import os\n"
        "from edgefuse.pipeline import PipelineRunner, load_pipeline\n"
        f"config = load_pipeline({str(tiny_pipeline)!r})\n"
        f"assert config.runtime['numba_cache_dir'] == {str(cache)!r}, config.runtime\n"
        f"assert not os.path.exists({str(cache)!r})  # validation creates nothing\n"
        "runner = PipelineRunner(config)\n"
        "runner.start()\n"
        "runner.finish()\n"
        "import numba\n"
        f"assert numba.config.CACHE_DIR == {str(cache)!r}\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEFUSE_", "NUMBA_CACHE"))}
    env["EDGEFUSE_NUMBA_CACHE_DIR"] = str(default_cache)
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (elsewhere / "kernels").exists()  # not relative to the working directory
    index = sorted(p.name for p in cache.rglob("*.nbi"))
    data = list(cache.rglob("*.nbc"))
    assert any(name.startswith("_kernels._project_points") for name in index), index
    assert data, "no compiled kernels were written to the pipeline's numba_cache_dir"
