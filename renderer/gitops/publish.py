"""The commit server's entry points: one ``CommitRequest`` in, one commit (or nothing) out.

Where it sits: ``gitops`` (below ``flows``; never calls up into rendering). ``open_repo`` opens
the GitOps repo without locking it; ``snapshot`` reads its head (what is deployed, which bundles
could be kept); ``commit`` then publishes the rendered files with one compare-and-swap, under the
repository lock, re-applying only this run's units when the head moved meanwhile (up to 8 times);
``diff`` says what a commit would change and never writes.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from renderer.core import layout
from renderer.core.errors import OutsideSystemError, RefusingToProceed
from renderer.core.layout import unit_of
from renderer.gitops import report as diffmod
from renderer.gitops.changes import (
    Change,
    apply,
    check_mass_delete,
    file_changes,
    opened,
    plan_commit,
    rebase,
    reopened,
)
from renderer.gitops.checked import CheckedTrees
from renderer.gitops.git import BLOB, Git, Tree
from renderer.gitops.outline import Outlines, files_id, fold, is_folded
from renderer.gitops.history import HeldClaim, held_claims
from renderer.gitops.request import Rendered
from renderer.gitops.texts import commit_message
from renderer.gitops.workspace import Workspace, is_url, require_publishable, workspace

DEFAULT_MAX_DELETE_SHARE = 0.2
DEFAULT_ATTEMPTS = 8


class Published(str, Enum):
    """Where a commit went."""

    LOCAL = "local"  # the local repository's branch (no remote involved)
    REMOTE = "remote"  # pushed to the remote
    NONE = "none"  # nothing was published (built in a private clone of a URL without --push, or unchanged)


@dataclass
class Outcome:
    """What ``commit`` and ``rollback`` did. ``commit`` is None when nothing changed."""

    repo: str
    branch: str
    base: Optional[str]
    commit: Optional[str] = None
    pushed: bool = False
    published: Published = Published.NONE
    report: Optional[diffmod.Report] = None
    notes: list[str] = field(default_factory=list)
    attempts: int = 1
    kept: int = 0  # bundles kept exactly as the head held them, vouched for by the kept index

    @property
    def unchanged(self) -> bool:
        return self.commit is None

    def to_json(self) -> dict:
        data = {"repo": self.repo, "branch": self.branch, "base": self.base, "commit": self.commit,
                "pushed": self.pushed, "published": self.published.value, "notes": self.notes,
                "attempts": self.attempts, "unchanged": self.commit is None, "keptUnchanged": self.kept}
        data["bundles"] = [{"path": b.path, "change": b.change, "from": b.old_version, "to": b.new_version}
                           for b in (self.report.bundles if self.report else [])]
        return data


@dataclass(frozen=True)
class CommitOptions:
    repo: str
    branch: Optional[str] = None
    push: bool = False
    allow_mass_delete: bool = False
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE
    attempts: int = DEFAULT_ATTEMPTS
    init: bool = False  # a missing local path becomes a new repository (else: a usage error)
    cache_dir: Optional[Path] = None  # where trees that passed check_managed are recorded (None: nowhere)


@dataclass(frozen=True)
class CommitRequest:
    """One commit's worth of rendered files, rendered against the head ``base`` of a snapshot."""

    rendered: Rendered
    base: Optional[str]
    options: CommitOptions
    tree: Optional[Tree] = None  # the snapshot's tree at ``base`` (listed again when not given)

    def base_tree(self, g: Git) -> Tree:
        return self.tree if self.tree is not None else g.tree(self.base)


@dataclass(frozen=True)
class Snapshot:
    """The GitOps branch's head as a run found it: what is deployed, and the bytes of it on demand.
    Its ``tree`` is the head's outline (``gitops.outline``): each bundle folder of files only is
    one ``(TREE, id)`` entry, the id the kept index knows it by; its files are read when asked."""

    branch: str
    base: Optional[str]
    _listing: Callable[[], Tree]  # the head's outline (waits for the listing when it was not recorded)
    _read: Callable[[Iterable[str]], dict]
    _git: Optional[Git] = None

    @cached_property
    def tree(self) -> Tree:
        return self._listing()

    def held(self) -> tuple[list[HeldClaim], list[str]]:
        """Bundles the head holds at an earlier render-written state (rollbacks, reverts), as proved
        by the branch's history, and notes on the hold claims that do not hold up."""
        return held_claims(self._git, self.base, self.tree) if self._git is not None else ([], [])

    @cached_property
    def _folded(self) -> dict[str, tuple[str, str]]:
        """{bundle folder: (TREE, id)} of the head's folded bundle folders."""
        return {path: entry for path, entry in self.tree.items() if is_folded(entry) and layout.parse_bundle(path)}

    def kept_files(self, bundle_paths: Iterable[str]) -> dict[str, Tree]:
        """``{bundle path: {bundle path: (TREE, id)}}``: a kept bundle's folder as the head holds
        it (the commit leaves it as it is). Callers only read them."""
        folded = self._folded
        return {path: {path: folded[path]} for path in bundle_paths if path in folded}

    def bundle_ids(self, bundle_paths: Iterable[str]) -> dict[str, str]:
        """``{bundle path: id of its folder}`` at the head, from the outline alone (no file is
        read), for the bundles given that the head holds as a folder of files."""
        folded = self._folded
        return {path: folded[path][1] for path in set(bundle_paths) if path in folded}

    def folder_id(self, files: Iterable[tuple[str, bytes]]) -> str:
        """The id a bundle folder of these (name, bytes) files gets (what ``bundle_ids`` lists)."""
        return files_id(self._git, files)

    def holds(self, path: str, data: bytes) -> Optional[str]:
        """The blob id of ``path`` when the head holds exactly ``data`` there as a plain file."""
        oid = self._git.blob_id(data)
        return oid if self.tree.get(path) == (BLOB, oid) else None

    def bundle_files(self, bundle_paths: Iterable[str], names: Optional[Iterable[str]] = None) -> dict[str, dict[str, bytes]]:
        """``{bundle path: {file name: bytes}}`` at the head, for the bundles given (all their files,
        or only ``names``), read in one batch."""
        only = set(names) if names is not None else None
        wanted = set(bundle_paths)
        folded = sorted(wanted & self._folded.keys())
        found = {path: [(name, e[1]) for name, e in entries.items() if not is_folded(e)]
                 for path, entries in zip(folded, self._git.folders([self._folded[p][1] for p in folded]))}
        rest = wanted - found.keys()
        if rest:  # a bundle folder the outline could not fold (one with a folder in it), or none at all
            for path, entry in self.tree.items():
                folder, _, name = path.rpartition("/")
                if folder in rest:
                    found.setdefault(folder, []).append((name, entry[1]))
        entries = {path: [(name, oid) for name, oid in items if only is None or name in only] for path, items in found.items()}
        entries = {path: items for path, items in entries.items() if items}
        blobs = self._read(oid for items in entries.values() for _, oid in items)
        return {path: {name: blobs[oid] for name, oid in sorted(items)} for path, items in entries.items()}


class Repo:
    """An opened GitOps repo (``open_repo``): snapshot its head, then commit or diff against it."""

    def __init__(self, ws: Workspace, checked: CheckedTrees, outlines: Optional[Outlines] = None,
                 check_early: bool = False):
        self.ws = ws
        self.checked = checked
        self.outlines = outlines or Outlines(None)
        # ``check_early``: the working-tree check starts with the snapshot, while the caller renders
        # (``git status`` of 250,000 files, about 1.5 s), and ``commit`` takes its answer when the
        # head is still the snapshot's and the lock found nothing half-done; else it checks again
        self._check_early = check_early
        self._early: Optional[tuple[Optional[str], Callable[[], None]]] = None

    @property
    def display(self) -> str:
        return self.ws.display

    def snapshot(self) -> Snapshot:
        ws = self.ws
        base = ws.head(ws.branch)
        if self._check_early and ws.worktree is not None:
            self._early = (base, ws.clean_later())
        tree_id = ws.g.object_id(f"{base}^{{tree}}") if base else None
        recorded = self.outlines.get(ws.g, tree_id)
        if recorded is not None:  # a head this machine listed or committed: nothing to list
            self.checked.check(ws.g, base, lambda: ws.g.tree(base), ws.display, tree_id)
            return Snapshot(ws.branch, base, lambda: recorded, ws.g.read_blobs, ws.g)
        listing = ws.g.tree_later(base)  # listed while the caller loads and plans its inputs
        self.checked.check(ws.g, base, listing, ws.display, tree_id)

        def outline() -> Tree:
            folded = fold(ws.g, listing())
            self.outlines.put(tree_id, folded)
            return folded

        return Snapshot(ws.branch, base, outline, ws.g.read_blobs, ws.g)

    def diff(self, request: CommitRequest) -> diffmod.Report:
        """What ``commit`` would change, never writing to the repository."""
        ws, opts = self.ws, request.options
        base = request.base
        tree = _planning_tree(ws.g, request.base_tree(ws.g), request.rendered)
        change = plan_commit(tree, request.rendered, ws.g)
        new, edits = apply(tree, change)
        refusals = check_mass_delete(tree, new, opts.max_delete_share, opts.allow_mass_delete)
        return diffmod.compare(file_changes(ws.g, tree, edits, change.blobs), branch=ws.branch, base=base,
                               notes=change.notes, refusals=refusals, bundles_total=_count_bundles(new))

    def commit(self, request: CommitRequest) -> Outcome:
        """One commit of the rendered files when something changed, published by compare-and-swap.
        The change is planned against the snapshot the files were rendered from; a head that moved
        since is handled by re-applying only this run's units on it."""
        ws, opts = self.ws, request.options
        with ws.locked():
            start = request.base
            start_tree = _planning_tree(ws.g, request.base_tree(ws.g), request.rendered)
            change = plan_commit(start_tree, request.rendered, ws.g)
            head = ws.head(ws.branch)
            clean: Callable[[], None] = _nothing
            if head != start or not change.empty() or ws.behind(ws.branch, head):
                # the working tree is about to change (a run that changes nothing leaves it): checked
                # while the commit is built (or since the snapshot), and awaited before it is published
                clean = self._clean_check(head)
            tree = start_tree
            if head != start:
                tree, change = _moved(ws.g, head, change, self.checked, ws.display)
            outcome = Outcome(ws.display, ws.branch, head, notes=ws.notes + change.notes,
                              kept=sum(1 for unit, files in request.rendered.kept.items()
                                       if f"{unit}/{layout.BUNDLE_JSON}" in files or is_folded(files.get(unit))))

            def message(report: diffmod.Report) -> str:
                return commit_message(report, request.rendered, outcome.notes)

            return _publish_change(ws, head, tree, change, outcome, message, opts, "render commit", self.checked,
                                   clean, self.outlines)

    def _clean_check(self, head: Optional[str]) -> Callable[[], None]:
        """The working-tree check the commit awaits: the snapshot's, when it still stands."""
        early, self._early = self._early, None
        if early is not None and early[0] == head and not self.ws.recovered:
            return early[1]
        return self.ws.clean_later()

    def finish(self) -> None:
        """Wait for a working-tree check nobody asked for (a run that changed nothing): no git
        process outlives the run."""
        early, self._early = self._early, None
        if early is not None:
            try:
                early[1]()
            except RefusingToProceed:
                pass


@contextmanager
def open_repo(options: CommitOptions, *, write: bool) -> Iterator[Repo]:
    """Open the GitOps repo (a local path, or a URL cloned into a private folder) without locking
    it: rendering happens while it is open; ``Repo.commit`` takes the lock for the write."""
    if write:
        require_publishable(options.repo, options.push, "render commit")
    remote = is_url(options.repo) or (write and options.push)
    with workspace(options.repo, options.branch, remote=remote, write=write, lock=False, init=options.init) as ws:
        repo = Repo(ws, CheckedTrees(options.cache_dir), Outlines(options.cache_dir), check_early=write)
        try:
            yield repo
        finally:
            repo.finish()


def commit(rendered: Rendered, options: CommitOptions) -> Outcome:
    """Commit already-rendered files against the branch's current head (one call: open, snapshot,
    commit)."""
    with open_repo(options, write=True) as repo:
        return repo.commit(CommitRequest(rendered, repo.snapshot().base, options))


def _nothing() -> None:
    pass


def _count_bundles(tree: Tree) -> int:
    return sum(1 for p, e in tree.items() if (p.endswith("/bundle.json") or is_folded(e)) and layout.parse_bundle(unit_of(p)))


def _planning_tree(g: Git, tree: Tree, rendered: Rendered) -> Tree:
    """The tree a change of ``rendered`` is planned on: the head's outline with the folders the
    run decides opened (``changes.opened``). A head given as a full listing is outlined first
    when the run keeps folded bundle folders (their slices must compare with the head's)."""
    if any(is_folded(e) for files in rendered.kept.values() for e in files.values()) and \
            not any(is_folded(e) for e in tree.values()):
        tree = fold(g, tree)
    return opened(g, tree, rendered)


def _moved(g: Git, head: str, change: Change, checked: CheckedTrees, display: str) -> tuple[Tree, Change]:
    """A head that moved since the change was planned: checked, outlined, and the change
    re-applied on it (``rebase``)."""
    listing = g.tree(head)
    checked.check(g, head, listing, display)
    tree = reopened(g, fold(g, listing), change)
    return tree, rebase(change, tree)


def _publish_change(ws: Workspace, base: Optional[str], tree: Tree, change: Change, outcome: Outcome,
                    message: Callable[[diffmod.Report], str], opts: CommitOptions, what: str,
                    checked: CheckedTrees, clean: Callable[[], None] = _nothing,
                    outlines: Optional[Outlines] = None) -> Outcome:
    """``clean``: waits for the working-tree check (``Workspace.clean_later``); it raises before
    anything is published or the working tree is moved."""
    target = (Published.REMOTE if ws.remote else Published.LOCAL) if ws.local else \
        (Published.REMOTE if opts.push else Published.NONE)
    for attempt in range(1, opts.attempts + 1):
        outcome.attempts = attempt
        if change.empty():
            clean()
            ws.sync_local(ws.branch, base)
            outcome.base = base
            outcome.published = Published.NONE
            return outcome
        new_tree, edits = apply(tree, change)
        problems = check_mass_delete(tree, new_tree, opts.max_delete_share, opts.allow_mass_delete)
        if problems:
            clean()  # a dirty working tree is reported first, as it always was
            raise RefusingToProceed("; ".join(problems) + "; refusing to commit: pass --allow-mass-delete if "
                                    "this is intended (nothing was written)")
        report = diffmod.compare(file_changes(ws.g, tree, edits, change.blobs, contents=False), branch=ws.branch,
                                 base=base, notes=change.notes, bundles_total=_count_bundles(new_tree), detail=False)
        ws.g.write_blobs({e[1]: change.blobs[e[1]] for e in edits.values() if e and e[1] in change.blobs}, ws.tmp)
        tree_id = ws.g.make_tree(base, edits, ws.tmp)
        new = ws.g.commit_tree(tree_id, base, message(report))
        outcome.report, outcome.base = report, base
        clean()
        if target is Published.NONE:  # a URL without --push: built and checked, never published
            outcome.commit = new
            return outcome
        if ws.publish(ws.branch, new, base, f"{what}: {ws.branch}"):
            outcome.commit, outcome.pushed, outcome.published = new, bool(ws.remote), target
            checked.add(tree_id)  # render wrote it on a tree that passed the check: the next run need not check it
            if outlines is not None:  # ... nor list it
                outlines.put(tree_id, fold(ws.g, new_tree))
            ws.sync_local(ws.branch, new)
            return outcome
        # the branch moved under us: start again from its new head, with only our own units
        time.sleep(random.uniform(0.05, 0.3) * attempt)
        ws.fetch()
        base = ws.head(ws.branch)
        tree, change = _moved(ws.g, base, change, checked, ws.display)
        if change.empty():
            outcome.notes.append(f"another run already committed everything this run would have ({base[:12]})")
    raise OutsideSystemError(f"{ws.display}: {ws.branch} kept moving; gave up after {opts.attempts} attempts "
                             "(nothing of this run was published); run it again")


