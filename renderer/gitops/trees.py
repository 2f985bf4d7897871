"""The tree model of a commit: which paths and modes git stores, and tree objects built in memory.

Where it sits: ``gitops``, below ``git.Git.make_tree`` (which reads the base's trees on the paths to
a change, applies the change to ``_Dir`` folders and writes what ``_serialise`` produces). Pure:
no git process runs here.
"""

from __future__ import annotations

import re
from typing import Optional

from renderer.core.errors import GitFailed

GITLINK = "160000"
_BAD_NAME = re.compile(r"(?i)(\.\.?|\.git[. ]*|\.git::.*|git~\d+)\Z")


def _bad_path(path: str) -> bool:
    """A path git will not store (``verify_path``, core.protectNTFS on): an empty, "." or ".."
    name, a ".git" in any spelling, a backslash, NUL. (Plain tests first: this runs per path.)"""
    if not path or path[0] == "/" or path[-1] == "/" or "//" in path or "\\" in path or "\0" in path:
        return True
    return ("/." in "/" + path or "~" in path) and any(_BAD_NAME.match(n) for n in path.split("/"))


class _Dir(dict):
    """A folder of the tree being built: name -> (mode, id) for a file or an untouched subtree,
    or a ``_Dir`` for a folder on the way to a change (its tree is written again)."""


def _is_tree(mode: str) -> bool:
    return mode.lstrip("0") == "40000"


def _path_names(path: str) -> tuple[bytes, ...]:
    if _bad_path(path):
        raise GitFailed(f"cannot commit the path {path!r}: git does not store it; refusing to commit")
    return tuple(path.encode("utf-8", "surrogateescape").split(b"/"))


def _canonical_mode(mode: str, path: Optional[str] = None) -> str:
    """The mode an index entry gets (``create_ce_mode``): a regular file is 100644 or 100755."""
    if mode in ("100644", "100755", "120000", GITLINK) or path is None and not re.fullmatch(r"100[0-7]{3}", mode):
        return mode
    if not re.fullmatch(r"100[0-7]{3}", mode):
        raise GitFailed(f"cannot commit {path!r} with mode {mode!r} (not a file's); refusing to commit")
    return "100755" if int(mode, 8) & 0o100 else "100644"


def _serialise(node: _Dir, out: list[tuple[bytes, bytes]], hash_tree, empty_tree: str) -> Optional[str]:
    """Append ``node``'s tree (after its changed subtrees) to ``out`` as (raw content, ``mktree -z``
    input): its id, or None when it holds no file (an empty folder disappears from its parent,
    like one the index never had). Entries sort by name bytes, a folder's as ``name/``."""
    items = []
    for name, entry in node.items():
        if isinstance(entry, _Dir):
            oid = _serialise(entry, out, hash_tree, empty_tree)
            if oid is not None:
                items.append((name + b"/", b"40000", b"tree", name, oid))
        elif _is_tree(entry[0]):
            if entry[1] != empty_tree:
                items.append((name + b"/", b"40000", b"tree", name, entry[1]))
        else:
            mode = _canonical_mode(entry[0])
            items.append((name, mode.encode(), b"commit" if mode == GITLINK else b"blob", name, entry[1]))
    if not items:
        return None
    items.sort()
    content = b"".join(b"%s %s\0%s" % (mode, name, bytes.fromhex(oid)) for _, mode, _, name, oid in items)
    out.append((content, b"".join(b"%s %s %s\t%s\0" % (mode, kind, oid.encode(), name)
                                  for _, mode, kind, name, oid in items)))
    return hash_tree(content)
