"""The known-good ledger and rollbacks.

Where it sits: ``gitops``, beside ``publish``. The ledger is the branch ``render-known-good`` of
the GitOps repo: one JSON file per bundle (``<env>/<tenant>/<plugin>.json``) naming the commit and
the bundle's tree. A rollback restores that tree as a new commit and writes a hold
(``.render/holds/<env>/<tenant>/<plugin>.json``) naming the install file's sha256 that produced
the bad version; ``render commit`` keeps the rolled-back bundle while that install is unchanged.
"""

from __future__ import annotations

import json
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from renderer import __version__
from renderer.core import layout
from renderer.core.errors import OutsideSystemError, RefusingToProceed
from renderer.core.layout import HOLDS, README, unit_of
from renderer.gitops import report as diffmod
from renderer.gitops.changes import Change, _by_unit, _json, check_managed
from renderer.gitops.git import BLOB, Tree
from renderer.gitops.history import install_that_wrote, is_render_commit, on_first_parent, version_at
from renderer.gitops.checked import CheckedTrees
from renderer.gitops.publish import DEFAULT_ATTEMPTS, CommitOptions, Outcome, Published, _publish_change
from renderer.gitops.texts import ledger_readme
from renderer.gitops.workspace import LEDGER_BRANCH, Workspace, is_url, require_publishable, workspace


@dataclass(frozen=True)
class KnownGood:
    env: str
    tenant: str
    plugin: str
    commit: str
    tree: str
    branch: str
    ledger_commit: Optional[str] = None

    @property
    def bundle(self) -> str:
        return layout.bundle_path(self.env, self.tenant, self.plugin)

    def to_json(self) -> dict:
        return {"bundle": self.bundle, "commit": self.commit, "tree": self.tree, "branch": self.branch,
                "ledgerCommit": self.ledger_commit}


# ------------------------------------------------------------------------------------ known-good ledger


def _ledger_head(ws: Workspace) -> Optional[str]:
    return ws.head(LEDGER_BRANCH)


def read_known_good(ws: Workspace, bundle: str) -> Optional[KnownGood]:
    for head in dict.fromkeys(h for h in (_ledger_head(ws), ws.local_head(LEDGER_BRANCH)) if h):
        oid = ws.g.object_id(f"{head}:{layout.parse_bundle(bundle).ledger}")
        if not oid:
            continue
        data = _json(ws.g.read_blobs([oid])[oid])
        env, _, tenant, plugin = bundle.split("/")
        if data.get("commit") and data.get("tree"):
            return KnownGood(env, tenant, plugin, str(data["commit"]), str(data["tree"]), str(data.get("branch", "")),
                             head)
    return None


def commit_on_branch(ws: Workspace, commit_ish: Optional[str]) -> str:
    """The full id of ``commit_ish`` (default: the branch head), which must be on the branch."""
    head = ws.head(ws.branch)
    if head is None:
        raise RefusingToProceed(f"{ws.display} has no commits on {ws.branch}; nothing can be known good yet")
    sha = ws.g.rev(commit_ish) if commit_ish else head
    if sha is None:
        raise RefusingToProceed(f"--commit {commit_ish}: no such commit in {ws.display}")
    if not ws.g.is_ancestor(sha, head):
        raise RefusingToProceed(f"commit {sha[:12]} is not on {ws.branch} of {ws.display}; refusing to record it")
    return sha


def mark_good(repo: str, env: str, tenant: str, plugin: str, *, commit_ish: Optional[str] = None,
              branch: Optional[str] = None, push: bool = False, attempts: int = DEFAULT_ATTEMPTS) -> tuple[KnownGood, bool]:
    """Record that the bundle's state at ``commit_ish`` (default: the branch head) is known good.
    Returns the record and whether a new ledger entry was written."""
    bundle = layout.bundle_path(env, tenant, plugin)
    url = is_url(repo)
    with workspace(repo, branch, remote=url or push, write=True) as ws:
        sha = commit_on_branch(ws, commit_ish)
        tree = ws.g.object_id(f"{sha}:{bundle}")
        if not tree or ws.g.text("cat-file", "-t", tree) != "tree":
            raise RefusingToProceed(f"{bundle} does not exist at {sha[:12]} on {ws.branch}; nothing to record")
        entry = (json.dumps({"branch": ws.branch, "bundle": bundle, "commit": sha, "tree": tree},
                            indent=2, sort_keys=True) + "\n").encode()
        message = (f"known-good: {bundle} at {sha[:12]}\n\n"
                   f"{bundle} as of {sha} on {ws.branch} is known good (synced and healthy).\n"
                   f"`render rollback {plugin} --tenant {tenant} --env {env}` restores it.\n\n"
                   f"Bundle: {bundle}\nKnown-Good: {sha}\nBranch: {ws.branch}\nRenderer-Version: {__version__}\n")
        for attempt in range(1, attempts + 1):
            base = _ledger_head(ws)
            tree_now = ws.g.tree(base)
            edits: dict[str, Optional[tuple[str, str]]] = {}
            files = {layout.parse_bundle(bundle).ledger: entry, README: ledger_readme().encode()}
            blobs = {}
            for path, data in files.items():
                oid = ws.g.blob_id(data)
                blobs[oid] = data
                if tree_now.get(path) != (BLOB, oid):
                    edits[path] = (BLOB, oid)
            if layout.parse_bundle(bundle).ledger not in edits:
                ws.sync_local(LEDGER_BRANCH, base)
                return KnownGood(env, tenant, plugin, sha, tree, ws.branch, base), False
            ws.g.write_blobs(blobs, ws.tmp)
            new = ws.g.commit_tree(ws.g.make_tree(base, edits, ws.tmp), base, message)
            if ws.publish(LEDGER_BRANCH, new, base, f"render mark-good: {bundle}"):
                ws.sync_local(LEDGER_BRANCH, new)
                return KnownGood(env, tenant, plugin, sha, tree, ws.branch, new), True
            time.sleep(random.uniform(0.05, 0.3) * attempt)
            ws.fetch()
        raise OutsideSystemError(f"{ws.display}: {LEDGER_BRANCH} kept moving; gave up after {attempts} attempts")


def known_good(repo: str, env: str, tenant: str, plugin: str, branch: Optional[str] = None) -> Optional[KnownGood]:
    with workspace(repo, branch, remote=is_url(repo), write=False) as ws:
        return read_known_good(ws, layout.bundle_path(env, tenant, plugin))


# ------------------------------------------------------------------------------------ rollback


@dataclass
class RollbackPlan:
    """A rollback prepared under the repository lock: what it restores, for ``flows`` to gate
    (every gate, the image's signature, the migration contract) before ``commit()`` publishes it."""

    bundle: str
    good: KnownGood
    files: tuple  # ((name, bytes), ...): the bundle folder as it was at the known-good commit
    from_version: Optional[str]  # the version at the head (what is rolled back from)
    to_version: Optional[str]  # the version restored
    commit: Callable[[], Outcome]


@contextmanager
def prepare_rollback(repo: str, env: str, tenant: str, plugin: str, *, branch: Optional[str] = None,
                     push: bool = False, attempts: int = DEFAULT_ATTEMPTS) -> Iterator[RollbackPlan]:
    """Restore the bundle's folder from its last known-good state, as a new commit that holds. The
    known-good record is a claim: it must name one of render's commits on the branch's own first-
    parent history, holding exactly the recorded tree. Yields None when there is nothing to do."""
    require_publishable(repo, push, "render rollback")
    bundle = layout.bundle_path(env, tenant, plugin)
    url = is_url(repo)
    with workspace(repo, branch, remote=url or push, write=True) as ws:
        ws.require_clean()
        base = ws.head(ws.branch)
        tree = ws.g.tree(base)
        check_managed(tree, ws.g, ws.display)
        good = read_known_good(ws, bundle)
        if good is None:
            raise RefusingToProceed(
                f"no known-good state is recorded for {bundle} in {ws.display}; nothing was changed "
                f"(record one with `render mark-good {plugin} --tenant {tenant} --env {env} --repo ...` once a "
                "version is synced and healthy)")
        if not ws.g.rev(good.commit) or ws.g.object_id(f"{good.commit}:{bundle}") != good.tree:
            raise RefusingToProceed(f"the known-good record of {bundle} names {good.commit[:12]}, which "
                                    f"{ws.display} does not hold with that bundle; nothing was changed")
        if not base or not on_first_parent(ws.g, good.commit, base) or not is_render_commit(ws.g, good.commit):
            raise RefusingToProceed(
                f"the known-good record of {bundle} names {good.commit[:12]}, which is not one of render's commits "
                f"on {ws.branch}'s own history; refusing to restore it (a record is a claim, not proof)")
        units = _by_unit(tree)
        current = units.get(bundle, {})
        if f"{bundle}/bundle.json" not in current:
            raise RefusingToProceed(
                f"{bundle} is not in {ws.branch} (its install was removed?); a rollback restores an earlier "
                "version of an existing bundle: re-add the install to bring it back")
        good_tree = {p: e for p, e in ws.g.tree(good.commit).items() if unit_of(p) == bundle and not
                     p.startswith(HOLDS)}
        if {p: e for p, e in current.items() if not p.startswith(HOLDS)} == good_tree:
            outcome = Outcome(ws.display, ws.branch, base, published=Published.NONE)
            outcome.notes.append(f"{bundle} is already at its known-good state {good.commit[:12]}; nothing to do")
            ws.sync_local(ws.branch, base)
            yield RollbackPlan(bundle, good, (), None, None, lambda: outcome)
            return
        install = install_that_wrote(ws.g, bundle, base) or _held_install(ws, tree, base, bundle)[0]
        hold = {"bundle": bundle, "knownGood": good.commit, "rolledBackFrom": base, "install": install,
                "reason": "rollback",
                "note": "render commit keeps this bundle as rolled back while the install file hashes to 'install'; "
                        "change the install to render it again, or git revert the rollback commit"}
        hold_bytes = (json.dumps(hold, indent=2, sort_keys=True) + "\n").encode()
        hold_id = ws.g.blob_id(hold_bytes)
        want = dict(good_tree)
        want[layout.parse_bundle(bundle).hold] = (BLOB, hold_id)
        change = Change({bundle: current}, {bundle: want}, {hold_id: hold_bytes}, {bundle: want})
        outcome = Outcome(ws.display, ws.branch, base, notes=list(ws.notes))
        outcome.notes.append(f"rolled back {bundle} to its known-good state {good.commit[:12]}; render commit keeps "
                             "it while the install file is unchanged")

        def message(report: diffmod.Report) -> str:
            version = next((f" ({b.old_version} -> {b.new_version})" for b in report.bundles
                            if b.old_version and b.new_version and b.old_version != b.new_version), "")
            return (f"render: roll back {bundle} to known-good {good.commit[:12]}{version}\n\n"
                    f"Restores {bundle}/ exactly as it was at {good.commit}, its last state marked known good.\n"
                    "Other bundles are untouched. render commit keeps this rollback while the install file is\n"
                    "unchanged and renders the bundle again once it changes. Undo with `git revert` of this commit.\n\n"
                    f"Rollback: {bundle}\nKnown-Good: {good.commit}\nRolled-Back-From: {base}\n"
                    f"Renderer-Version: {__version__}\n"
                    f"Bundle: {bundle} rolled-back" + (f" install={install}" if install else "") + "\n")

        def commit() -> Outcome:
            return _publish_change(ws, base, tree, change, outcome, message,
                                   CommitOptions(repo, push=push, attempts=attempts, allow_mass_delete=True),
                                   "render rollback", CheckedTrees(None))

        blobs = ws.g.read_blobs(oid for _m, oid in good_tree.values())
        files = tuple(sorted((p.rsplit("/", 1)[1], blobs[oid]) for p, (_m, oid) in good_tree.items()))
        yield RollbackPlan(bundle, good, files, version_at(ws.g, bundle, base), version_at(ws.g, bundle, good.commit),
                           commit)


def rollback(repo: str, env: str, tenant: str, plugin: str, *, branch: Optional[str] = None, push: bool = False,
             attempts: int = DEFAULT_ATTEMPTS) -> Outcome:
    """A rollback with no gates (``flows.ledger.rollback`` gates it): for tests of the git side."""
    with prepare_rollback(repo, env, tenant, plugin, branch=branch, push=push, attempts=attempts) as plan:
        return plan.commit()


def _held_install(ws: Workspace, tree: Tree, head: Optional[str], bundle: str) -> tuple[Optional[str], Optional[str]]:
    """The install file hash (and input digest) that produced the bundle now at ``head``."""
    digest = None
    meta = tree.get(f"{bundle}/bundle.json")
    if meta:
        digest = _json(ws.g.read_blobs([meta[1]])[meta[1]]).get("inputDigest")
    hold = tree.get(layout.parse_bundle(bundle).hold)
    if hold:
        held = _json(ws.g.read_blobs([hold[1]])[hold[1]])
        if held.get("install"):
            return str(held["install"]), digest
    if head:
        text = ws.g.text("log", "-n", "50", "--format=%B", head, "--", f"{bundle}/")
        for line in text.splitlines():
            m = re.match(rf"^Bundle: {re.escape(bundle)} \S+ install=(sha256:[0-9a-f]{{64}})\s*$", line)
            if m:
                return m.group(1), digest
    return None, digest


