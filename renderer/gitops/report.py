"""What a GitOps commit changes, object by object, and how to show it (text, markdown, JSON).

cli -> pipeline -> ... -> write -> **gitops** (``render diff``, ``render commit``).  ``gitops``
works out which files a commit would add, change or remove and hands them here as
``FileChange``s; this module groups them by bundle, turns each file into the object it holds
(one object per file), writes a readable YAML diff per changed object, and finds the changes a
reviewer must not miss: those that widen a bundle's access (new egress, new secret, new Kafka
ACL, raised quota, budget, replicas or DB connection limit, a new image) and the objects Argo CD
will prune. Pure: no git, no network; ``write_full_report`` is the one function that writes a file.
The pull-request comment (``format_markdown``) lives in ``report_markdown``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

from renderer.core import layout
from renderer.gitops.report_access import UNLIMITED, access, label_only as _label_only, num as _num, \
    parse as _parse, widening as _widening  # noqa: F401 (access, UNLIMITED and _num: public through this module)

NOT_OBJECTS = ("kustomization.yaml", "bundle.json")
MD_WIDENING_LIMIT = 60  # call-outs shown in a pull-request comment
MD_LIMIT = 60_000  # characters of a pull-request comment (GitHub's limit is 65,536)
FOLD_LINES = 15  # markdown: diffs longer than this are folded into <details>
MAX_DIFF_LINES = 400  # per object; a longer diff is cut (the commit itself has it all)


@dataclass(frozen=True)
class FileChange:
    """One file of the GitOps repo: bytes before (None: absent) and after (None: removed)."""

    path: str
    old: Optional[bytes]
    new: Optional[bytes]


@dataclass
class ObjectDiff:
    file: str  # path in the repo
    kind: str
    name: str
    change: str  # added | changed | removed
    diff: str  # unified diff of the YAML ('' for added and removed objects)
    content: str = ""  # an added object's YAML (cut after MAX_DIFF_LINES lines)
    label_only: list[str] = field(default_factory=list)  # set when only labels changed: "key: old -> new"

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}" if self.kind else self.file.rsplit("/", 1)[-1]


@dataclass
class BundleDiff:
    path: str  # <env>/plugins/<tenant>/<plugin>
    env: str
    tenant: str
    plugin: str
    change: str  # added | changed | removed
    old_version: Optional[str]
    new_version: Optional[str]
    objects: list[ObjectDiff] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)  # what changed in bundle.json (dotted keys) and kustomization.yaml

    def counts(self) -> tuple[int, int, int]:
        return (sum(o.change == "added" for o in self.objects), sum(o.change == "changed" for o in self.objects),
                sum(o.change == "removed" for o in self.objects))


@dataclass
class Report:
    """Everything ``render diff`` shows. ``notes`` are lines such as held rollbacks;
    ``refusals`` say why ``render commit`` would refuse this change."""

    branch: str
    base: Optional[str]  # the commit compared against (None: empty repo)
    bundles: list[BundleDiff] = field(default_factory=list)
    others: list[ObjectDiff] = field(default_factory=list)  # argocd/ objects and repository files
    widening: list[str] = field(default_factory=list)
    pruned: int = 0
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    bundles_total: int = 0  # bundles in scope after the change

    @property
    def unchanged(self) -> bool:
        return not self.bundles and not self.others

    def summary(self) -> dict[str, int]:
        return {c: sum(b.change == c for b in self.bundles) for c in ("added", "changed", "removed")}


# ------------------------------------------------------------------------------------ building


def compare(changes: Iterable[FileChange], *, branch: str, base: Optional[str], notes: Iterable[str] = (),
            refusals: Iterable[str] = (), bundles_total: int = 0, detail: bool = True) -> Report:
    """Group file changes into bundles and objects. ``detail=False`` (for commit messages) skips
    object identities, YAML diffs and the widening analysis, and trusts that every change is real
    (the contents of files other than bundle.json may then be placeholders)."""
    report = Report(branch=branch, base=base, notes=list(notes), refusals=list(refusals), bundles_total=bundles_total)
    by_bundle: dict[str, list[FileChange]] = {}
    for ch in sorted(changes, key=lambda c: c.path):
        if detail and ch.old == ch.new:
            continue
        inside = layout.parse_bundle_file(ch.path)
        if inside is not None:
            by_bundle.setdefault(inside[0].path, []).append(ch)
        elif layout.parse_hold(ch.path) is not None:
            continue  # a rollback hold is reported through ``notes``
        else:
            report.others.append(_object_diff(ch, {}, detail))
    for key, files in sorted(by_bundle.items()):
        report.bundles.append(_bundle_diff(key, files, detail))
        if detail:  # right after the bundle's label check, which parsed the same files (kept by report_access)
            report.widening.extend(_widening(report.bundles[-1], files))
    report.pruned = sum(o.change == "removed" and _is_object(o.file) for b in report.bundles for o in b.objects) \
        + sum(o.change == "removed" and _is_object(o.file) for o in report.others)
    return report


def _is_object(path: str) -> bool:
    return path.endswith(".yaml") and path.rsplit("/", 1)[-1] not in NOT_OBJECTS and "/" in path


def _bundle_diff(key: str, files: list[FileChange], detail: bool) -> BundleDiff:
    env, _, tenant, plugin = key.split("/")
    meta = next((f for f in files if f.path.endswith("/bundle.json")), None)
    old_meta, new_meta = (_json(meta.old), _json(meta.new)) if meta else ({}, {})
    old_v = str(old_meta.get("pluginVersion") or "") or None
    new_v = str(new_meta.get("pluginVersion") or "") or None
    if meta and meta.old is None:
        change = "added"
    elif meta and meta.new is None:
        change = "removed"
    else:
        change = "changed"
    # bundle.json lists every object: file -> (kind, name), so most files need no parsing
    names = {}
    for m in (old_meta, new_meta):
        for o in m.get("objects") or []:
            if isinstance(o, dict) and o.get("file"):
                names[f"{key}/{o['file']}"] = (str(o.get("kind") or ""), str(o.get("name") or ""))
    bd = BundleDiff(key, env, tenant, plugin, change, old_v, new_v)
    if detail and change == "changed":
        bd.meta = (_changed_keys(old_meta, new_meta) if meta else []) + [
            "kustomization.yaml" for f in files if f.path.endswith("/kustomization.yaml")]
    for f in files:
        if f.path.rsplit("/", 1)[-1] in NOT_OBJECTS:
            continue
        bd.objects.append(_object_diff(f, names, detail))
    return bd


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (nested objects are followed; lists compare whole)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed_keys(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def _json(data: Optional[bytes]) -> dict:
    if data is None:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _object_diff(ch: FileChange, names: dict, detail: bool) -> ObjectDiff:
    change = "added" if ch.old is None else "removed" if ch.new is None else "changed"
    if not detail:
        return ObjectDiff(ch.path, "", "", change, "")
    if ch.path in names:
        kind, name = names[ch.path]
    else:
        obj = (_parse(ch.new) or _parse(ch.old)) if ch.path.endswith((".yaml", ".yml")) else None
        kind = str(obj.get("kind") or "") if obj else ""
        name = str((obj.get("metadata") or {}).get("name") or "") if obj else ""
    text = unified(ch.path, ch.old, ch.new) if change == "changed" else ""
    content = _cut(ch.new.decode("utf-8", "replace")) if change == "added" else ""
    labels = _label_only(ch.old, ch.new) if change == "changed" and ch.path.endswith((".yaml", ".yml")) else []
    return ObjectDiff(ch.path, kind, name, change, text, content, labels)


def _cut(text: str) -> str:
    lines = text.splitlines()
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"# ... {len(lines) - MAX_DIFF_LINES} more line(s); see the commit"]
    return "\n".join(lines) + "\n" if lines else ""


def unified(path: str, old: bytes, new: bytes) -> str:
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"a/{path}", f"b/{path}", n=3))
    if len(lines) > MAX_DIFF_LINES:
        cut = len(lines) - MAX_DIFF_LINES
        lines = lines[:MAX_DIFF_LINES] + [f"... {cut} more line(s); see the commit for the whole diff\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# ------------------------------------------------------------------------------------ formats


def _change_word(b: BundleDiff) -> str:
    if b.change == "changed" and not b.objects and b.meta:
        return "changed (" + meta_words(b) + ")"
    if b.change == "changed" and b.old_version and b.new_version and b.old_version != b.new_version:
        return f"changed ({b.old_version} -> {b.new_version})"
    if b.change == "added" and b.new_version:
        return f"added ({b.new_version})"
    if b.change == "removed" and b.old_version:
        return f"removed (was {b.old_version})"
    return b.change


def meta_words(b: BundleDiff) -> str:
    """What a change to bundle.json (and kustomization.yaml) alone means, for a bundle with no object changes."""
    keys = [k for k in b.meta if k != "kustomization.yaml"]
    parts = []
    if keys:
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        parts.append(f"bundle.json only: {shown}")
    if "kustomization.yaml" in b.meta:
        parts.append("kustomization.yaml")
    return "; ".join(parts)


def _where(report: Report) -> str:
    return f"{report.branch} at {report.base[:12]}" if report.base else f"{report.branch} (empty repository)"


def headline(report: Report) -> str:
    if report.unchanged:
        extra = f"; {len(report.notes)} note(s)" if report.notes else ""
        return f"unchanged: {_where(report)} already holds what the environments render{extra}"
    s = report.summary()
    parts = [f"{n} {c}" for c, n in s.items() if n]
    others = f"{len(report.others)} other file(s)" if report.others else ""
    what = ", ".join(parts + ([others] if others else []))
    return f"{len(report.bundles)} bundle(s) differ from {_where(report)}: {what}"


def format_text(report: Report) -> str:
    lines = [headline(report)]
    if report.unchanged:
        lines += [f"note: {n}" for n in report.notes]
        lines += [f"refused: {r}" for r in report.refusals]
        return "\n".join(lines) + "\n"
    for r in report.refusals:
        lines.append(f"REFUSED: {r}")
    if report.pruned:
        lines.append(f"PRUNE: {report.pruned} object(s) will be pruned")
    for w in report.widening:
        lines.append(f"WIDENS ACCESS: {w}")
    for n in report.notes:
        lines.append(f"note: {n}")
    for b in report.bundles:
        a, c, r = b.counts()
        lines.append("")
        counts = f"  (+{a} ~{c} -{r} objects)" if b.objects or not b.meta else ""
        lines.append(f"{b.path}: {_change_word(b)}{counts}")
        for o in b.objects:
            lines.append(f"  {_sign(o.change)} {o.label}")
            if o.diff:
                lines.extend("      " + line for line in o.diff.rstrip("\n").split("\n"))
    if report.others:
        lines.append("")
        lines.append("other files:")
        for o in report.others:
            lines.append(f"  {_sign(o.change)} {o.file}" + (f" ({o.label})" if o.kind else ""))
            if o.diff:
                lines.extend("      " + line for line in o.diff.rstrip("\n").split("\n"))
    return "\n".join(lines) + "\n"


def _sign(change: str) -> str:
    return {"added": "+", "changed": "~", "removed": "-"}[change]


def to_json(report: Report) -> dict:
    data = asdict(report)
    data["unchanged"] = report.unchanged
    data["summary"] = report.summary()
    for b in data["bundles"]:
        b["objects"] = [{**o, "label": f"{o['kind']}/{o['name']}" if o["kind"] else o["file"]} for o in b["objects"]]
    return data


def format_json(report: Report) -> str:
    return json.dumps(to_json(report), sort_keys=True) + "\n"
