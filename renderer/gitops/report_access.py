"""What rendered objects grant, and how two versions of an object differ: the analysis behind the
call-outs of ``render diff`` (``report``). Pure: no git, no files, no network."""

from __future__ import annotations

import functools
import json
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Optional

import yaml

from renderer.core import quantity

if TYPE_CHECKING:  # pragma: no cover
    from renderer.gitops.report import BundleDiff, FileChange
try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the project pins a LibYAML build
    from yaml import SafeLoader as _Loader

ACCESS_KINDS = {"NetworkPolicy", "ExternalSecret", "KafkaUser", "ResourceQuota", "ConfigMap", "HorizontalPodAutoscaler",
                "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "Role"}
UNLIMITED = float("inf")  # a limit with no ceiling (PostgreSQL's connectionLimit -1)


def parse(data: Optional[bytes]):
    """The YAML mapping in ``data`` (None if absent or not a mapping). The label check and the
    widening analysis read the same files: the last few parses are kept. Callers never mutate them."""
    return None if data is None else _parse(data)


@functools.lru_cache(maxsize=64)
def _parse(data: bytes):
    try:
        obj = yaml.load(data, Loader=_Loader)
    except yaml.YAMLError:
        return None
    return obj if isinstance(obj, dict) else None


def label_only(old: bytes, new: bytes) -> list[str]:
    """The label changes ("key: a -> b") when labels are all that differ between two objects, else []."""
    a, b = parse(old), parse(new)
    if a is None or b is None:
        return []
    la: dict[str, set] = {}
    lb: dict[str, set] = {}
    if _strip_labels(a, la) != _strip_labels(b, lb):
        return []
    out = []
    for key in sorted(set(la) | set(lb)):
        before, after = la.get(key, set()), lb.get(key, set())
        if before != after:
            show = lambda v: ", ".join(sorted(map(str, v))) or "(none)"  # noqa: E731
            out.append(f"{key}: {show(before)} -> {show(after)}")
    return out


def _strip_labels(value, found: dict):
    """A copy without any ``metadata.labels`` (the object's, a pod template's, ...); the labels go to ``found``."""
    if isinstance(value, list):
        return [_strip_labels(v, found) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "metadata" and isinstance(v, dict) and isinstance(v.get("labels"), dict):
            for lk, lv in v["labels"].items():
                found.setdefault(str(lk), set()).add(str(lv))
            v = {k: x for k, x in v.items() if k != "labels"}
        out[key] = _strip_labels(v, found)
    return out


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
        elif kind == "Role" and isinstance(spec.get("forProvider"), dict) and "connectionLimit" in spec["forProvider"]:
            value = spec["forProvider"]["connectionLimit"]  # PostgreSQL: -1 is no limit
            if isinstance(value, int) and not isinstance(value, bool):
                limits["DB connectionLimit"] = Fraction(value) if value >= 0 else UNLIMITED
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


def widening(bundle: "BundleDiff", files: list["FileChange"]) -> list[str]:
    if bundle.change == "removed":
        return []
    kinds = {o.file: o.kind for o in bundle.objects}
    relevant = [f for f in files if kinds.get(f.path, "") in ACCESS_KINDS or (f.path in kinds and not kinds[f.path])]
    old_objs = [o for f in relevant if (o := parse(f.old))]
    new_objs = [o for f in relevant if (o := parse(f.new))]
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
            out.append(f"{who}: raised {key}: {num(before)} -> {num(new_l[key])}")
    return out


def num(value: Optional[Fraction]) -> str:
    if value is None:
        return "none"
    if value == UNLIMITED:
        return "unlimited"
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
