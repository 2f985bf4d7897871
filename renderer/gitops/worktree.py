"""Moving a checked-out working tree and its index by the paths a commit changed.

Where it sits: ``gitops``, below ``workspace`` (``Workspace._update_worktree``). A commit of one
bundle among 10,000 changes a few dozen paths; the whole-tree merge (``read-tree -m -u``) walks
all 250,000 entries of both trees and the index for them. ``update_paths`` moves only the changed
paths, and only when the merge could not have refused: every changed path's index entry and file
are the old commit's (content-compared, so stale stat data is no change), and nothing occupies a
path to create. Anything else (a larger change, a link, a gitlink, a file edited under the run)
is left to the merge, which refuses what it always refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from renderer.gitops.git import Git

SCOPED_PATHS = 2_000  # changed paths up to which the tree is moved path by path
_PLAIN = {b"100644", b"100755", b"000000"}  # regular files, and "absent"
_ABSENT = b"000000"


def changed_paths(g: Git, old: str, new: str) -> Optional[list[tuple[bool, str]]]:
    """(added, path) of every path whose entry differs between the two commits' trees, or None
    when one of them is not a regular file on either side."""
    fields = g.run("diff-tree", "-r", "-z", "--no-renames", old, new)[1].split(b"\0")
    out = []
    for i in range(0, len(fields) - 1, 2):
        meta = fields[i].split(b" ")
        if len(meta) != 5 or not meta[0].startswith(b":") or not {meta[0][1:], meta[1]} <= _PLAIN:
            return None
        out.append((meta[0][1:] == _ABSENT, fields[i + 1].decode("utf-8", "surrogateescape")))
    return out


def update_paths(g: Git, worktree: Path, old: str, new: str, env: dict) -> bool:
    """Move the index and working tree from ``old`` to ``new`` on the changed paths; False, having
    changed nothing, when the whole-tree merge must decide (see the module)."""
    changes = changed_paths(g, old, new)
    if changes is None or len(changes) > SCOPED_PATHS:
        return False
    if not changes:
        return True
    if not all(free(worktree, path) for added, path in changes if added):
        return False
    paths = [path for _, path in changes]
    literal = {"GIT_LITERAL_PATHSPECS": "1"}
    for cached in ((), ("--cached",)):  # the files, then the index entries, against the old tree
        code = g.run("diff", *cached, "--quiet", "--no-ext-diff", "--no-textconv", "--ignore-submodules=none", old,
                     "--", *paths, env={**literal, "GIT_OPTIONAL_LOCKS": "0"}, check=False)[0]
        if code != 0:
            return False
    g.run("restore", f"--source={new}", "--staged", "--worktree", "--pathspec-from-file=-", "--pathspec-file-nul",
          stdin="".join(f"{path}\0" for path in paths).encode("utf-8", "surrogateescape"), env={**env, **literal})
    return True


def free(worktree: Path, path: str) -> bool:
    """Whether a file may be created at ``path`` without replacing anything: nothing there, and
    each folder on the way a real folder (not a file, not a link) or not there yet."""
    parts = path.split("/")
    node = worktree
    for i, part in enumerate(parts):
        node = node / part
        try:
            mode = os.lstat(node).st_mode
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if i == len(parts) - 1 or not stat.S_ISDIR(mode):
            return False
    return False
