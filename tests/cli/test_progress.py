"""Progress on long runs: a tqdm bar when stderr is a terminal (a real pseudo-terminal here), a
plain line every few seconds otherwise, nothing on stdout, nothing at all with `--format json`,
and nothing with `--quiet`. The runs are real `render` processes."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import EXAMPLE, REPO
from renderer.cli.progress import Bar, Lines, reporter


def _env(tmp_path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "RENDER_CACHE_DIR": str(tmp_path / "cache")}


def _render(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renderer.cli", "build", str(EXAMPLE), "--out", str(tmp_path / "out"),
                           "--offline", *args], capture_output=True, text=True, env=_env(tmp_path), timeout=300)


class TestCommandLine:
    def test_progress_is_a_plain_line_on_stderr_when_it_is_not_a_terminal(self, tmp_path):
        proc = _render(tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "render: rendering 9/9 bundles (100%)" in proc.stderr
        assert "rendering 9/9" not in proc.stdout and proc.stdout.startswith("rendered 9 bundles")

    def test_json_output_carries_no_progress_on_stdout_or_stderr(self, tmp_path):
        proc = _render(tmp_path, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["bundles"] == 9  # exactly one document
        assert proc.stderr == ""

    def test_quiet_prints_nothing_on_stderr_on_success(self, tmp_path):
        proc = _render(tmp_path, "--quiet")
        assert proc.returncode == 0 and proc.stderr == ""
        assert proc.stdout.startswith("rendered 9 bundles")

    def test_a_terminal_gets_a_tqdm_bar_on_stderr_and_stdout_stays_clean(self, tmp_path):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
        try:
            proc = subprocess.Popen([sys.executable, "-m", "renderer.cli", "build", str(EXAMPLE), "--out",
                                     str(tmp_path / "out"), "--offline"], stdout=subprocess.PIPE, stderr=slave,
                                    env=_env(tmp_path))
            os.close(slave)
            seen = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            out = proc.stdout.read().decode()
            assert proc.wait(timeout=300) == 0, seen
        finally:
            os.close(master)
        text = seen.decode(errors="replace")
        assert "\r" in text and "9/9" in text and "bundle" in text and "rendering" in text
        assert "render: rendering" not in text  # the bar, not the plain lines
        assert "9/9" not in out and out.startswith("rendered 9 bundles")


class TestPrinters:
    def test_plain_lines_come_at_most_once_an_interval_and_once_at_the_end(self):
        now = [0.0]
        stream = io.StringIO()
        lines = Lines(stream, "rendering", interval=5.0, clock=lambda: now[0])
        for done, t in [(1, 0.0), (2, 1.0), (3, 4.9), (4, 5.0), (5, 6.0), (6, 11.0), (10, 11.5)]:
            now[0] = t
            lines(done, 10)
        assert stream.getvalue().splitlines() == [
            "render: rendering 4/10 bundles (40%), 5 s",
            "render: rendering 6/10 bundles (60%), 11 s",
            "render: rendering 10/10 bundles (100%), 12 s",
        ]

    def test_the_bar_counts_to_the_total_and_closes_itself(self):
        stream = io.StringIO()
        bar = Bar(stream, "rendering")
        for done in (32, 64, 70):
            bar(done, 70)
        assert "70/70" in stream.getvalue() and bar._bar is None

    @pytest.mark.parametrize("fmt, quiet", [
        pytest.param("json", False, id="json"),
        pytest.param("text", True, id="quiet"),
        pytest.param("json", True, id="json-and-quiet"),
    ])
    def test_no_reporter_for_json_or_quiet(self, fmt, quiet):
        assert reporter(fmt, quiet, stream=io.StringIO()) is None

    def test_a_pipe_gets_plain_lines_and_a_terminal_gets_the_bar(self):
        master, slave = pty.openpty()
        try:
            with os.fdopen(slave, "w", closefd=False) as tty:
                assert isinstance(reporter("text", False, stream=tty), Bar)
        finally:
            os.close(master)
            os.close(slave)
        assert isinstance(reporter("text", False, stream=io.StringIO()), Lines)
