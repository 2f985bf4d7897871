"""What a GitOps commit changes, object by object, and how to show it (text, markdown, JSON).

cli -> pipeline -> ... -> write -> **gitops** (``render diff``, ``render commit``).  ``gitops``
works out which files a commit would add, change or remove and hands them here as
``FileChange``s; this module groups them by bundle, turns each file into the object it holds
(one object per file), writes a readable YAML diff per changed object, and finds the changes a
reviewer must not miss: those that widen a bundle's access (new egress, new secret, new Kafka
ACL, raised quota or budget, a new image) and the objects Argo CD will prune. Pure: no git, no
files, no network.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Iterable, Optional

import yaml

from renderer.core import quantity

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the project pins a LibYAML build
    from yaml import SafeLoader as _Loader

BUNDLE_RE = re.compile(r"^(?P<env>[^/]+)/plugins/(?P<tenant>[^/]+)/(?P<plugin>[^/]+)/(?P<file>[^/]+)$")
HOLD_RE = re.compile(r"^\.render/holds/(?P<env>[^/]+)/(?P<tenant>[^/]+)/(?P<plugin>[^/]+)\.json$")
NOT_OBJECTS = ("kustomization.yaml", "bundle.json")
ACCESS_KINDS = {"NetworkPolicy", "ExternalSecret", "KafkaUser", "ResourceQuota", "ConfigMap", "HorizontalPodAutoscaler",
                "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
MD_WIDENING_LIMIT = 60  # call-outs shown in a pull-request comment
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
        m = BUNDLE_RE.match(ch.path)
        if m:
            key = f"{m['env']}/plugins/{m['tenant']}/{m['plugin']}"
            by_bundle.setdefault(key, []).append(ch)
        elif HOLD_RE.match(ch.path):
            continue  # a rollback hold is reported through ``notes``
        else:
            report.others.append(_object_diff(ch, {}, detail))
    for key, files in sorted(by_bundle.items()):
        report.bundles.append(_bundle_diff(key, files, detail))
    if detail:
        for b in report.bundles:
            report.widening.extend(_widening(b, by_bundle[b.path]))
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
    for f in files:
        if f.path.rsplit("/", 1)[-1] in NOT_OBJECTS:
            continue
        bd.objects.append(_object_diff(f, names, detail))
    return bd


def _json(data: Optional[bytes]) -> dict:
    if data is None:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse(data: Optional[bytes]):
    if data is None:
        return None
    try:
        obj = yaml.load(data, Loader=_Loader)
    except yaml.YAMLError:
        return None
    return obj if isinstance(obj, dict) else None


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
    return ObjectDiff(ch.path, kind, name, change, text)


def unified(path: str, old: bytes, new: bytes) -> str:
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"a/{path}", f"b/{path}", n=3))
    if len(lines) > MAX_DIFF_LINES:
        cut = len(lines) - MAX_DIFF_LINES
        lines = lines[:MAX_DIFF_LINES] + [f"... {cut} more line(s); see the commit for the whole diff\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# ------------------------------------------------------------------------------------ widening


def access(objects: Iterable[dict]) -> tuple[dict[str, set[str]], dict[str, Fraction]]:
    """What a bundle's objects grant: named grants by category, and limits by name."""
    grants: dict[str, set[str]] = {"egress": set(), "secret": set(), "kafka ACL": set(), "image": set()}
    limits: dict[str, Fraction] = {}
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        if kind == "NetworkPolicy":
            for rule in spec.get("egress") or []:
                peers = rule.get("to") or [{"anywhere": True}]
                ports = rule.get("ports") or [{"port": "any"}]
                for peer in peers:
                    for port in ports:
                        grants["egress"].add(f"{_peer(peer)} port {port.get('port', 'any')}/{port.get('protocol', 'TCP')}")
        elif kind == "ExternalSecret":
            for item in spec.get("data") or []:
                grants["secret"].add(str((item.get("remoteRef") or {}).get("key")))
            for item in spec.get("dataFrom") or []:
                grants["secret"].add(json.dumps(item, sort_keys=True))
        elif kind == "KafkaUser":
            for acl in (spec.get("authorization") or {}).get("acls") or []:
                res = acl.get("resource") or {}
                ops = acl.get("operations") or ([acl["operation"]] if acl.get("operation") else [])
                for op in ops:
                    grants["kafka ACL"].add(f"{op} {res.get('type')} {res.get('name')} ({res.get('patternType', 'literal')})")
        elif kind == "ResourceQuota":
            for key, value in (spec.get("hard") or {}).items():
                _limit(limits, f"quota {key}", value)
        elif kind == "ConfigMap" and ((obj.get("metadata") or {}).get("labels") or {}).get(
                "plugins.adapstory.io/budget") == "true":
            for key, value in (obj.get("data") or {}).items():
                _limit(limits, f"budget {key}", value)
        elif kind == "HorizontalPodAutoscaler" and "maxReplicas" in spec:
            _limit(limits, "replicas max", spec["maxReplicas"])
        pod = _pod_spec(obj)
        if pod:
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                if c.get("image"):
                    grants["image"].add(str(c["image"]))
    return grants, limits


def _peer(peer: dict) -> str:
    if "ipBlock" in peer:
        return f"ipBlock {peer['ipBlock'].get('cidr')}"
    ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted(pods.items()))
    if peer.get("anywhere"):
        return "anywhere"
    return f"{ns or 'any namespace'}/{labels or 'any pod'}"


def _limit(limits: dict, key: str, value) -> None:
    try:
        limits[key] = quantity.parse(value if isinstance(value, (str, int)) else str(value))
    except ValueError:
        pass


def _pod_spec(obj: dict) -> Optional[dict]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def _widening(bundle: BundleDiff, files: list[FileChange]) -> list[str]:
    if bundle.change == "removed":
        return []
    kinds = {o.file: o.kind for o in bundle.objects}
    relevant = [f for f in files if kinds.get(f.path, "") in ACCESS_KINDS or (f.path in kinds and not kinds[f.path])]
    old_objs = [o for f in relevant if (o := _parse(f.old))]
    new_objs = [o for f in relevant if (o := _parse(f.new))]
    # unchanged objects grant the same before and after, so the changed files alone decide
    old_g, old_l = access(old_objs)
    new_g, new_l = access(new_objs)
    out = []
    who = f"{bundle.env}/{bundle.tenant}/{bundle.plugin}"
    for category in ("egress", "secret", "kafka ACL", "image"):
        for item in sorted(new_g[category] - old_g[category]):
            out.append(f"{who}: new {category}: {item}")
    for key in sorted(new_l):
        before = old_l.get(key)
        if before is None and bundle.change == "added":
            continue  # a new bundle's quotas are not "raised"; its grants above say what it gets
        if before is None or new_l[key] > before:
            out.append(f"{who}: raised {key}: {_num(before)} -> {_num(new_l[key])}")
    return out


def _num(value: Optional[Fraction]) -> str:
    if value is None:
        return "none"
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


# ------------------------------------------------------------------------------------ formats


def _change_word(b: BundleDiff) -> str:
    if b.change == "changed" and b.old_version and b.new_version and b.old_version != b.new_version:
        return f"changed ({b.old_version} -> {b.new_version})"
    if b.change == "added" and b.new_version:
        return f"added ({b.new_version})"
    if b.change == "removed" and b.old_version:
        return f"removed (was {b.old_version})"
    return b.change


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
        lines.append(f"{b.path}: {_change_word(b)}  (+{a} ~{c} -{r} objects)")
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


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def format_markdown(report: Report) -> str:
    if report.unchanged:
        return f"**render diff**: {_md(headline(report))}\n" + "".join(f"\n> {_md(n)}\n" for n in report.notes)
    out = [f"### render diff: {_md(headline(report))}", ""]
    callouts = []
    for r in report.refusals:
        callouts.append(f"> :no_entry: **`render commit` will refuse this:** {_md(r)}")
    if report.pruned:
        removed = [b.path for b in report.bundles if b.change == "removed"]
        tail = f" ({len(removed)} bundle(s) removed: {', '.join(f'`{p}`' for p in removed)})" if removed else ""
        callouts.append(f"> :warning: **{report.pruned} objects will be pruned**{tail}")
    if report.widening:
        callouts.append("> :warning: **Changes that widen access:**")
        callouts.extend(f"> - {_md(w)}" for w in report.widening[:MD_WIDENING_LIMIT])
        if len(report.widening) > MD_WIDENING_LIMIT:
            callouts.append(f"> - ... and {len(report.widening) - MD_WIDENING_LIMIT} more (`render diff` lists them all)")
    for n in report.notes:
        callouts.append(f"> :information_source: {_md(n)}")
    for i, c in enumerate(callouts):
        if i and not c.startswith("> -"):
            out.append(">")
        out.append(c)
    if callouts:
        out.append("")
    out += ["| env | tenant | plugin | change | objects added | changed | removed |",
            "|---|---|---|---|---:|---:|---:|"]
    for b in report.bundles:
        a, c, r = b.counts()
        out.append(f"| {_md(b.env)} | {_md(b.tenant)} | {_md(b.plugin)} | {_md(_change_word(b))} | {a} | {c} | {r} |")
    out.append("")
    for b in report.bundles:
        out.append(f"#### `{b.path}` {_md(_change_word(b))}")
        out.append("")
        for o in b.objects:
            out.extend(_md_object(o))
        out.append("")
    if report.others:
        out.append("#### Other files")
        out.append("")
        for o in report.others:
            out.extend(_md_object(o, show_path=True))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _md_object(o: ObjectDiff, show_path: bool = False) -> list[str]:
    title = f"`{o.file}`" + (f" (`{o.label}`)" if o.kind else "") if show_path else f"`{o.label}`"
    head = f"- {o.change} {title}"
    if not o.diff:
        return [head]
    fence = "```"
    while fence in o.diff:
        fence += "`"
    body = [f"{fence}diff", o.diff.rstrip("\n"), fence]
    n = o.diff.count("\n")
    if n > FOLD_LINES:
        return [head, "", f"<details><summary>{n} diff lines</summary>", "", *body, "", "</details>", ""]
    return [head, "", *body, ""]


def to_json(report: Report) -> dict:
    data = asdict(report)
    data["unchanged"] = report.unchanged
    data["summary"] = report.summary()
    for b in data["bundles"]:
        b["objects"] = [{**o, "label": f"{o['kind']}/{o['name']}" if o["kind"] else o["file"]} for o in b["objects"]]
    return data


def format_json(report: Report) -> str:
    return json.dumps(to_json(report), sort_keys=True) + "\n"
