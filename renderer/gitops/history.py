"""What the branch's own history proves: render's commits, and bundles held at an earlier state.

Where it sits: ``gitops``, below ``publish`` and ``ledger``. Nothing a repository says of itself is
taken on its word: a hold file, a known-good record or a revert counts only when the branch's own
first-parent history shows that render wrote exactly those bytes in a commit of its own (its
``Renderer-Version:`` trailer). ``held_claims`` finds the bundles the head holds at an earlier
render-written state — a ``render rollback`` (its hold file) or a plain ``git revert`` of render's
commit (no hold file: found from the commits since render's last one) — and says which install
produced the state they roll back from. ``flows`` then lets ``pipeline`` gate them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from renderer.core import layout
from renderer.gitops.changes import _json
from renderer.gitops.git import Git, Tree
from renderer.gitops.outline import folder_files

RENDERER_TRAILER = "Renderer-Version: "
HISTORY_LIMIT = 200  # first-parent commits searched for render's last commit and earlier states


@dataclass(frozen=True)
class HeldClaim:
    """A bundle the head holds at bytes render wrote earlier, instead of what it renders now."""

    bundle: str  # <env>/plugins/<tenant>/<plugin>
    files: tuple  # ((name, bytes), ...) at the head
    written_at: str  # the render commit that wrote exactly these bytes
    rolled_back_from: Optional[str]  # the render commit whose state this rolls back
    install: Optional[str]  # sha256:<hex> of the install file that produced that state
    from_version: Optional[str]  # the plugin version of that state
    reason: str  # "rollback" (a hold file) or "revert" (a commit outside render)
    hold_file: Optional[bytes]  # the hold file at the head, if any


def is_render_commit(g: Git, commit: str) -> bool:
    body = g.text("log", "-1", "--format=%B", commit)
    return any(line.startswith(RENDERER_TRAILER) for line in body.splitlines())


def first_parent(g: Git, head: str, limit: int = HISTORY_LIMIT) -> list[str]:
    return g.text("rev-list", "--first-parent", f"--max-count={limit}", head).split()


def on_first_parent(g: Git, commit: str, head: str) -> bool:
    """Whether ``commit`` is on ``head``'s first-parent line (the branch's own history, not a side branch)."""
    if not g.is_ancestor(commit, head):
        return False
    return commit in set(g.text("rev-list", "--first-parent", head).split())


def install_that_wrote(g: Git, bundle: str, commit: str) -> Optional[str]:
    """The install hash render's trailers record for the state of ``bundle`` at ``commit``."""
    text = g.text("log", "--first-parent", f"--max-count={HISTORY_LIMIT}", "--format=%B", commit, "--", f"{bundle}/")
    for line in text.splitlines():
        m = re.fullmatch(rf"Bundle: {re.escape(bundle)} \S+ install=(sha256:[0-9a-f]{{64}})\s*", line)
        if m:
            return m.group(1)
    return None


def version_at(g: Git, bundle: str, commit: Optional[str]) -> Optional[str]:
    if not commit:
        return None
    oid = g.object_id(f"{commit}:{bundle}/{layout.BUNDLE_JSON}")
    version = _json(g.read_blobs([oid])[oid]).get("pluginVersion") if oid else None
    return version if isinstance(version, str) else None


def held_claims(g: Git, head: Optional[str], tree: Tree) -> tuple[list[HeldClaim], list[str]]:
    """The bundles the head holds at an earlier render-written state, and notes on the claims that
    do not hold up (a forged or stale hold file)."""
    if not head:
        return [], []
    claims: dict[str, HeldClaim] = {}
    notes: list[str] = []
    holds = {key: oid for path, (_mode, oid) in sorted(item for item in tree.items() if item[0].startswith(layout.HOLDS))
             if (key := layout.parse_hold(path)) is not None}
    blobs = g.read_blobs(holds.values())  # every hold file in one batch
    for key, oid in holds.items():
        raw = blobs[oid]
        claim, problem = _from_hold_file(g, head, tree, key, _json(raw), raw)
        if claim is not None:
            claims[key.path] = claim
        else:
            notes.append(f"ignored the hold on {key.path}: {problem}; it is rendered again")
    for claim in _reverts(g, head, tree, set(claims)):
        claims[claim.bundle] = claim
    return [claims[k] for k in sorted(claims)], notes


def _from_hold_file(g: Git, head: str, tree: Tree, key: layout.BundleKey, data: dict,
                    raw: bytes) -> tuple[Optional[HeldClaim], str]:
    good = data.get("knownGood")
    if not isinstance(good, str) or not g.rev(good):
        return None, "it names no commit of this repository"
    if not on_first_parent(g, good, head) or not is_render_commit(g, good):
        return None, f"{good[:12]} is not one of render's commits on this branch"
    bundle_tree = g.object_id(f"{head}:{key.path}")
    if not bundle_tree or g.object_id(f"{good}:{key.path}") != bundle_tree:
        return None, f"the bundle is no longer the state render wrote at {good[:12]}"
    bad = data.get("rolledBackFrom") if isinstance(data.get("rolledBackFrom"), str) else None
    if bad and not (g.rev(bad) and on_first_parent(g, bad, head)):
        bad = None
    install = data.get("install") if isinstance(data.get("install"), str) else None
    if bad:
        install = install_that_wrote(g, key.path, bad) or install
    return HeldClaim(key.path, _files(g, tree, key.path), good, bad, install, version_at(g, key.path, bad),
                     "rollback", raw), ""


def _reverts(g: Git, head: str, tree: Tree, known: set[str]) -> list[HeldClaim]:
    """Bundles that commits outside render (a plain ``git revert``) set back to an earlier state
    render wrote, since render's last commit."""
    history = first_parent(g, head)
    last = next((c for c in history if is_render_commit(g, c)), None)
    if last is None or last == head:
        return []
    changed = g.text("diff", "--name-only", "--no-renames", last, head, "--", "*/plugins/*").splitlines()
    bundles = sorted({layout.unit_of(p) for p in changed} - known)
    out = []
    for bundle in bundles:
        if layout.parse_bundle(bundle) is None:
            continue
        now = g.object_id(f"{head}:{bundle}")
        if not now or now == g.object_id(f"{last}:{bundle}"):
            continue
        earlier = g.text("log", "--first-parent", f"--max-count={HISTORY_LIMIT}", "--format=%H", last,
                         "--", f"{bundle}/").split()
        match = next((c for c in earlier if g.object_id(f"{c}:{bundle}") == now and is_render_commit(g, c)), None)
        if match is None:
            continue  # not an earlier render state: drift, which rendering reports
        out.append(HeldClaim(bundle, _files(g, tree, bundle), match, last, install_that_wrote(g, bundle, last),
                             version_at(g, bundle, last), "revert", None))
    return out


def _files(g: Git, tree: Tree, bundle: str) -> tuple:
    """(name, bytes) of the files right in a bundle folder of ``tree`` (a listing or an outline)."""
    entries = folder_files(g, tree, bundle)
    blobs = g.read_blobs(oid for _, oid in entries)
    return tuple(sorted((name, blobs[oid]) for name, oid in entries))
