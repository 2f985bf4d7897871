"""The kept index: bundles that passed every gate on this machine, by the exact content of their files.

Where it sits: ``pipeline.build`` looks bundles up in it before rendering and adds the bundles of
a successful run after it; ``flows.commit`` supplies the folder ids (the git tree id of each bundle
folder at the GitOps repo's head, from its outline: no file is read or listed to find them). An
entry says: the folder with exactly this id (every file's name, mode and bytes), at this bundle
path, passed every gate whose verdicts these gates digest
decides (policies, schemas: ``BundleGates.digest``), and are what render wrote for this
inputDigest and signature. A bundle at the head whose ids and plan match an entry is kept without
reading, rendering or checking it again; its isolation facts (for the environment-wide audit),
its Application and its warnings come from the entry, as they were computed from those files.

Storage: one SQLite database, ``RENDER_CACHE_DIR/kept-bundles/v2/index.sqlite``: a row per entry,
keyed by (gates digest, ``entry_key``), holding the entry as a JSON document, and a row per gates
digest with the time it was last used. ``Target.unchanged`` reads the entries of all its bundles
in one query per gates digest (``CHUNK`` keys an ``IN (...)``); ``put`` writes the entries of a
run in one transaction. The database is in WAL mode with a busy timeout, so two runs at once
neither corrupt it nor fail: a run that cannot read it in time, or cannot write it at all, only
keeps less (a miss) or records nothing. The ``v1`` (a file per entry) and ``v2`` (keyed by each
file's id) folders are no longer read and are removed by the next ``put``.

Trust: like the policy-verdict cache it lives under RENDER_CACHE_DIR, only render writes it, and
only after every gate passed; what the GitOps repo says of itself (bundle.json) is never read
here. An entry that does not parse, is too big, has the wrong shape or is another bundle's is a
miss (the bundle is rendered and checked, and its entry written again), and so is every entry of
a file that is not such a database (tables of another shape, not a database at all): ``put``
replaces that file. ``--no-cache`` ignores it. A change of policies or schemas starts afresh
(another gates digest); at most ``MAX_FOLDERS`` gates digests (the least recently used others are
deleted) and ``MAX_ENTRIES`` entries each are kept.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

import orjson

from renderer.core import layout
from renderer.pipeline.plan import BundlePlan
from renderer.pipeline.provenance import signature_record
from renderer.pipeline.audit import facts_from_json

VERSION = "v3"  # v3: keyed by the folder's id (v2: by each file's id)
DATABASE = "index.sqlite"
MAX_ENTRY_BYTES = 256 << 10  # an entry is a few KiB (facts, the Application)
MAX_FOLDERS = 8  # gates digests kept side by side (the least recently used others are removed)
MAX_ENTRIES = 200_000  # entries of one gates digest (bundles x the versions of each seen)
BUSY_SECONDS = 5.0  # how long a run waits for another run's write before it goes without
TOUCH_SECONDS = 0.1  # ... and before it goes without marking a gates digest used
CHUNK = 500  # keys in one ``IN (...)`` (SQLite allows 32,766 variables; 999 before 3.32)
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SCHEMA = {
    "entries": "CREATE TABLE entries (digest TEXT NOT NULL, key TEXT NOT NULL, run INTEGER NOT NULL, "
               "doc BLOB NOT NULL, PRIMARY KEY (digest, key))",
    "digests": "CREATE TABLE digests (digest TEXT NOT NULL PRIMARY KEY, used REAL NOT NULL)",
}
_BROKEN = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}  # replaced by ``put`` (a locked or read-only file is not)

Ids = str  # the id of a bundle folder's content (``BuildRequest.folder_id``: git's tree id)


@dataclass(frozen=True)
class Entry:
    input_digest: str  # the plan the files were written for (compared by ``get``)
    signature: Optional[dict]
    objects: int
    application: tuple[str, bytes]  # (file name, bytes) of the bundle's Argo CD Application
    warnings: tuple[str, ...]
    verdict_key: str  # validate.policy_key of the files
    facts: dict  # validate.bundle_facts of the files


def entry_key(gates_digest: str, path: str, ids: Ids) -> str:
    return hashlib.sha256(f"{VERSION}\0{gates_digest}\0{path}\0{ids}".encode()).hexdigest()


class _WrongShape(Exception):
    """The file is a database, but not this index's (other tables)."""


class KeptIndex:
    """Lookups and additions for one run; ``cache_dir`` None: an index that knows nothing."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else Path(cache_dir) / "kept-bundles" / VERSION
        self._read: dict[str, Optional[Entry]] = {}  # key -> the entry read, before the plan is compared
        self._keys: dict[tuple[str, str, Ids], str] = {}  # a run asks for a bundle's key about five times
        self._run = time.time_ns()  # this run's rows (``_prune``)

    def key(self, gates_digest: str, path: str, ids: Ids) -> str:
        """``entry_key`` of the folder with id ``ids`` at ``path`` (hashed once a run)."""
        key = self._keys.get((gates_digest, path, ids))
        if key is None:
            key = self._keys[gates_digest, path, ids] = entry_key(gates_digest, path, ids)
        return key

    @property
    def database(self) -> Optional[Path]:
        return None if self.root is None else self.root / DATABASE

    def get(self, gates_digest: str, plan: BundlePlan, ids: Ids, signature: bool = True) -> Optional[Entry]:
        """The entry for these exact files at ``plan.path``, when render wrote them for exactly this
        plan's inputDigest and signature (``signature=False``: before the plan is verified, its
        inputDigest only); None otherwise. An entry ``load`` read is not read again."""
        if self.root is None or not ids or not _HEX.match(gates_digest):
            return None
        key = self.key(gates_digest, plan.path, ids)
        if key not in self._read:
            self._lookup(gates_digest, {key: plan})
        found = self._read[key]
        if found is None or found.input_digest != plan.input_digest \
                or (signature and found.signature != signature_record(plan)):
            return None
        return found

    def load(self, items: Iterable[tuple[str, BundlePlan, Ids]]) -> None:
        """Reads the entries of these (gates digest, plan, ids) not read yet, one query per gates
        digest (and ``CHUNK`` keys), for ``get`` to answer from."""
        if self.root is None:
            return
        wanted: dict[str, dict[str, BundlePlan]] = {}
        for gates_digest, plan, ids in items:
            if ids and _HEX.match(gates_digest):
                key = self.key(gates_digest, plan.path, ids)
                if key not in self._read:
                    wanted.setdefault(gates_digest, {})[key] = plan
        for gates_digest, plans in wanted.items():
            self._lookup(gates_digest, plans)

    def _lookup(self, gates_digest: str, wanted: dict[str, BundlePlan]) -> None:
        """key -> Entry (or None: not there, does not read back) into ``_read`` for ``wanted``
        (key -> plan). A database that is missing, locked, broken or of another shape: all None."""
        found: dict[str, Optional[Entry]] = dict.fromkeys(wanted)
        collecting = gc.isenabled()  # thousands of parsed documents, none of them a cycle:
        gc.disable()  # a collection every 700 of their objects would cost a third of the lookup
        try:
            if self.database.is_file():  # a lookup never creates it
                con = _connect(self.database)
                try:
                    if _shape(con) == _SCHEMA:
                        keys = list(wanted)
                        for i in range(0, len(keys), CHUNK):
                            part = keys[i:i + CHUNK]
                            for key, doc in con.execute(
                                    "SELECT key, CASE WHEN typeof(doc) = 'blob' AND length(doc) <= ? THEN doc END "
                                    f"FROM entries WHERE digest = ? AND key IN ({','.join('?' * len(part))})",
                                    (MAX_ENTRY_BYTES, gates_digest, *part)):
                                if key in found:
                                    found[key] = _read_back(doc, wanted[key])
                        if any(e is not None for e in found.values()):
                            con.execute(f"PRAGMA busy_timeout = {int(TOUCH_SECONDS * 1000)}")
                            con.execute("UPDATE digests SET used = ? WHERE digest = ?", (time.time(), gates_digest))
                finally:
                    con.close()
        except (sqlite3.Error, OSError):
            pass
        finally:
            if collecting:
                gc.enable()
        self._read.update(found)

    def put(self, gates_digest: str, items: Iterable[tuple[BundlePlan, Ids, Entry]]) -> int:
        """Record bundles that passed every gate in this run, in one transaction (an entry that
        exists is written again: it may be one that did not read back); returns how many were
        written. A database that is not one (or not this index's) is replaced; one that is locked
        past ``BUSY_SECONDS`` or cannot be written only costs time later (nothing is recorded)."""
        if self.root is None or not _HEX.match(gates_digest):
            return 0
        rows = [(gates_digest, entry_key(gates_digest, plan.path, ids), self._run, _document(entry))
                for plan, ids, entry in items]
        if not rows:
            return 0
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for old in ("v1", "v2"):  # the indexes before this one (a file per entry; keyed by file ids)
                if (self.root.parent / old).is_dir():
                    shutil.rmtree(self.root.parent / old, ignore_errors=True)
            for last in (False, True):
                try:
                    self._write(gates_digest, rows)
                    return len(rows)
                except _WrongShape:
                    pass
                except sqlite3.Error as e:
                    if getattr(e, "sqlite_errorname", None) not in _BROKEN:
                        return 0
                if last:
                    return 0
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        except OSError:
            pass
        return 0

    def _write(self, gates_digest: str, rows: list) -> None:
        con = _connect(self.database)
        try:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode = WAL")  # readers go on while a run writes
            except sqlite3.OperationalError:  # another run holds it: its setting is the same
                pass
            con.execute("PRAGMA synchronous = NORMAL")  # a cache: a power cut may lose the last run's rows
            con.execute("BEGIN IMMEDIATE")
            shape = _shape(con)
            if not shape:
                for sql in _SCHEMA.values():
                    con.execute(sql)
            elif shape != _SCHEMA:
                raise _WrongShape()
            con.executemany("INSERT OR REPLACE INTO entries (digest, key, run, doc) VALUES (?, ?, ?, ?)", rows)
            con.execute("INSERT OR REPLACE INTO digests (digest, used) VALUES (?, ?)", (gates_digest, time.time()))
            self._prune(con, gates_digest)
            con.execute("COMMIT")
        finally:
            con.close()  # without COMMIT: rolled back

    def _prune(self, con: sqlite3.Connection, gates_digest: str) -> None:
        """At most ``MAX_FOLDERS`` gates digests (the least recently used others go), and at most
        ``MAX_ENTRIES`` entries of this one (beyond that, only this run's entries stay: the others
        are rendered once more, then kept)."""
        stale = [d for (d,) in con.execute("SELECT digest FROM digests ORDER BY used DESC, digest LIMIT -1 OFFSET ?",
                                           (MAX_FOLDERS,))]
        for old in stale:
            con.execute("DELETE FROM entries WHERE digest = ?", (old,))
            con.execute("DELETE FROM digests WHERE digest = ?", (old,))
        if con.execute("SELECT count(*) FROM entries WHERE digest = ?", (gates_digest,)).fetchone()[0] > MAX_ENTRIES:
            con.execute("DELETE FROM entries WHERE digest = ? AND run != ?", (gates_digest, self._run))


def _connect(path: Path) -> sqlite3.Connection:
    """A connection that waits ``BUSY_SECONDS`` for another run's write; transactions are explicit."""
    return sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)


def _shape(con: sqlite3.Connection) -> dict:
    """name -> CREATE statement of this index's tables that the database has."""
    return dict(con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                            tuple(_SCHEMA)).fetchall())


@dataclass(frozen=True)
class Target:
    """What the kept index may keep of one target (the GitOps repo's head), looked up once a run."""

    index: KeptIndex
    digests: Mapping[str, str]  # environment -> gates digest (``BundleGates.digest``)
    ids: Mapping[str, Ids]  # bundle path -> its folder's id at the target

    @classmethod
    def of(cls, index: KeptIndex, envs, plans, folder_ids: Optional[Callable], gates_digest: Callable) -> "Target":
        if index.root is None or not plans or folder_ids is None:
            return cls(index, {}, {})
        return cls(index, {e.name: gates_digest(e) for e in envs}, dict(folder_ids(tuple(plans))))

    def unchanged(self, plans, held: Optional[Mapping] = None, signatures: bool = True) -> dict:
        """path -> Entry of the bundles the target holds exactly as the index knows them
        for their plans, read in one query per gates digest. Held bundles are never among them.
        ``signatures=False`` (before the plans are verified): their signatures are not compared."""
        candidates = [(p, ids) for p in plans if (ids := self.ids.get(p.path)) and not (held and p.path in held)]
        self.index.load((self.digests[p.env], p, ids) for p, ids in candidates)
        out = {}
        for p, ids in candidates:
            entry = self.index.get(self.digests[p.env], p, ids, signature=signatures)
            if entry is not None:
                out[p.path] = entry
        return out


def _document(entry: Entry) -> bytes:
    return json.dumps({
        "input": entry.input_digest, "signature": entry.signature, "objects": entry.objects,
        "application": [entry.application[0], entry.application[1].decode("utf-8")],
        "warnings": list(entry.warnings), "verdict": entry.verdict_key, "facts": entry.facts,
    }, sort_keys=True, separators=(",", ":")).encode()


def _read_back(doc, plan: BundlePlan) -> Optional[Entry]:
    """The entry a row holds (``doc``: its JSON bytes, None when too big or not bytes), or None."""
    if doc is None:
        return None
    try:
        return _entry(orjson.loads(doc), plan)  # 10,000 documents a run: orjson reads them in 60% of json's time
    except (ValueError, RecursionError):
        return None


def _entry(doc, plan: BundlePlan) -> Optional[Entry]:
    """The entry, when ``doc`` has its shape and belongs to ``plan``'s bundle (its inputs and
    signature are compared by ``get``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("input"), str) \
            or not isinstance(doc.get("signature"), (dict, type(None))):
        return None
    app, warnings, objects, verdict = doc.get("application"), doc.get("warnings"), doc.get("objects"), doc.get("verdict")
    facts = facts_from_json(doc.get("facts"))
    if (facts is None or type(objects) is not int or objects < 1 or not isinstance(verdict, str) or not _HEX.match(verdict)
            or not (isinstance(app, list) and len(app) == 2 and all(isinstance(v, str) for v in app))
            or not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings))
            or facts["bundle"] != plan.path or app[0] != layout.application_file(plan.names.app)):
        return None
    return Entry(doc["input"], doc["signature"], objects, (app[0], app[1].encode("utf-8")), tuple(warnings), verdict, facts)
