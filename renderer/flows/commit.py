"""Use cases `render commit` and `render diff`: render against the GitOps repo's head, then commit.

Where it sits: ``flows``, the only layer that sees both rendering (``pipeline``) and git
(``gitops``). One straight line, never back up:

1. ``gitops.open_repo`` + ``snapshot``: the branch head (no lock held), what runs there now and
   which bundles' bundle.json record the same inputs (``pipeline.provenance``);
2. ``pipeline.build`` into a private folder (every gate), with those bundles offered for keeping;
3. a ``gitops.CommitRequest`` (the files, the bundles' install hashes, the snapshot's head);
4. ``Repo.commit`` (lock, compare-and-swap, re-apply on a moved head) or ``Repo.diff``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from renderer.core import layout
from renderer.core.errors import InputError, Problem, RefusingToProceed
from renderer.gitops import (
    CommitOptions,
    CommitRequest,
    Outcome,
    Rendered,
    Snapshot,
    open_repo,
)
from renderer.gitops.git import BLOB
from renderer.gitops.history import HeldClaim
from renderer.gitops.report import Report
from renderer.flows.shards import rendered_from_shards
from renderer.pipeline.build import BuildRequest, BuildResult, build
from renderer.pipeline.holds import Held
from renderer.pipeline.provenance import plugin_version, same_inputs
from renderer.pipeline.write import MARKER


@dataclass(frozen=True)
class CommitFlowRequest:
    build: BuildRequest  # ``out`` is ignored: the flow renders into a private folder
    options: CommitOptions
    source_commit: Optional[str] = None
    keep: bool = True  # offer bundles unchanged at the head for keeping (``--no-cache``: False)
    # `--from-shards DIR...`: join these shard outputs (``flows.shards``) instead of rendering
    from_shards: tuple[Path, ...] = ()


def commit(request: CommitFlowRequest) -> Outcome:
    with open_repo(request.options, write=True) as repo:
        snap = repo.snapshot()
        rendered = _joined(request, snap) if request.from_shards else _render(request, snap)
        return repo.commit(CommitRequest(rendered, snap.base, request.options, snap.tree))


def diff(request: CommitFlowRequest) -> Report:
    with open_repo(request.options, write=False) as repo:
        snap = repo.snapshot()
        rendered = _render(request, snap)
        return repo.diff(CommitRequest(rendered, snap.base, request.options, snap.tree))


def rendered_files(build_request: BuildRequest, source_commit: Optional[str] = None) -> Rendered:
    """Render for a commit without looking at any repo (nothing kept, no version moves checked)."""
    return _render(CommitFlowRequest(build_request, CommitOptions(repo=""), source_commit, keep=False), None)


def _render(request: CommitFlowRequest, snap: Optional[Snapshot]) -> Rendered:
    """Render every selected environment against the snapshot. The whole environment is rendered
    even with ``--only``: its argocd/ folder (the AppProject) depends on every bundle; ``--only``
    limits what is committed."""
    only = request.build.only
    with tempfile.TemporaryDirectory(prefix="render-commit-") as tmp:
        out = Path(tmp) / "out"
        held = _HeldAtHead(snap)  # read when the pipeline first asks: after load and plan
        keep = request.keep and snap is not None
        result = build(dataclasses.replace(
            request.build, out=out, only=None, reuse=_reuse(snap) if keep else None,
            deployed=_deployed(snap) if snap else None, held=held,
            folder_ids=(lambda plans: snap.bundle_ids(p.path for p in plans)) if keep else None,
            folder_id=snap.folder_id if keep else None))
        files = _read_output(out)
    claims, notes = held.claims()
    # the head's folders of the bundles the kept index kept (result.unchanged: their ids, from its outline)
    kept = snap.kept_files(result.unchanged) if snap is not None else {}
    for path, data in result.unchanged_apps.items():  # the head's copy when it is the same bytes
        oid = snap.holds(path, data)
        if oid is not None:
            kept[path] = {path: (BLOB, oid)}
        else:
            files[path] = data
    by_path = {c.bundle: c for c in claims}
    for path in sorted(result.held):
        files[layout.parse_bundle(path).hold] = hold_file(by_path[path])
    plans = [p for e in result.environments for p in e.bundles]
    installs = {p.path: f"sha256:{p.install_sha256}" for p in plans if p.install_sha256}
    if only is not None:
        files = _only(files, only, result)
        owns = _owned_by(only, result)
        kept = {unit: slice_ for unit, slice_ in kept.items() if any(owns(path) for path in slice_)}
    return Rendered(files=files, envs=tuple(e.name for e in result.environments), all_envs=request.build.env is None,
                    only=only, installs=installs, source_commit=request.source_commit,
                    notes=tuple(notes + result.notes), kept=kept)


def _held(claim: HeldClaim) -> Held:
    return Held(claim.files, claim.install, claim.from_version, claim.written_at, claim.reason)


class _HeldAtHead(Mapping):
    """``BuildRequest.held`` of a snapshot: bundle path -> ``Held``, read from the head's history
    (``Snapshot.held``) on first use, so that git lists the head's tree while the pipeline loads
    and plans the inputs."""

    def __init__(self, snap: Optional[Snapshot]):
        self._snap = snap
        self._read: Optional[tuple[list[HeldClaim], list[str]]] = None
        self._by_path: dict[str, Held] = {}

    def claims(self) -> tuple[list[HeldClaim], list[str]]:
        """The hold claims that held up, and notes on those that did not."""
        if self._read is None:
            self._read = self._snap.held() if self._snap is not None else ([], [])
            self._by_path = {c.bundle: _held(c) for c in self._read[0]}
        return self._read

    def __getitem__(self, path: str) -> Held:
        self.claims()
        return self._by_path[path]

    def __iter__(self):
        self.claims()
        return iter(self._by_path)

    def __len__(self) -> int:
        self.claims()
        return len(self._by_path)


def hold_file(claim: HeldClaim) -> bytes:
    """The hold file of a held bundle: the one at the head, or a new one for a revert."""
    if claim.hold_file is not None:
        return claim.hold_file
    hold = {"bundle": claim.bundle, "knownGood": claim.written_at, "rolledBackFrom": claim.rolled_back_from,
            "install": claim.install, "reason": claim.reason,
            "note": "render commit keeps this bundle at the state render wrote at knownGood while the install file "
                    "hashes to 'install'; change the install to render it again"}
    return (json.dumps(hold, indent=2, sort_keys=True) + "\n").encode()


def _joined(request: CommitFlowRequest, snap: Snapshot) -> Rendered:
    """The shards' bundles, joined and checked as one run (``flows.shards``); the version moves
    are checked against the snapshot as for a rendered commit. Shards render without the repo, so
    they cannot keep a bundle held at a rolled-back state: with a hold at the head, refuse."""
    claims, _ = snap.held()
    if claims:
        raise RefusingToProceed(
            f"the GitOps repo holds {len(claims)} bundle(s) at an earlier state ({', '.join(sorted(c.bundle for c in claims)[:5])}); "
            "a commit from shards cannot keep holds: run `render commit` without --from-shards")
    return rendered_from_shards(request.build, request.from_shards, source_commit=request.source_commit,
                                deployed=_deployed(snap))


def _reuse(snap: Snapshot):
    """``BuildRequest.reuse``: the head's files of the bundles whose bundle.json records the same
    inputs (the pipeline still checks them: their filesDigest, and every gate)."""
    def reuse(plans) -> dict:
        by_path = {p.path: p for p in plans}
        metas = snap.bundle_files(by_path, names=[layout.BUNDLE_JSON])
        same = [path for path, files in metas.items()
                if layout.BUNDLE_JSON in files and same_inputs(by_path[path], files[layout.BUNDLE_JSON])]
        found = snap.bundle_files(same)
        return {path: tuple(sorted(found[path].items())) for path in same if path in found}

    return reuse


def _deployed(snap: Snapshot):
    """``BuildRequest.deployed``: the plugin version each planned bundle runs at the head."""
    def deployed(plans) -> dict:
        metas = snap.bundle_files([p.path for p in plans], names=[layout.BUNDLE_JSON])
        versions = {path: plugin_version(files.get(layout.BUNDLE_JSON, b"")) for path, files in metas.items()}
        return {path: v for path, v in versions.items() if v}

    return deployed


def _read_output(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and "/" in rel and rel != MARKER:
            files[rel] = path.read_bytes()
    return files


def _only(files: dict, only: str, result: BuildResult, required: bool = True) -> dict:
    """The files an ``--only TENANT/PLUGIN`` run owns: that bundle, its Application and its
    environment's AppProject, in every environment that has the install."""
    owns = _owned_by(only, result)
    keep = {path: data for path, data in files.items() if owns(path)}
    if not keep and required:
        raise InputError([Problem(only, 0, "--only", "no install matches TENANT/PLUGIN in the selected environments")])
    return keep


def _owned_by(only: str, result: BuildResult):
    """Whether a repository path is one an ``--only TENANT/PLUGIN`` run owns (``_only``)."""
    folders, owned, projects = [], set(), []
    for env in result.environments:
        for p in env.bundles:
            if p.key == only:
                argocd = layout.argocd_dir(env.name)
                folders.append(p.path + "/")
                owned.add(f"{argocd}/{layout.application_file(p.names.app)}")
                projects.append(f"{argocd}/appproject-")
    prefixes = tuple(folders + projects)
    # a path in a bundle folder, or the folder itself (a kept bundle's folded folder: gitops.outline)
    return lambda path: path in owned or bool(prefixes) and (path + "/").startswith(prefixes)
