"""What a run changes in the GitOps repo: units, the managed-repo checks, and the change itself.

Where it sits: ``gitops``, below ``publish``. A *unit* is one bundle folder (with its rollback
hold) or one other file (``core.layout.unit_of``). ``plan_commit`` turns rendered files into a
``Change`` (per unit: the slice it started from and the slice it wants), ``rebase`` re-applies a
change on a head that moved, and ``apply`` turns it into per-path edits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Optional

from renderer.core import layout
from renderer.core.errors import RefusingToProceed
from renderer.core.yamlio import YamlProblem, dump, load_document
from renderer.core.layout import GITATTRIBUTES, README, ROOT_FILES, unit_of
from renderer.core.layout import MANAGED_MARKER as MARKER
from renderer.gitops import report as diffmod
from renderer.gitops.git import BLOB, Git, Tree
from renderer.gitops.outline import is_folded, unfold
from renderer.gitops.request import Rendered
from renderer.gitops.texts import gitattributes_text, marker_text, readme_text


class Conflict(RefusingToProceed):
    """The remote head changed a unit this run also changes: a newer run may own it."""

    hint = ("nothing was changed; re-run `render commit` from the newest environments commit "
            "(a stale run must never undo a newer one)")



# ------------------------------------------------------------------------------------ managed repository


# The rules of check_managed, as a version: bump it when the check changes what it accepts (trees
# recorded as checked under another value are checked again: gitops.checked)
MANAGED_RULES = "r1"


def check_managed(tree: Tree, g: Git, display: str) -> None:
    """Refuse a repository (or parts of one) that render did not write."""
    if not tree:
        return
    if MARKER not in tree:
        raise RefusingToProceed(
            f"{display} is not empty and was not written by render (no {MARKER}); refusing to proceed: "
            f"give an empty repository, or commit an empty {MARKER} there to let render manage it")
    stray: list[str] = []
    bundles: dict[str, set[str]] = {}
    for path in tree:
        parts = path.split("/")
        if path.startswith(".render/"):
            if path != MARKER and unit_of(path) == path:
                stray.append(path)
            continue
        if len(parts) < 2 or parts[1] not in layout.RENDERED_FOLDERS or parts[0].startswith("."):
            continue
        if parts[1] == "plugins":
            if len(parts) != 5:
                stray.append(path)
            else:
                bundles.setdefault("/".join(parts[:4]), set()).add(parts[4])
        elif not layout.is_argocd_file(path):
            stray.append(path)
    kustomizations = {key: tree[f"{key}/{layout.KUSTOMIZATION}"][1] for key, names in bundles.items()
                      if layout.KUSTOMIZATION in names and layout.BUNDLE_JSON in names}
    # The kustomization render writes for a folder's files lists every one of them: when the
    # blob is that one, nothing in the folder is stray (no read). Otherwise read what it lists.
    listed_all = {key for key, oid in kustomizations.items()
                  if g.blob_id(dump(layout.kustomization(bundles[key] - set(layout.NOT_OBJECTS)))) == oid}
    blobs = g.read_blobs(oid for key, oid in kustomizations.items() if key not in listed_all)
    for key, names in sorted(bundles.items()):
        if key not in kustomizations:
            stray.extend(f"{key}/{n}" for n in sorted(names))
            continue
        if key in listed_all:
            continue
        listed = set(_kustomize_resources(blobs[kustomizations[key]]))
        stray.extend(f"{key}/{n}" for n in sorted(names - listed - set(layout.NOT_OBJECTS)))
    if stray:
        stray.sort()
        shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        raise RefusingToProceed(
            f"{display} holds files under render's folders that render did not write ({shown}); refusing to "
            "proceed: move them out of <env>/plugins/ and <env>/argocd/ (render owns those folders)")


def _kustomize_resources(data: bytes) -> list[str]:
    """What a kustomization.yaml of the repo lists (read with the input guards: it may be hostile)."""
    try:
        doc = load_document(data).data
    except (YamlProblem, RecursionError, ValueError):
        return []
    res = doc.get("resources") if isinstance(doc, dict) else None
    return [str(r) for r in res] if isinstance(res, list) else []


def check_mass_delete(before: Tree, after: Tree, share: float, allow: bool) -> list[str]:
    """Problems when a commit deletes more than ``share`` of an environment's bundles."""
    def bundles(tree: Tree) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for path, entry in tree.items():
            if not path.endswith("/" + layout.BUNDLE_JSON) and not is_folded(entry):  # one per bundle
                continue
            m = layout.parse_bundle(unit_of(path))
            if m:
                out.setdefault(m.env, set()).add(unit_of(path))
        return out

    removed = before.keys() - after.keys()  # nothing deleted (the usual run): nothing to count
    if not any(path.endswith("/" + layout.BUNDLE_JSON) or is_folded(before[path]) for path in removed):
        return []
    b, a = bundles(before), bundles(after)
    problems = []
    for env, had in sorted(b.items()):
        gone = had - a.get(env, set())
        if gone and len(gone) / len(had) > share:
            problems.append(
                f"the commit would delete {len(gone)} of {len(had)} bundles of environment {env} "
                f"({100 * len(gone) / len(had):.0f}%, more than {100 * share:.0f}%): "
                + ", ".join(sorted(gone)[:5]) + (" ..." if len(gone) > 5 else ""))
    if problems and allow:
        return []
    return problems


# ------------------------------------------------------------------------------------ planning a change


def _by_unit(tree: Tree) -> dict[str, Tree]:
    out: dict[str, Tree] = {}
    _group(tree.items(), out)
    return out


def _group(entries, out: dict[str, Tree]) -> None:
    """Add (path, entry) pairs to ``out`` by ``unit_of(path)``. A bundle folder's files all
    belong to the folder's unit (``unit_of`` decides that from the folder alone), so it is
    worked out once a folder, not once a path (250,000 paths at 10,000 bundles)."""
    by_folder: dict[str, Optional[Tree]] = {}  # folder -> its unit's slice, or None: ask per path
    for path, entry in entries:
        folder = path[:path.rfind("/") + 1]
        items = by_folder.get(folder, False)
        if items is False:
            unit = unit_of(path)
            items = by_folder[folder] = out.setdefault(unit, {}) if unit != path and folder and \
                not path.startswith(layout.HOLDS + "/") else None
        if items is None:
            out.setdefault(unit_of(path), {})[path] = entry
        else:
            items[path] = entry


@dataclass
class Change:
    """A run's change: per unit, the slice it started from and the slice it wants."""

    start: dict[str, Tree]
    want: dict[str, Tree]
    blobs: dict[str, bytes]  # object id -> bytes of every blob in ``want``
    desired_all: dict[str, Tree]  # every unit in scope, changed or not
    notes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.want


def _static_files() -> dict[str, bytes]:
    return {README: readme_text().encode(), GITATTRIBUTES: gitattributes_text().encode(),
            MARKER: marker_text().encode()}


def _in_scope(unit: str, rendered: Rendered, rendered_units) -> bool:
    """Whether a run that rendered ``rendered`` decides what ``unit`` holds (else it stays as it is)."""
    if unit in ROOT_FILES or unit in rendered_units:
        return True
    if rendered.only is not None:
        return False
    parts = unit.split("/")
    if len(parts) < 2 or parts[1] not in layout.RENDERED_FOLDERS or parts[0].startswith("."):
        return False
    return rendered.all_envs or parts[0] in rendered.envs


def opened(g: Git, tree: Tree, rendered: Rendered) -> Tree:
    """The tree to plan ``rendered`` on: ``tree`` (a head's outline, ``gitops.outline``) with the
    files of each folded bundle folder the run decides and does not keep as the tree holds it."""
    units = {unit_of(path) for path in rendered.files} | rendered.kept.keys()
    return unfold(g, tree, [u for u, e in tree.items() if is_folded(e) and rendered.kept.get(u) != {u: e}
                            and _in_scope(u, rendered, units)])


def reopened(g: Git, tree: Tree, change: "Change") -> Tree:
    """``tree`` (an outline of a head that moved) with the files of each folded folder that
    ``change`` wants otherwise, for ``rebase``."""
    return unfold(g, tree, [u for u, want in change.desired_all.items() if is_folded(tree.get(u)) and want != {u: tree[u]}])


def plan_commit(start_tree: Tree, rendered: Rendered, g: Git) -> Change:
    files = dict(rendered.files)
    files.update(_static_files())
    blobs: dict[str, bytes] = {}
    rendered_units: dict[str, Tree] = {}
    for path, data in files.items():
        oid = g.blob_id(data)
        blobs[oid] = data
        rendered_units.setdefault(unit_of(path), {})[path] = (BLOB, oid)
    for unit, files in rendered.kept.items():  # as the head holds them: no bytes needed
        rendered_units.setdefault(unit, {}).update(files)
    start_units = _by_unit(start_tree)
    notes: list[str] = list(rendered.notes)
    desired_all: dict[str, Tree] = {}
    for unit in sorted(set(start_units) | set(rendered_units)):
        if _in_scope(unit, rendered, rendered_units):  # a held bundle comes with its hold file; a released one without
            desired_all[unit] = rendered_units.get(unit, {})
    want_changed = {u: w for u, w in desired_all.items() if w != start_units.get(u, {})}
    start_changed = {u: start_units.get(u, {}) for u in want_changed}
    return Change(start_changed, want_changed, blobs, desired_all, notes)


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def rebase(change: Change, head_tree: Tree) -> Change:
    """Re-apply ``change`` on a head that moved. A unit the head changed differently is a conflict."""
    head_units = _by_unit(head_tree)
    keep: dict[str, Tree] = {}
    shared: list[str] = []
    for unit, want in change.want.items():
        now = head_units.get(unit, {})
        if now == change.start[unit]:
            keep[unit] = want
        elif now == want:
            continue  # another run already wrote exactly this
        elif layout.parse_bundle(unit) or unit in ROOT_FILES or unit.split("/")[-1].startswith("application-"):
            raise Conflict(f"{unit} was changed by another commit since this run started; refusing to overwrite it")
        else:
            shared.append(unit)
    for unit in shared:  # an environment-wide file (the AppProject): mine only if I know the whole environment
        env = unit.split("/")[0]
        merged = dict(head_units)
        merged.update(keep)
        mine = {u: w for u, w in change.desired_all.items() if u.startswith(f"{env}/plugins/") and w}
        theirs = {u: w for u, w in merged.items() if u.startswith(f"{env}/plugins/") and w}
        if mine != theirs:
            raise Conflict(f"{unit} was changed by another commit since this run started, which rendered "
                           f"environment {env} differently; refusing to overwrite it")
        keep[unit] = change.want[unit]
    return Change({u: head_units.get(u, {}) for u in keep}, keep, change.blobs, change.desired_all, change.notes)


def apply(tree: Tree, change: Change) -> tuple[Tree, dict[str, Optional[tuple[str, str]]]]:
    """The new tree and the per-path edits that make it."""
    edits: dict[str, Optional[tuple[str, str]]] = {}
    for unit, want in change.want.items():
        for path in change.start[unit]:
            if path not in want:
                edits[path] = None
        for path, entry in want.items():
            if tree.get(path) != entry:
                edits[path] = entry
    new = dict(tree)
    for path, entry in edits.items():
        if entry is None:
            new.pop(path, None)
        else:
            new[path] = entry
    return new, edits


def file_changes(g: Git, before: Tree, edits: Mapping[str, Optional[tuple[str, str]]],
                 blobs: Mapping[str, bytes], *, contents: bool = True) -> list[diffmod.FileChange]:
    """The edits as ``FileChange``s. ``contents=False`` reads only bundle.json files (what a
    commit message needs); other files then carry empty bytes for "present"."""
    def wanted(path: str) -> bool:
        return contents or path.endswith("/bundle.json")

    old = g.read_blobs(before[p][1] for p in edits if p in before and wanted(p))
    missing = [e[1] for p, e in edits.items() if e is not None and e[1] not in blobs and wanted(p)]
    new = {**g.read_blobs(missing), **blobs}
    out = []
    for path, entry in sorted(edits.items()):
        if not wanted(path):
            out.append(diffmod.FileChange(path, b"" if path in before else None, None if entry is None else b""))
            continue
        was = old[before[path][1]] if path in before else None
        now = None if entry is None else new[entry[1]]
        out.append(diffmod.FileChange(path, was, now))
    return out


