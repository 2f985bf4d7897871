"""Outlines: a head's tree with each bundle folder folded into one entry, the id of its tree.

Where it sits: ``gitops``, below ``publish`` (which plans commits on outlines) and beside
``history``. At 10,000 bundles a head lists about 250,000 paths: git reads some 13,000 tree
objects to list them (about a second), and parsing and grouping them costs as much again, more
than the rest of a run that changes one bundle. A run needs the files of a bundle folder only
where it writes or reads that folder (a changed bundle, drift, a hold); the kept index knows every
other bundle by the id of its folder alone. So a snapshot takes the head as an *outline*: every
path outside the bundle folders (Applications, the AppProject, holds, root files) as git lists it,
and each bundle folder that holds files only as one entry ``(TREE, id of its tree)``. ``unfold``
puts the files of the folders a run touches back (one ``cat-file --batch``).

``Outlines`` records the outline of each tree this machine listed or committed, by the root
tree's id, under ``RENDER_CACHE_DIR/outlines/v1/``: a run on a head render committed lists
nothing. Trust: a record is used only when the root tree id computed from it (git's hashing of
every path, mode and blob id, and of each folded folder's id) is the head's own, so a record
that is not that tree's exact listing (damaged, hostile, another tree's) is a miss, and the head
is listed. ``--no-cache`` records and reads nothing. At most ``MAX_OUTLINES`` are kept.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Optional

from renderer.core import layout
from renderer.gitops.git import BLOB, TREE, Git, Tree
from renderer.gitops.trees import _Dir, _serialise

VERSION = "v1"
MAX_OUTLINES = 8
MAX_BYTES = 256 << 20  # 10,000 bundles outline in about 2 MiB
_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def is_folded(entry: Optional[tuple[str, str]]) -> bool:
    return entry is not None and entry[0] == TREE


def folder_id(g: Git, files: Iterable[tuple[str, tuple[str, str]]]) -> Optional[str]:
    """The id git gives a folder holding exactly these files (name -> (mode, blob id)); None when
    there are none (git stores no empty folder)."""
    node = _Dir({name.encode("utf-8", "surrogateescape"): entry for name, entry in files})
    return _serialise(node, [], g.hash_tree, g.empty_tree)


def files_id(g: Git, files: Iterable[tuple[str, bytes]]) -> str:
    """The id of a folder of plain files (name, bytes): what a bundle folder render writes gets."""
    return folder_id(g, ((name, (BLOB, g.blob_id(data))) for name, data in files)) or g.empty_tree


def fold(g: Git, tree: Tree) -> Tree:
    """``tree`` (a listing, or an outline with some folders unfolded) as an outline: each bundle
    folder that holds files only becomes one ``(TREE, id)`` entry; a bundle folder with a folder
    in it stays as it is (render never writes one: the next commit replaces it)."""
    out: Tree = {}
    folders: dict[str, list[tuple[str, tuple[str, str]]]] = {}
    nested: set[str] = set()
    kinds: dict[str, Optional[str]] = {}  # folder -> its bundle folder (itself), or None
    for path, entry in tree.items():
        folder, _, name = path.rpartition("/")
        bundle = kinds.get(folder, False)
        if bundle is False:
            bundle = kinds[folder] = folder if layout.parse_bundle(folder) is not None else None
        if bundle is not None:
            folders.setdefault(folder, []).append((name, entry))
            continue
        unit = layout.unit_of(path)
        if unit != path and not path.startswith(layout.HOLDS + "/"):
            nested.add(unit)  # a path deeper inside a bundle folder
        out[path] = entry
    for folder, files in folders.items():
        if folder in nested or folder in out or any(is_folded(e) for _, e in files):
            out.update((f"{folder}/{name}", e) for name, e in files)
        else:
            out[folder] = (TREE, folder_id(g, files))
    return out


def root_id(g: Git, outline: Tree) -> Optional[str]:
    """The id of the root tree an outline describes (None: no tree git would store so)."""
    root = _Dir()
    for path, entry in outline.items():
        names = path.encode("utf-8", "surrogateescape").split(b"/")
        node = root
        for name in names[:-1]:
            child = node.get(name)
            if child is None:
                child = node[name] = _Dir()
            elif not isinstance(child, _Dir):
                return None  # a file and a folder of one name
            node = child
        if names[-1] in node or not names[-1]:
            return None
        node[names[-1]] = entry
    return _serialise(root, [], g.hash_tree, g.empty_tree) or g.empty_tree


def unfold(g: Git, outline: Tree, folders: Iterable[str]) -> Tree:
    """``outline`` with the files of these folded folders in place of their entries (one read)."""
    wanted = sorted({f for f in folders if is_folded(outline.get(f))})
    if not wanted:
        return outline
    out = {path: entry for path, entry in outline.items() if path not in wanted}
    for folder, entries in zip(wanted, g.folders([outline[f][1] for f in wanted])):
        out.update((f"{folder}/{name}", entry) for name, entry in sorted(entries.items()))
    return out


def folder_files(g: Git, tree: Tree, folder: str) -> list[tuple[str, str]]:
    """(name, id) of the files right in ``folder`` of a listing or an outline."""
    entry = tree.get(folder)
    if is_folded(entry):
        return sorted((name, e[1]) for name, e in g.folders([entry[1]])[0].items() if not is_folded(e))
    prefix = folder + "/"
    return sorted((p[len(prefix):], e[1]) for p, e in tree.items() if p.startswith(prefix) and "/" not in p[len(prefix):])


class Outlines:
    """``cache_dir`` None: knows nothing and records nothing (``--no-cache``)."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else Path(cache_dir) / "outlines" / VERSION

    def get(self, g: Git, tree_id: Optional[str]) -> Optional[Tree]:
        """The outline recorded for ``tree_id``, when it proves to be that tree's."""
        if self.root is None or not tree_id or not _ID.match(tree_id):
            return None
        try:
            with open(self.root / tree_id, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except OSError:
            return None
        if len(raw) > MAX_BYTES:
            return None
        try:
            outline = _parse(raw, len(tree_id))
        except (ValueError, UnicodeDecodeError):
            return None
        if outline is None or any(is_folded(e) and layout.parse_bundle(p) is None for p, e in outline.items()):
            return None  # render folds bundle folders only
        try:
            return outline if root_id(g, outline) == tree_id else None
        except ValueError:
            return None

    def put(self, tree_id: Optional[str], outline: Tree) -> None:
        """Record the outline of ``tree_id`` (a cache that cannot be written only costs time later)."""
        if self.root is None or not tree_id or not _ID.match(tree_id):
            return
        data = b"".join(f"{mode}{oid}{path}\0".encode("utf-8", "surrogateescape")
                        for path, (mode, oid) in sorted(outline.items()))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.root / tree_id)
            except BaseException:
                os.unlink(tmp)
                raise
            known = sorted((e for e in os.scandir(self.root) if not e.name.startswith(".")),
                           key=lambda e: e.stat().st_mtime_ns, reverse=True)
            for old in known[MAX_OUTLINES:]:
                os.unlink(old.path)
        except OSError:
            pass


def _parse(raw: bytes, id_length: int) -> Optional[Tree]:
    """A record's entries, ``<6-digit mode><id><path>\\0`` each (``Git.tree``'s listing format)."""
    n = 6 + id_length
    out: Tree = {}
    for record in raw.decode("utf-8", "surrogateescape").split("\0")[:-1]:
        mode, oid, path = record[:6], record[6:n], record[n:]
        if not (mode.isdigit() and len(oid) == id_length and path):
            return None
        out[path] = (mode, oid)
    return out if raw.endswith(b"\0") or not raw else None
