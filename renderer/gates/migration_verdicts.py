"""Migration verdicts: the migration gate's findings for a catalog version, by the exact content of its plugin folder.

Where it sits: ``gates.migrations.check_catalog`` asks it before ``check_version`` and records
what that returned. A catalog seldom changes between two runs, and checking a version parses its
migrations with PostgreSQL's parser (``pglast``: loading it costs about 0.1 s a process) and lints
them with squawk (a process). With every verdict recorded, a run loads neither.

A record's key is sha256 over the code that decides (``codeid.code_digest``: every module of the
renderer, the versions of pglast and squawk-cli, and the squawk binary's size and time), the
version asked, and every file of ``catalog/<plugin>/`` (relative path, size and bytes: every
version's migrations and manifest, which are all that ``check_version`` reads). The record holds
the findings, their paths relative to the plugin folder.

Trust: as for the other caches under RENDER_CACHE_DIR (only render writes it; ``--no-cache``
ignores it). A plugin folder that holds a symbolic link or anything but folders and regular files,
or more than ``MAX_FILES`` files or ``MAX_BYTES`` bytes, is never recorded (the gate runs every
time, and reports the link). A record that does not read back (not JSON, another shape, a path
outside the plugin folder, too big) is a miss: the version is checked and recorded again. At most
``MAX_RECORDS`` records (the least recently written others are removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Callable, Optional

import orjson

from renderer.core import codeid
from renderer.core.errors import RendererBroken

VERSION = "v1"
MAX_RECORDS = 512
MAX_RECORD_BYTES = 1 << 20
MAX_FILES = 2_000  # files of one plugin folder (every version's migrations and manifest)
MAX_BYTES = 64 << 20
_KEY = re.compile(r"^[0-9a-f]{64}$")

Finding = tuple[str, int, str, str, bool]  # (path relative to the plugin folder, line, rule, message, blocking)


def _squawk_identity(squawk: Callable[[], str]) -> str:
    """The squawk binary the gate would run: its path, size and modification time."""
    try:
        path = squawk()
        info = os.stat(path)
    except (OSError, RendererBroken):  # not installed: the gate itself says so when it runs
        return "?"
    return f"{path}\0{info.st_size}\0{info.st_mtime_ns}"


def _folder_digest(plugin_dir: Path) -> Optional[str]:
    """sha256 over every folder and regular file under ``plugin_dir`` (relative path, size,
    bytes), or None when it holds a link or anything else, or is too big to record."""
    h = hashlib.sha256()
    files = total = 0
    for top, dirs, names in os.walk(plugin_dir, followlinks=False):
        dirs.sort()
        rel_top = os.path.relpath(top, plugin_dir)
        h.update(f"d\0{rel_top}\0".encode("utf-8", "surrogateescape"))
        for name in sorted(dirs + names):
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
            except OSError:
                return None
            if stat.S_ISDIR(info.st_mode):
                continue  # walked below
            if not stat.S_ISREG(info.st_mode):
                return None
            files += 1
            total += info.st_size
            if files > MAX_FILES or total > MAX_BYTES:
                return None
            try:  # not through a link put there since, nor waiting on a FIFO
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                return None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                with os.fdopen(fd, "rb", closefd=False) as f:
                    data = f.read(MAX_BYTES + 1)
            except OSError:
                return None
            finally:
                os.close(fd)
            h.update(f"f\0{os.path.join(rel_top, name)}\0{len(data)}\0".encode("utf-8", "surrogateescape") + data)
    return h.hexdigest()


class MigrationVerdicts:
    """Lookups and records for one run; ``cache_dir`` None: knows nothing and records nothing."""

    def __init__(self, cache_dir: Optional[Path], squawk: Callable[[], str]):
        self.root = None if cache_dir is None else Path(cache_dir) / "migration-verdicts" / VERSION
        self._squawk = squawk
        self._code: Optional[str] = None
        self._folders: dict[Path, Optional[str]] = {}

    def key(self, plugin_dir: Path, version: str) -> Optional[str]:
        """The record key of ``version`` of the plugin in ``plugin_dir``, or None (not recordable)."""
        if self.root is None:
            return None
        if plugin_dir not in self._folders:
            self._folders[plugin_dir] = _folder_digest(plugin_dir)
        folder = self._folders[plugin_dir]
        if folder is None:
            return None
        if self._code is None:
            self._code = codeid.code_digest(f"migration-verdicts {VERSION}\0{_squawk_identity(self._squawk)}",
                                            ("pglast", "squawk-cli"))
        return hashlib.sha256(f"{self._code}\0{version}\0{folder}".encode()).hexdigest()

    def get(self, key: Optional[str]) -> Optional[list[Finding]]:
        """The recorded findings of ``key``, or None (a miss)."""
        if key is None or not _KEY.match(key):
            return None
        try:
            with open(self.root / f"{key}.json", "rb") as f:
                raw = f.read(MAX_RECORD_BYTES + 1)
            doc = orjson.loads(raw) if len(raw) <= MAX_RECORD_BYTES else None
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("findings"), list):
            return None
        out = []
        for item in doc["findings"]:
            if not (isinstance(item, list) and len(item) == 5 and isinstance(item[0], str) and type(item[1]) is int
                    and item[1] >= 0 and isinstance(item[2], str) and isinstance(item[3], str)
                    and isinstance(item[4], bool)) or not _inside(item[0]):
                return None
            out.append((item[0], item[1], item[2], item[3], item[4]))
        return out

    def put(self, key: Optional[str], findings: list[Finding]) -> None:
        """Record ``findings`` under ``key`` (atomically); a cache that cannot be written is left as it is."""
        if key is None or not _KEY.match(key) or not all(_inside(f[0]) for f in findings):
            return
        data = json.dumps({"key": key, "findings": [list(f) for f in findings]}, sort_keys=True,
                          separators=(",", ":")).encode()
        if len(data) > MAX_RECORD_BYTES:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, self.root / f"{key}.json")
            records = sorted(self.root.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
            for old in records[:-MAX_RECORDS] if len(records) > MAX_RECORDS else ():
                old.unlink(missing_ok=True)
        except OSError:
            pass


def _inside(rel: str) -> bool:
    """A relative path that stays inside the plugin folder."""
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts and "\0" not in rel
