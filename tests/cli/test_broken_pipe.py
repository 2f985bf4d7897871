"""A reader that goes away (``render ... | head``) ends the output, not the run with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import EXAMPLE, REPO


def test_a_closed_stdout_ends_the_run_quietly_after_the_work_is_done(tmp_path):
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write gets EPIPE
    out = tmp_path / "out"
    env = {**os.environ, "RENDER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    env.pop("RENDER_SCHEMA_LOCATION", None)
    proc = subprocess.run([sys.executable, "-m", "renderer.cli", "build", str(EXAMPLE), "--out", str(out), "--offline",
                           "--format", "json"], stdout=write, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert (out / "dev" / "argocd").is_dir(), "the build itself completed"
