"""Trees that passed ``check_managed`` on this machine, by git tree id.

Where it sits: ``gitops``, beside ``changes.check_managed``. ``publish.Repo.snapshot`` asks before
checking the head's tree; a commit render made records its own tree (render writes only what the
check accepts, on top of a tree that passed it). At 10,000 bundles the check walks ~250,000 paths
and hashes ~10,000 kustomizations (about 1.5 s here); a head render committed itself is not checked
again.

Trust: the key is the tree id, git's hash of every path, mode and blob below it, so a tree with
any other content is a miss and is checked. Like the kept index the record lives under
RENDER_CACHE_DIR, only render writes it, and ``--no-cache`` ignores it. The folder is per renderer
version and ``changes.MANAGED_RULES`` (bumped when the check changes what it accepts). One empty file
per tree id; at most ``MAX_TREES`` are kept.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional, Union

from renderer import __version__
from renderer.gitops.changes import MANAGED_RULES, check_managed
from renderer.gitops.git import Git, Tree

MAX_TREES = 64
_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class CheckedTrees:
    """``cache_dir`` None: knows nothing and records nothing (``--no-cache``)."""

    def __init__(self, cache_dir: Optional[Path]):
        self.root = None if cache_dir is None else \
            Path(cache_dir) / "checked-trees" / f"v1-{__version__}-{MANAGED_RULES}"

    def knows(self, tree_id: Optional[str]) -> bool:
        return bool(self.root is not None and tree_id and _ID.match(tree_id) and (self.root / tree_id).is_file())

    def add(self, tree_id: Optional[str]) -> None:
        """Record a tree that passed the check (or that render wrote); a cache that cannot be
        written only costs time later."""
        if self.root is None or not tree_id or not _ID.match(tree_id):
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / tree_id).touch()
            known = sorted(os.scandir(self.root), key=lambda e: e.stat().st_mtime_ns, reverse=True)
            for old in known[MAX_TREES:]:
                os.unlink(old.path)
        except OSError:
            pass

    def check(self, g: Git, commit: Optional[str], tree: Union[Tree, Callable[[], Tree]], display: str,
              tree_id: Optional[str] = None) -> None:
        """``check_managed`` of ``commit``'s ``tree`` (or of what the function given returns: it is
        called only when needed), unless this tree passed it before. ``tree_id``: the commit's
        tree id, when the caller has it."""
        if tree_id is None:
            tree_id = g.object_id(f"{commit}^{{tree}}") if commit else None
        if self.knows(tree_id):
            return
        check_managed(tree() if callable(tree) else tree, g, display)
        self.add(tree_id)
