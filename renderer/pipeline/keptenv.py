"""Kept environments: the environment-wide files of an environment whose bundles are known.

Where it sits: ``pipeline.build``, beside the kept index (``keptindex``). The environment-wide part
of a run (``environment.environment_files``: the isolation audit over every bundle's facts, the
AppProject with one destination per bundle, the root Application, each through the schema gate)
is a function of the environment's plans and of its bundles' files. After a run in which every
gate passed, render records those files under a key over exactly that: the gates digest, the
environment, and per bundle its path, inputDigest, verified signature and kept-index key (its
folder's id). A later run whose bundles give the same key (the usual unchanged run: every
bundle kept by the kept index) takes the files from the record instead of auditing and rendering
them again; any other run (an install changed, a bundle rendered, held, or not kept) computes them
as before, and records them for the next.

Trust: as for the kept index (the key is content-addressed, only render writes the folder, and only
after every gate passed; ``--no-cache`` ignores it). A record that does not read back (not JSON,
another shape, a file name render does not write, too big) is a miss, and is written again. One
file per key, at most ``MAX_RECORDS`` (the least recently written others are removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional

import orjson

from renderer.core import layout
from renderer.pipeline.provenance import signature_record

VERSION = "v1"
MAX_RECORDS = 16
MAX_RECORD_BYTES = 64 << 20  # an AppProject of 40,000 destinations is a few MiB
_KEY = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^(?:application|appproject)-[a-z0-9][a-z0-9.-]*\.yaml$")

Folders = dict[str, list[tuple[str, bytes]]]  # folder -> [(file name, bytes)], as environment_files returns


def environment_key(gates_digest: str, env: str, bundles: Iterable[tuple[str, str, Optional[dict], str]]) -> str:
    """The key of an environment's record: ``bundles`` are (path, inputDigest, signature record,
    kept-index key) of every bundle of the environment."""
    h = hashlib.sha256(f"{VERSION}\0{gates_digest}\0{env}\0".encode())
    for path, input_digest, signature, key in sorted(bundles, key=lambda b: b[0]):
        h.update(f"{path}\0{input_digest}\0{json.dumps(signature, sort_keys=True)}\0{key}\n".encode())
    return h.hexdigest()


def key_of(target, env, ids: dict) -> Optional[str]:
    """The record key of ``env`` (a ``plan.EnvironmentPlan``) in this run, or None when it has no
    bundle, or one whose folder id is not known (held, not checked, no kept index: ``ids`` is
    bundle path -> folder id or None). ``target``: the run's ``keptindex.Target``."""
    gates_digest = target.digests.get(env.name)
    if not env.bundles or gates_digest is None or any(not ids.get(p.path) for p in env.bundles):
        return None
    return environment_key(gates_digest, env.name, ((p.path, p.input_digest, signature_record(p),
                                                      target.index.key(gates_digest, p.path, ids[p.path]))
                                                     for p in env.bundles))


def environment_wide(folders: Folders, applications: list) -> Folders:
    """``environment_files``' folders without the bundles' Applications (a record holds the rest)."""
    names = {name for name, _ in applications}
    return {folder: [f for f in files if f[0] not in names] for folder, files in folders.items()}


def with_applications(folders: Folders, env: str, applications: list) -> Folders:
    """A record's folders with this run's Applications added, as ``environment_files`` returns them."""
    argocd = layout.argocd_dir(env)
    return {folder: sorted(files + list(applications)) if folder == argocd else files for folder, files in folders.items()}


class KeptEnvironments:
    """``cache_dir`` None: knows nothing and records nothing."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else Path(cache_dir) / "kept-environments" / VERSION

    def get(self, key: str, env: str) -> Optional[Folders]:
        """The files recorded under ``key`` for environment ``env``, or None."""
        if self.root is None or not _KEY.match(key):
            return None
        try:
            path = self.root / key
            if path.stat().st_size > MAX_RECORD_BYTES:
                return None
            doc = orjson.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        return _folders(doc, env)

    def put(self, key: str, folders: Folders) -> None:
        """Record an environment's files (after a run whose every gate passed); a folder that
        cannot be written only costs time later."""
        if self.root is None or not _KEY.match(key):
            return
        try:
            doc = {folder: [[name, data.decode("utf-8")] for name, data in files] for folder, files in folders.items()}
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
            os.replace(tmp, self.root / key)
            known = sorted((e for e in os.scandir(self.root) if _KEY.match(e.name)),
                           key=lambda e: e.stat().st_mtime_ns, reverse=True)
            for old in known[MAX_RECORDS:]:
                os.unlink(old.path)
        except (OSError, UnicodeDecodeError):
            pass


def _folders(doc, env: str) -> Optional[Folders]:
    """The folders a record holds, when it has the shape ``put`` writes for ``env``: its
    bootstrap/ and argocd/ folders only, file names render writes there, text."""
    allowed = {layout.bootstrap_dir(env), layout.argocd_dir(env)}
    if not isinstance(doc, dict) or set(doc) != allowed:
        return None
    out: Folders = {}
    for folder, files in doc.items():
        if not isinstance(files, list) or not files:
            return None
        out[folder] = []
        for item in files:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], str)
                    and _FILE_NAME.match(item[0])):
                return None
            out[folder].append((item[0], item[1].encode("utf-8")))
    return out
