"""Stage 5: the gates every rendered bundle passes before anything is written. Never mutates.

load -> plan -> verify -> render -> **validate** -> write.  Per bundle (in the worker that
rendered it): the schema gate (kubeconform-equivalent, ``schemas.SchemaStore``) and the policy
gate (conftest-equivalent, ``policy.PolicyEngine``; a bundle whose exact bytes passed the same
policies before is not evaluated again, see ``policy_key``; fresh bundles are evaluated a few at
a time, see ``BundleGates.prefetch``). Per environment: the isolation audit (``audit``).
Violations read ``bundle/file: kind/name: rule: message``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

from renderer.pipeline.audit import bundle_facts, object_id
from renderer.pipeline.plan import fingerprint_files
from renderer.gates.policy import PolicyEngine, policy_files
from renderer.pipeline.render import files_digest
from renderer.gates.schemas import SchemaStore


# Bundles evaluated together by ``prefetch``: measured on the bench's bundles, 2 to 8 at a time cost
# about the same, a fifth less per bundle than one at a time; past that, grouping the entries by
# folder grows with the input.
POLICY_BATCH = 4


def policy_key(policy_digest: str, files: Sequence[tuple[str, bytes]]) -> str:
    """The policy verdict of a bundle depends on the policies and the bundle's bytes, nothing else."""
    return hashlib.sha256(f"{policy_digest}\0{files_digest(files, skip=())}".encode()).hexdigest()


class BundleGates:
    """The per-bundle gates, built once per worker process (schemas compile lazily, once)."""

    def __init__(self, schema_locations: Sequence[str], ignore_missing: bool, policies_dir: Path):
        self.schema_locations = tuple(schema_locations)
        self.ignore_missing = ignore_missing
        self.policies_dir = policies_dir
        self._stores: dict[str, SchemaStore] = {}
        self._policy: Optional[PolicyEngine] = None
        self._policy_digest: Optional[str] = None
        self.warnings: list[str] = []
        self._clean: set[str] = set()  # verdict keys that ``prefetch`` proved clean, until the next prefetch

    def _store(self, kubernetes_version: str) -> SchemaStore:
        store = self._stores.get(kubernetes_version)
        if store is None:
            store = self._stores[kubernetes_version] = SchemaStore(
                kubernetes_version, self.schema_locations, self.ignore_missing)
        return store

    def missing_schemas(self, kinds, kubernetes_version: str) -> list[str]:
        """Preflight: the kinds that have no schema, one line each, before any work is done."""
        if self.ignore_missing:
            return []
        store = self._store(kubernetes_version)
        return [f"schema: no schema for {kind} {api_version} (Kubernetes {kubernetes_version} built-ins and "
                f"{', '.join(self.schema_locations) or 'no --schema-location'}): give --schema-location or "
                f"RENDER_SCHEMA_LOCATION, or import the CRD with `render schemas import`"
                for api_version, kind in kinds if store.schema_source(api_version, kind) is None]

    def check_objects(self, where: str, objects: Iterable[tuple[str, dict]], kubernetes_version: str) -> list[str]:
        store = self._store(kubernetes_version)
        out = []
        for fname, obj in objects:
            for v in store.validate(obj):
                out.append(f"{where}/{fname}: {object_id(obj)}: schema: {v.path + ': ' if v.path else ''}{v.message}")
        return out

    def check(self, bundle, kubernetes_version: str, passed: frozenset = frozenset(),
              policies: bool = True, rendered: bool = False) -> tuple[list[str], str]:
        """Schema and policy gates for one bundle. ``passed`` holds the verdict keys of bundles
        whose exact bytes passed the policies before (``policy_key``): those are not evaluated
        again. ``rendered``: its objects come from this process's render (plain data), not from
        files. Returns the violations and this bundle's verdict key."""
        out = self.check_objects(bundle.path, bundle.objects, kubernetes_version)
        key = policy_key(self.policy_digest, bundle.files)
        if policies and key not in passed and not self.proved_clean(bundle, key):
            out += self.check_policies(bundle.path, bundle.objects, json.loads(dict(bundle.files)["bundle.json"]),
                                       plain=rendered)
        return out, key

    def digest(self, kubernetes_version: str, kinds: Sequence[tuple[str, str]], policies: bool = True) -> str:
        """sha256 over what decides these gates' verdicts on a bundle of ``kinds`` under
        ``kubernetes_version``: the policies and every schema (``SchemaStore.digest``)."""
        policy = self.policy_digest if policies else "no-policy-gate"
        return hashlib.sha256(f"{policy}\0{self._store(kubernetes_version).digest(kinds)}".encode()).hexdigest()

    @property
    def policy_digest(self) -> str:
        if self._policy_digest is None:
            self._policy_digest = fingerprint_files(*policy_files(self.policies_dir))
        return self._policy_digest

    def check_policies(self, where: str, objects: Sequence[tuple[str, dict]], bundle_json: Optional[dict],
                       plain: bool = False) -> list[str]:
        """The Rego policy gate (``policy.PolicyEngine``, conftest-equivalent); warnings are kept
        in ``self.warnings``."""
        if self._policy is None:
            self._policy = PolicyEngine(self.policies_dir)
        deny, warn = self._policy.check_bundle(where, objects, bundle_json, plain=plain)
        self.warnings.extend(warn)
        return deny

    def prefetch(self, bundles: Sequence, passed: frozenset = frozenset(), batch: int = POLICY_BATCH) -> None:
        """Policy verdicts of bundles rendered in this process, ``batch`` at a time
        (``PolicyEngine.all_clean``): the bundles of a clean batch are not evaluated again by
        ``check``; those of a batch with any message are, one by one, for their own messages.
        Forgets what an earlier prefetch proved."""
        self._clean = set()
        todo = [(b, key) for b in bundles if (key := policy_key(self.policy_digest, b.files)) not in passed]
        if self._policy is None and len(todo) > 1:
            self._policy = PolicyEngine(self.policies_dir)
        for i in range(0, len(todo) - 1, batch):  # a lone last bundle: check() evaluates it anyway
            group = todo[i:i + batch]
            if len(group) > 1 and self._policy.all_clean(
                    [(b.path, b.objects, json.loads(dict(b.files)["bundle.json"])) for b, _ in group], plain=True):
                self._clean.update(key for _, key in group)

    def proved_clean(self, bundle, key: Optional[str] = None) -> bool:
        """Whether the last ``prefetch`` proved this bundle's exact bytes clean."""
        return (key or policy_key(self.policy_digest, bundle.files)) in self._clean

    @staticmethod
    def facts(bundle) -> dict:
        return bundle_facts(bundle.path, bundle.objects)
