"""What an earlier output holds: the bundles that can be kept, and the versions that run now.

Where it sits: ``cli`` and ``gitops`` hand these to ``pipeline`` (``BuildRequest.reuse`` and
``BuildRequest.deployed``); ``pipeline`` keeps a bundle whose bundle.json records the same
inputDigest and signature and whose files match its filesDigest, and refuses a version move
across a migration contract step. This module reads folders; ``gitops`` reads git trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from renderer.pipeline.render import files_digest, same_inputs


def files_of(source) -> tuple:
    """A kept bundle's files: given as they are, or read from its folder."""
    if isinstance(source, Path):
        try:
            return tuple(sorted((f.name, f.read_bytes()) for f in source.iterdir() if f.is_file()))
        except OSError:
            return ()
    return source


def reuse_from_folder(root: Path) -> Callable[[tuple], dict]:
    """``BuildRequest.reuse`` from a previous `render build` output: the files of each planned
    bundle whose bundle.json there records the same inputDigest and signature."""
    def reuse(plans) -> dict:
        out = {}
        for p in plans:
            folder = root / p.path
            try:
                if same_inputs(p, (folder / "bundle.json").read_bytes()):
                    out[p.path] = folder  # the worker reads the files
            except OSError:
                continue
        return out

    return reuse


def deployed_from_folder(root: Path) -> Callable[[tuple], dict]:
    """``BuildRequest.deployed`` from an earlier output: each bundle.json's pluginVersion."""
    def deployed(plans) -> dict:
        out = {}
        for p in plans:
            try:
                version = plugin_version((root / p.path / "bundle.json").read_bytes())
            except OSError:
                continue
            if version:
                out[p.path] = version
        return out

    return deployed


def plugin_version(bundle_json: bytes) -> str | None:
    """The pluginVersion a bundle.json records (None when unreadable)."""
    try:
        version = json.loads(bundle_json).get("pluginVersion")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def files_intact(files) -> bool:
    """Whether a bundle's files match the filesDigest its own bundle.json records."""
    try:
        recorded = json.loads(dict(files)["bundle.json"]).get("filesDigest")
    except (KeyError, ValueError, AttributeError, TypeError):
        return False
    return recorded == files_digest(files)
