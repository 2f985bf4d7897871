"""Squawk, run for the migration gate: one process per set of files, memoised in process.

Squawk's own ``-- squawk-ignore`` / ``-- squawk-ignore-file`` comments are neutralised (replaced
by a same-length word, so lines and columns do not move) and squawk runs in a scratch directory
with an explicit empty config, so that no ``.squawk.toml`` can exclude rules. ``lint`` returns
squawk's findings as ``Raw`` tuples with 1-based lines; ``renderer.gates.migrations`` decides
which of them block.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from renderer.core.errors import RendererBroken

# opt-in in squawk, enabled for the gate: the old version loses privileges it uses
OPT_IN_RULES = ("ban-revoke",)
_IGNORE_RE = re.compile(rb"(?i)squawk-ignore")
_IGNORE_NEUTRAL = b"squawk-nogate"  # same length: squawk's lines and columns stay right

_memo: dict[str, tuple["Raw", ...]] = {}
_runs = 0


@dataclass(frozen=True)
class Raw:
    name: str
    line: int  # 1-based
    rule: str
    message: str


class SquawkFailed(RendererBroken):
    """Squawk is missing, crashed or printed something that is not its JSON report."""

    hint = "an installation problem of render: reinstall it with its dependencies (pip package squawk-cli) and run again"


def squawk_path() -> str:
    """The squawk binary: next to the running Python (its venv), else on PATH."""
    local = Path(sys.executable).parent / "squawk"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("squawk")
    if found:
        return found
    raise SquawkFailed("squawk is not installed: the migration gate cannot check PostgreSQL migrations")


def squawk_run_count() -> int:
    """How many squawk processes this process has started (the memo keeps it low)."""
    return _runs


def lint(files: dict[str, bytes], *, find=None, memo: dict | None = None) -> tuple[Raw, ...]:
    """Squawk's findings for these files (one process for all), memoised by content in ``memo``.

    ``find`` locates the binary (default ``squawk_path``)."""
    global _runs
    memo = _memo if memo is None else memo
    if not files:
        return ()
    digest = hashlib.sha256()
    digest.update(",".join(OPT_IN_RULES).encode() + b"\0")
    for name in sorted(files):
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(files[name]).digest())
    key = digest.hexdigest()
    if key in memo:
        return memo[key]

    exe = (find or squawk_path)()
    names = sorted(files)
    # Plain alias names: squawk treats arguments as glob patterns, and a name could start with '-'.
    alias = {f"m{i:04d}.sql": name for i, name in enumerate(names)}
    with tempfile.TemporaryDirectory(prefix="render-squawk-") as tmp:
        work = Path(tmp)
        for short, name in alias.items():
            (work / short).write_bytes(_IGNORE_RE.sub(_IGNORE_NEUTRAL, files[name]))
        config = work / "squawk.toml"
        config.write_text("")
        cmd = [exe, "--config", str(config), "--reporter", "json", "--include", ",".join(OPT_IN_RULES), *alias]
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SquawkFailed(f"squawk could not run: {err}") from None
    _runs += 1
    try:
        report = json.loads(proc.stdout) if proc.returncode in (0, 1) else None
    except ValueError:
        report = None
    if not isinstance(report, list):
        first = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[0]
        raise SquawkFailed(f"squawk failed (exit {proc.returncode}): {first}")
    out = []
    for item in report:
        try:
            name = alias[Path(item["file"]).name]
            text = _sentence(str(item["message"])) + (f" {_sentence(str(item['help']))}" if item.get("help") else "")
            out.append(Raw(name, int(item["line"]) + 1, str(item["rule_name"]), text))  # squawk: 0-based
        except (KeyError, TypeError, ValueError):
            raise SquawkFailed(f"squawk printed an unexpected report entry: {item!r}") from None
    result = tuple(sorted(out, key=lambda r: (r.name, r.line, r.rule, r.message)))
    memo[key] = result
    return result


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
