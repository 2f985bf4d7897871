"""Parsed inputs: the documents of input files that parsed and validated before, by their bytes.

Where it sits: ``pipeline.load`` asks it before composing a file's YAML. At 10,000 bundles a
commit reads 3,334 distinct tenant.yaml files; composing each with LibYAML and walking it for its
line numbers is most of loading them, and a tenant's file seldom changes between two runs. An
entry is keyed by the model (``Tenant``, ``PluginInstall``, ...) and the sha256 of the file's exact
bytes, under a digest of the code that parses them (every module of the renderer, the versions of
PyYAML, pydantic and pydantic-core): it holds the document's data and its line of every field, so
the same file gives the same ``Document``, the same model (validated again from the data, as from
a parse) and the same ``file:line`` in every problem found later. Only a file that parsed and
validated cleanly is recorded, and only when its data is plain JSON (mappings, lists, strings,
numbers, booleans, null): a file with a problem is parsed every time, so its problems are reported
as they always were.

Storage: one SQLite database, ``RENDER_CACHE_DIR/parsed-inputs/v1/index.sqlite``, a row per
(code digest, model, sha256); a run reads the rows of its code digest in one query and writes the
documents new to it in one transaction (WAL mode and a busy timeout, as the kept index).

Trust: as for the verdict cache and the kept index (only render writes it; ``--no-cache`` ignores
it). A row that does not read back (not JSON, another shape, data its model refuses) is a miss:
the file is parsed, and the row written again; a file that is not this database is replaced.
Rows of other code digests are removed when a run writes; at most ``MAX_ROWS`` are kept.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any, Optional

import orjson

from renderer.core import codeid
from renderer.core.yamlio import Document

VERSION = "v1"
DATABASE = "index.sqlite"
MAX_ROWS = 200_000
MAX_ROW_BYTES = 1 << 20  # an input file is at most 1 MiB (yamlio.MAX_INPUT_BYTES)
BUSY_SECONDS = 5.0
_SCHEMA = ("CREATE TABLE docs (code TEXT NOT NULL, model TEXT NOT NULL, sha TEXT NOT NULL, doc BLOB NOT NULL, "
           "PRIMARY KEY (code, model, sha))")


def code_digest() -> str:
    """``codeid.code_digest`` of the code that parses and validates: every module of the renderer
    and the versions of PyYAML, pydantic and pydantic-core."""
    return codeid.code_digest(VERSION, ("PyYAML", "pydantic", "pydantic-core"))


class ParsedInputs:
    """The parsed documents of one run; ``cache_dir`` None: knows nothing and records nothing."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else Path(cache_dir) / "parsed-inputs" / VERSION
        self._code: Optional[str] = None
        self._rows: Optional[dict[tuple[str, str], bytes]] = None  # (model, sha) -> JSON, read once
        self._new: dict[tuple[str, str], bytes] = {}

    @property
    def database(self) -> Optional[Path]:
        return None if self.root is None else self.root / DATABASE

    def get(self, model: str, sha: str) -> Optional[Document]:
        """The document recorded for a file of these bytes, or None (not recorded, or it does not
        read back)."""
        if self.root is None:
            return None
        if self._rows is None:
            self._rows = self._read()
        row = self._rows.get((model, sha))
        return None if row is None else _document(row)

    def add(self, model: str, sha: str, doc: Document) -> None:
        """Record a document that parsed and validated (written by ``save``), when it is plain JSON."""
        if self.root is None or not _plain(doc.data, 0):
            return
        self._new[(model, sha)] = json.dumps(
            [doc.data, [[list(path), line] for path, line in doc.lines.items()]],
            separators=(",", ":"), allow_nan=False).encode()

    def save(self) -> None:
        """Write the documents recorded this run, in one transaction; a database that cannot be
        written only costs time later."""
        if self.root is None or not self._new:
            return
        rows = [(self._digest(), model, sha, doc) for (model, sha), doc in sorted(self._new.items())]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for last in (False, True):
                try:
                    self._write(rows)
                    break
                except sqlite3.DatabaseError as e:
                    if last or getattr(e, "sqlite_errorname", None) not in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                        break
                    for suffix in ("", "-wal", "-shm", "-journal"):
                        Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        except OSError:
            pass
        self._new.clear()

    def _digest(self) -> str:
        if self._code is None:
            self._code = code_digest()
        return self._code

    def _read(self) -> dict[tuple[str, str], bytes]:
        try:
            if not self.database.is_file():
                return {}
            con = sqlite3.connect(self.database, timeout=BUSY_SECONDS, isolation_level=None)
            try:
                return {(model, sha): doc for model, sha, doc in con.execute(
                    "SELECT model, sha, doc FROM docs WHERE code = ? AND typeof(doc) = 'blob' AND length(doc) <= ?",
                    (self._digest(), MAX_ROW_BYTES)) if isinstance(model, str) and isinstance(sha, str)}
            finally:
                con.close()
        except (sqlite3.Error, OSError):
            return {}

    def _write(self, rows: list) -> None:
        con = sqlite3.connect(self.database, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("BEGIN IMMEDIATE")
            tables = dict(con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
            if tables.get("docs") != _SCHEMA:
                for name in tables:  # another shape (or nothing yet): this index's table only
                    con.execute(f'DROP TABLE "{name}"')
                con.execute(_SCHEMA)
            code = rows[0][0]
            con.execute("DELETE FROM docs WHERE code != ?", (code,))
            if con.execute("SELECT count(*) FROM docs").fetchone()[0] + len(rows) > MAX_ROWS:
                con.execute("DELETE FROM docs")
            con.executemany("INSERT OR REPLACE INTO docs (code, model, sha, doc) VALUES (?, ?, ?, ?)", rows)
            con.execute("COMMIT")
        finally:
            con.close()


def _plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is what JSON gives back exactly: str-keyed mappings, lists, strings,
    integers, finite floats, booleans, null."""
    if depth > 64:
        return False
    kind = type(value)
    if kind in (str, int, bool) or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def _document(row: bytes) -> Optional[Document]:
    """The document a row holds, when it has the shape ``add`` writes; else None."""
    try:
        doc = orjson.loads(row)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(doc, list) and len(doc) == 2 and isinstance(doc[0], dict) and isinstance(doc[1], list)):
        return None
    lines = {}
    for item in doc[1]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and type(item[1]) is int
                and all(type(p) in (str, int) for p in item[0])):
            return None
        lines[tuple(item[0])] = item[1]
    return Document(doc[0], lines)
