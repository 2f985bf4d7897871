"""`render validate DIR`: every gate on a folder of rendered bundles, from any producer.

Where it sits: ``pipeline`` (called by ``flows.validate``), beside ``build``: the same gates
(``validate.BundleGates``, ``validate.EnvironmentAudit``) on files read from disk instead of
rendered. It accepts only what render writes: each bundle's kustomization.yaml is exactly the
list of its object files (no patches, generators or remote bases that ``kubectl kustomize`` would
apply), every file in ``<env>/argocd/`` and ``<env>/bootstrap/`` is schema-checked, and each
Application points at a bundle of the folder and that bundle's namespace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from renderer.core import layout
from renderer.core.errors import ValidationFailed
from renderer.core.yamlio import parse_rendered
from renderer.core.resources import POLICIES
from renderer.pipeline.audit import EnvironmentAudit, bundle_facts
from renderer.pipeline.validate import BundleGates

DEFAULT_KUBERNETES_VERSION = "1.33"


def validate_folder(folder: Path, *, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
                    schema_locations: tuple[str, ...] = (), ignore_missing_schemas: bool = False) -> int:
    """The number of bundles checked; raises ``ValidationFailed`` listing every violation.
    Each bundle's identity comes from its bundle.json and labels (the folder must agree)."""
    gates = BundleGates(schema_locations, ignore_missing_schemas, POLICIES)
    violations: list[str] = []
    count = 0
    if not folder.is_dir():
        raise ValidationFailed([f"{folder}: not a folder of rendered bundles"])
    envs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / layout.PLUGINS).is_dir())
    if not envs:
        raise ValidationFailed([f"{folder}: no <env>/plugins/<tenant>/<plugin>/ bundles found"])
    for env_dir in envs:
        facts, namespaces = [], {}
        for bundle_dir in sorted(p for p in env_dir.glob("plugins/*/*") if p.is_dir()):
            rel = bundle_dir.relative_to(folder).as_posix()
            objects, problems = _read_objects(bundle_dir, rel)
            violations += problems + _kustomization(bundle_dir, rel, [name for name, _ in objects])
            meta = _bundle_json(bundle_dir, rel, violations)
            tenant, plugin = bundle_dir.parent.name, bundle_dir.name
            for key, want in (("env", env_dir.name), ("tenant", tenant), ("plugin", plugin)):
                if meta and meta.get(key) != want:
                    violations.append(f"{rel}/bundle.json: -: identity: {key} is {meta.get(key)!r}, the folder says {want!r}")
            violations += gates.check_objects(rel, objects, kubernetes_version)
            violations += gates.check_policies(rel, objects, meta or None)
            facts.append(bundle_facts(rel, objects))
            namespaces[rel] = next((o["metadata"].get("name") for _, o in objects if o.get("kind") == "Namespace"), None)
            count += 1
        project = None
        for sub in (layout.ARGOCD, layout.BOOTSTRAP):
            rel = f"{env_dir.name}/{sub}"
            objs, problems = _read_objects(env_dir / sub, rel)
            violations += problems + gates.check_objects(rel, objs, kubernetes_version)
            for name, obj in objs:
                if not layout.is_argocd_file(f"{rel}/{name}"):
                    violations.append(f"{rel}/{name}: -: layout: render writes only application-*.yaml and "
                                      "appproject-*.yaml here")
                elif obj.get("kind") == "AppProject":
                    project = (name, obj)
                elif obj.get("kind") == "Application" and sub == layout.ARGOCD:
                    violations += _application(rel, name, obj, namespaces)
        violations += EnvironmentAudit(env_dir.name, facts, project).violations()
    if violations:
        raise ValidationFailed(sorted(violations))
    return count


def _bundle_json(bundle_dir: Path, rel: str, violations: list[str]) -> dict:
    try:
        meta = json.loads((bundle_dir / layout.BUNDLE_JSON).read_text())
    except (OSError, ValueError) as exc:
        violations.append(f"{rel}/{layout.BUNDLE_JSON}: -: identity: unreadable bundle.json ({exc})")
        return {}
    if not isinstance(meta, dict):
        violations.append(f"{rel}/{layout.BUNDLE_JSON}: -: identity: bundle.json is not an object")
        return {}
    return meta


def _kustomization(bundle_dir: Path, rel: str, object_files: list[str]) -> list[str]:
    """Exactly what render writes: apiVersion, kind and ``resources`` listing the object files."""
    where = f"{rel}/{layout.KUSTOMIZATION}: Kustomization/-"
    try:
        docs = parse_rendered((bundle_dir / layout.KUSTOMIZATION).read_text())
    except OSError:
        return [f"{where}: kustomization: missing (render writes one per bundle)"]
    except Exception as exc:  # any parse failure is a finding about the file, not a crash
        return [f"{where}: kustomization: {str(exc).splitlines()[0]}"]
    want = layout.kustomization(object_files)
    if len(docs) != 1 or docs[0] != want:
        got = docs[0] if len(docs) == 1 and isinstance(docs[0], dict) else {}
        extra = sorted(set(got) - set(want))
        detail = f"fields {', '.join(extra)} are not allowed" if extra else "resources must list exactly the bundle's files"
        return [f"{where}: kustomization: only `resources:` listing the bundle's object files is accepted ({detail})"]
    return []


def _application(rel: str, name: str, app: dict, namespaces: dict[str, Optional[str]]) -> list[str]:
    spec = app.get("spec") or {}
    path = (spec.get("source") or {}).get("path")
    where = f"{rel}/{name}: Application/{(app.get('metadata') or {}).get('name', '?')}"
    if path not in namespaces:
        return [f"{where}: application-source: spec.source.path {path!r} is not a bundle of this folder"]
    dest = (spec.get("destination") or {}).get("namespace")
    if dest != namespaces[path]:
        return [f"{where}: application-destination: destination namespace {dest!r} is not the bundle's "
                f"namespace {namespaces[path]!r}"]
    return []


def _read_objects(folder: Path, rel: str) -> tuple[list, list]:
    objects, problems = [], []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        if path.name == layout.KUSTOMIZATION:
            continue
        try:
            docs = parse_rendered(path.read_text())
        except Exception as exc:  # any parse failure is a finding about that file, not a crash
            problems.append(f"{rel}/{path.name}: -: yaml: {str(exc).splitlines()[0]}")
            continue
        if len(docs) != 1 or not isinstance(docs[0], dict):
            problems.append(f"{rel}/{path.name}: -: yaml: expected exactly one object per file")
            continue
        objects.append((path.name, docs[0]))
    return objects, problems
