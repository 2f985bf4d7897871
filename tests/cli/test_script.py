"""The ``render`` script (``renderer.cli.run``, also ``python -m renderer.cli``): it exits with what
``main`` returns, and its output is whole (it ends without the interpreter's final collection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE, REPO


def _script(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RENDER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "renderer.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path)


@pytest.mark.parametrize("args, code", [
    pytest.param(("no-such-command",), 2, id="a-usage-error"),
    pytest.param(("build", "no-such-folder", "--out", "out", "--offline"), 1, id="a-rejected-input"),
])
def test_the_script_exits_with_the_code_main_returns(tmp_path, args, code):
    proc = _script(tmp_path, *args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_scripts_json_output_is_whole_when_it_succeeds(tmp_path):
    proc = _script(tmp_path, "build", str(EXAMPLE), "--out", str(tmp_path / "out"), "--offline", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["bundles"] == 9 and (tmp_path / "out" / "dev" / "argocd").is_dir()
