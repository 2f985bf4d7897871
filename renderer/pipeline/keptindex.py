"""The kept index: bundles that passed every gate on this machine, by the exact content of their files.

Where it sits: ``pipeline.build`` looks bundles up in it before rendering and adds the bundles of
a successful run after it; ``flows.commit`` supplies the content ids (the git blob ids of the
GitOps repo's head, read from its tree: no file is read to find them). An entry says: the files
with exactly these ids, at this bundle path, passed every gate whose verdicts these gates digest
decides (policies, schemas: ``BundleGates.digest``), and are what render wrote for this
inputDigest and signature. A bundle at the head whose ids and plan match an entry is kept without
reading, rendering or checking it again; its isolation facts (for the environment-wide audit),
its Application and its warnings come from the entry, as they were computed from those files.

Trust: like the policy-verdict cache it lives under RENDER_CACHE_DIR, only render writes it, and
only after every gate passed; what the GitOps repo says of itself (bundle.json) is never read
here. An entry that does not parse, is too big or has the wrong shape is a miss (the bundle is
rendered and checked). ``--no-cache`` ignores it. One small file per entry, written atomically,
so concurrent runs never corrupt it; the folder is per gates digest, so a change of policies or
schemas starts afresh; at most ``MAX_FOLDERS`` digests and ``MAX_ENTRIES`` entries each are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

from renderer.core import layout
from renderer.pipeline.plan import BundlePlan
from renderer.pipeline.provenance import signature_record
from renderer.pipeline.validate import facts_from_json

VERSION = "v1"
MAX_ENTRY_BYTES = 256 << 10  # an entry is a few KiB (facts, the Application)
MAX_FOLDERS = 8  # gates digests kept side by side (older ones are removed)
MAX_ENTRIES = 200_000  # entries of one gates digest (bundles x the versions of each seen)
_HEX = re.compile(r"^[0-9a-f]{64}$")

Ids = tuple[tuple[str, str], ...]  # ((file name, content id), ...) sorted by name


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
    h = hashlib.sha256(f"{VERSION}\0{gates_digest}\0{path}\0".encode())
    for name, content_id in sorted(ids):
        h.update(f"{name}\0{content_id}\n".encode())
    return h.hexdigest()


class KeptIndex:
    """Lookups and additions for one run; ``cache_dir`` None: an index that knows nothing."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else Path(cache_dir) / "kept-bundles" / VERSION
        self._read: dict[str, Optional[Entry]] = {}  # key -> the entry read, before the plan is compared

    def _file(self, gates_digest: str, key: str) -> Path:
        return self.root / gates_digest / key[:2] / f"{key}.json"

    def get(self, gates_digest: str, plan: BundlePlan, ids: Ids, signature: bool = True) -> Optional[Entry]:
        """The entry for these exact files at ``plan.path``, when render wrote them for exactly this
        plan's inputDigest and signature (``signature=False``: before the plan is verified, its
        inputDigest only); None otherwise."""
        if self.root is None or not ids or not _HEX.match(gates_digest):
            return None
        key = entry_key(gates_digest, plan.path, ids)
        if key not in self._read:  # a second lookup (after verification) reads and checks nothing again
            try:
                with open(self._file(gates_digest, key), "rb") as fh:
                    raw = fh.read(MAX_ENTRY_BYTES + 1)
                self._read[key] = _entry(json.loads(raw), plan) if len(raw) <= MAX_ENTRY_BYTES else None
            except (OSError, ValueError):
                self._read[key] = None
        found = self._read[key]
        if found is None or found.input_digest != plan.input_digest \
                or (signature and found.signature != signature_record(plan)):
            return None
        return found

    def put(self, gates_digest: str, items: Iterable[tuple[BundlePlan, Ids, Entry]]) -> int:
        """Record bundles that passed every gate in this run (an entry that exists is written
        again: it may be one that did not read back); returns how many were written. A cache
        that cannot be written only costs time later."""
        if self.root is None or not _HEX.match(gates_digest):
            return 0
        written: list[Path] = []
        try:
            folder = self.root / gates_digest
            folder.mkdir(parents=True, exist_ok=True)
            for plan, ids, entry in items:
                path = self._file(gates_digest, entry_key(gates_digest, plan.path, ids))
                path.parent.mkdir(exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_document(entry))
                os.replace(tmp, path)
                written.append(path)
            if written:
                self._prune(folder, set(written))
        except OSError:
            pass
        return len(written)

    def _prune(self, folder: Path, keep: set) -> None:
        """At most ``MAX_FOLDERS`` gates digests, and at most ``MAX_ENTRIES`` entries in this one
        (beyond that, only this run's entries stay: the others are rendered once more, then kept)."""
        others = sorted((p for p in self.root.iterdir() if p.is_dir() and p != folder),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in others[MAX_FOLDERS - 1:]:
            shutil.rmtree(old, ignore_errors=True)
        entries = [e.path for sub in os.scandir(folder) if sub.is_dir() for e in os.scandir(sub.path)]
        if len(entries) > MAX_ENTRIES:
            for path in entries:
                if Path(path) not in keep:
                    os.unlink(path)


@dataclass(frozen=True)
class Target:
    """What the kept index may keep of one target (the GitOps repo's head), looked up once a run."""

    index: KeptIndex
    digests: Mapping[str, str]  # environment -> gates digest (``BundleGates.digest``)
    ids: Mapping[str, Ids]  # bundle path -> its files' content ids at the target

    @classmethod
    def of(cls, index: KeptIndex, envs, plans, content_ids: Optional[Callable], gates_digest: Callable) -> "Target":
        if index.root is None or not plans or content_ids is None:
            return cls(index, {}, {})
        return cls(index, {e.name: gates_digest(e) for e in envs}, dict(content_ids(tuple(plans))))

    def unchanged(self, plans, held: Optional[Mapping] = None, signatures: bool = True) -> dict:
        """path -> Entry of the bundles the target holds exactly as the index knows them
        for their plans. Held bundles are never among them. ``signatures=False`` (before the
        plans are verified): their signatures are not compared."""
        out = {}
        for p in plans:
            ids = self.ids.get(p.path)
            if not ids or (held and p.path in held):
                continue
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


def ids_of(files: Sequence[tuple[str, bytes]], content_id) -> Ids:
    """A bundle's ((file name, content id), ...) by ``content_id`` (bytes -> id)."""
    return tuple(sorted((name, content_id(data)) for name, data in files))
