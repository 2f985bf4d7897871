"""The gates a rollback passes before anything is committed: what it restores is input too.

Where it sits: ``pipeline`` (called by ``flows.ledger`` between ``gitops.prepare_rollback`` and
its commit). The restored files must be render's own (their filesDigest), pass the schema and
policy gates, carry an image whose signature verifies again against the publisher's key, and the
move from the running version to the restored one must not cross a migration contract step.
"""

from __future__ import annotations

import dataclasses

from renderer.core.errors import InputError, Problem, RefusingToProceed, ValidationFailed
from renderer.core.layout import BundleKey
from renderer.core.resources import POLICIES
from renderer.gates import migrations
from renderer.pipeline.build import BuildRequest, checked_input
from renderer.pipeline.holds import _verify
from renderer.pipeline.render import Bundle
from renderer.pipeline.validate import BundleGates


def check_restored(request: BuildRequest, key: BundleKey, files: tuple, from_version: str | None,
                   to_version: str | None) -> None:
    """Raise when restoring ``files`` as bundle ``key`` would break a gate, a signature or the
    migration contract; return quietly when it is safe."""
    inputs, envs, _ = checked_input(dataclasses.replace(request, env=key.env, only=None), {})
    plan = next((p for e in envs for p in e.bundles if p.path == key.path), None)
    if plan is None:
        raise RefusingToProceed(f"{key.path} has no install in {request.env_dir} any more; refusing to restore it")
    where = key.install
    if from_version and to_version and from_version != to_version:
        crossing = migrations.unsafe_move(plan.catalog_dir.parent, from_version, to_version)
        if crossing:
            raise InputError([Problem(where, 0, "spec.version", f"rolling {key.path} back from {from_version} to "
                                      f"{to_version} is refused: {crossing}")])
    if to_version:
        problem = _verify(inputs, plan, to_version, offline=request.offline,
                          insecure_registries=request.insecure_registries, cache_dir=request.cache_dir)
        if problem:
            raise InputError([Problem(where, 0, "spec.version", f"the known-good state of {key.path} ({to_version}): "
                                      f"{problem}")])
    bundle = Bundle.from_files(plan, files)
    if bundle is None:
        raise ValidationFailed([f"{key.path}/bundle.json: -: rollback: the known-good files are not the ones render "
                                "wrote (filesDigest); refusing to restore them"])
    gates = BundleGates(request.schema_locations, request.ignore_missing_schemas, POLICIES)
    violations, _ = gates.check(bundle, plan.platform.kubernetesVersion)
    if violations:
        raise ValidationFailed(violations)
