"""Stage 5: the gates every rendered bundle passes before anything is written. Never mutates.

load -> plan -> verify -> render -> **validate** -> write.  Per bundle (in the worker that
rendered it): the schema gate (kubeconform-equivalent, ``schemas.SchemaStore``). Per
environment (in the parent, over small per-bundle facts): the isolation audit, which sees
what no single-object check can: two bundles claiming the same namespace, Vault prefix,
KafkaUser, consumer-group prefix, DB role or (database, schema).
Violations read ``bundle/file: kind/name: rule: message``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from .schemas import SchemaStore


def _id(obj: dict) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


class BundleGates:
    """The per-bundle gates, built once per worker process (schemas compile lazily, once)."""

    def __init__(self, schema_locations: Sequence[str], ignore_missing: bool, policies_dir: Path):
        self.schema_locations = tuple(schema_locations)
        self.ignore_missing = ignore_missing
        self.policies_dir = policies_dir
        self._stores: dict[str, SchemaStore] = {}

    def _store(self, kubernetes_version: str) -> SchemaStore:
        store = self._stores.get(kubernetes_version)
        if store is None:
            store = self._stores[kubernetes_version] = SchemaStore(
                kubernetes_version, self.schema_locations, self.ignore_missing)
        return store

    def check_objects(self, where: str, objects: Iterable[tuple[str, dict]], kubernetes_version: str) -> list[str]:
        store = self._store(kubernetes_version)
        out = []
        for fname, obj in objects:
            for v in store.validate(obj):
                out.append(f"{where}/{fname}: {_id(obj)}: schema: {v.path + ': ' if v.path else ''}{v.message}")
        return out

    def check(self, bundle, kubernetes_version: str) -> list[str]:
        return self.check_objects(bundle.path, bundle.objects, kubernetes_version)

    @staticmethod
    def facts(bundle) -> dict:
        """What the environment-wide audit needs of one bundle: who owns which shared names."""
        claims: list[tuple[str, str]] = []
        for _, obj in bundle.objects:
            meta = obj.get("metadata") or {}
            kind = obj.get("kind")
            if kind == "Namespace":
                claims.append(("namespace", meta.get("name", "")))
            elif kind == "KafkaUser":
                claims.append(("KafkaUser", f"{meta.get('namespace', '')}/{meta.get('name', '')}"))
                for acl in ((obj.get("spec") or {}).get("authorization") or {}).get("acls") or []:
                    res = acl.get("resource") or {}
                    if res.get("type") == "group":
                        claims.append(("consumer-group prefix", res.get("name", "")))
            elif kind == "ExternalSecret":
                for item in (obj.get("spec") or {}).get("data") or []:
                    key = (item.get("remoteRef") or {}).get("key", "")
                    claims.append(("Vault prefix", "/".join(key.split("/")[:4]) + "/"))
            elif kind == "Role" and obj.get("apiVersion", "").startswith("postgresql.sql"):
                claims.append(("DB role", (meta.get("annotations") or {}).get("crossplane.io/external-name", "")))
            elif kind == "Schema" and obj.get("apiVersion", "").startswith("postgresql.sql"):
                spec = (obj.get("spec") or {}).get("forProvider") or {}
                schema = (meta.get("annotations") or {}).get("crossplane.io/external-name", meta.get("name", ""))
                claims.append(("(database, schema)", f"{spec.get('database', '')}.{schema}"))
        return {"bundle": bundle.path, "claims": sorted(set(claims))}


class EnvironmentAudit:
    """Isolation across all bundles of one environment."""

    def __init__(self, env: str, facts: list[dict], argocd: Sequence[tuple[str, dict]]):
        self.env = env
        self.facts = facts
        self.argocd = argocd

    def violations(self) -> list[str]:
        owners: dict[tuple[str, str], list[str]] = defaultdict(list)
        for fact in self.facts:
            for claim in fact["claims"]:
                owners[tuple(claim)].append(fact["bundle"])
        out = []
        for (what, value), bundles in sorted(owners.items()):
            if len(bundles) > 1:
                bundles = sorted(bundles)
                out.append(f"{bundles[0]}: {what}/{value}: isolation-shared-{what.split()[0].strip('(,').lower()}: "
                           f"also claimed by {', '.join(bundles[1:])}")
        return out
