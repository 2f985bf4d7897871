"""What a run hands the commit server: the rendered files and what the commit records about them.

Where it sits: ``gitops``, a leaf (``flows`` builds a ``Rendered``; ``changes``, ``publish`` and
``texts`` read it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional


@dataclass(frozen=True)
class Rendered:
    """The rendered files of a run, as repository paths, plus what the rollback holds compare.

    ``files``: every rendered file in scope (``<env>/plugins/...``, ``<env>/argocd/...``).
    ``envs``: environments rendered. ``all_envs``: the run covers the whole environments repo
    (no ``--env``), so an environment folder that no longer has inputs is removed.
    ``only``: TENANT/PLUGIN of an ``--only`` run (its scope is exactly the files given).
    ``installs``: bundle path -> ``sha256:<hex>`` of its install file.
    ``kept``: unit (a bundle folder, or a file) -> {repository path: (mode, blob id)} of the files
    that stay exactly as the head holds them.
    """

    files: Mapping[str, bytes]
    envs: tuple[str, ...]
    all_envs: bool = True
    only: Optional[str] = None
    installs: Mapping[str, str] = field(default_factory=dict)
    source_commit: Optional[str] = None
    notes: tuple[str, ...] = ()  # what rendering found about the head (drift, holds), for the message and the diff
    # unit -> {repository path: (mode, blob id)}: files kept exactly as the snapshot's head holds them
    # (bundles the kept index vouched for), in scope like ``files`` but never read or written again;
    # grouped by unit (``core.layout.unit_of``) as the commit plans them, 250,000 paths at 10,000 bundles
    kept: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, root: "Path", **kw) -> "Rendered":
        files = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and "/" in rel and not rel.startswith("."):
                files[rel] = path.read_bytes()
        return cls(files=files, **kw)
