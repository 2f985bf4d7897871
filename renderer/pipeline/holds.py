"""Bundles held at an earlier state (a rollback or a revert): which stay held, and only if safe.

Where it sits: ``pipeline``, called by ``build`` before rendering (``flows`` hands in the claims
that ``gitops.history`` proved from the branch's history). A held bundle stays held while the
install that produced the state it rolled back from is unchanged; then its files are gated like a
rendered bundle (``build``), its image's signature is verified again against the publisher's key,
and holding it must not cross a migration contract step (``gates.migrations.unsafe_move``):
the older version must be able to run on the newer version's schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from renderer.core.errors import InputError, Problem, SignatureError
from renderer.core.layout import BUNDLE_JSON
from renderer.gates import migrations
from renderer.pipeline.load import Inputs
from renderer.pipeline.plan import BundlePlan
from renderer.trust import signatures


@dataclass(frozen=True)
class Held:
    files: tuple  # ((name, bytes), ...): what the head holds
    install: Optional[str]  # sha256:<hex> of the install that produced the state rolled back from
    from_version: Optional[str]  # that state's plugin version
    written_at: str  # render's commit that wrote these bytes
    reason: str  # rollback | revert


def held_version(files: tuple) -> Optional[str]:
    try:
        version = json.loads(dict(files)[BUNDLE_JSON]).get("pluginVersion")
    except (KeyError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def applicable(inputs: Inputs, plans: tuple[BundlePlan, ...], held: Mapping[str, Held], *, offline: bool,
               insecure_registries: frozenset[str], cache_dir: Optional[Path]) -> tuple[dict[str, Held], list[str]]:
    """The claims that stay held (path -> Held) and notes for the ones released. Raises
    ``InputError`` when a hold would cross a contract step or its image no longer verifies."""
    keep: dict[str, Held] = {}
    notes: list[str] = []
    problems: list[Problem] = []
    for p in plans:
        claim = held.get(p.path)
        if claim is None:
            continue
        if claim.install != f"sha256:{p.install_sha256}":
            notes.append(f"released the hold on {p.path}: its install changed since the {claim.reason}, so it is "
                         "rendered again")
            continue
        version = held_version(claim.files)
        where = p.path.split("/plugins/")[0] + f"/tenants/{p.tenant}/plugins/{p.plugin}.yaml"
        if version is None:
            problems.append(Problem(where, 0, "spec.version", f"the bundle held at {p.path} has no readable "
                                    "bundle.json; refusing to keep it"))
            continue
        crossing = migrations.unsafe_move(p.catalog_dir.parent, claim.from_version, version) \
            if claim.from_version and claim.from_version != version else None
        if crossing:
            problems.append(Problem(where, 0, "spec.version", f"the {claim.reason} of {p.path} from "
                                    f"{claim.from_version} to {version} is not allowed: {crossing}"))
            continue
        problem = _verify(inputs, p, version, offline=offline, insecure_registries=insecure_registries,
                          cache_dir=cache_dir)
        if problem:
            problems.append(Problem(where, 0, "spec.version", f"the bundle held at {p.path} ({version}): {problem}"))
            continue
        keep[p.path] = claim
    if problems:
        raise InputError(problems)
    return keep, notes


def _verify(inputs: Inputs, plan: BundlePlan, version: str, *, offline: bool, insecure_registries: frozenset[str],
            cache_dir: Optional[Path]) -> Optional[str]:
    cv = inputs.catalog.get((plan.plugin, version))
    if cv is None:
        return f"catalog/{plan.plugin}/{version}/ is gone, so its image's signature cannot be verified again"
    publisher = inputs.publishers.get(cv.plugin.model.metadata.publisher)
    if publisher is None:
        return f"its publisher {cv.plugin.model.metadata.publisher!r} is gone"
    try:
        trust = signatures.trust_from_publisher_spec(publisher.model.spec.model_dump(exclude_none=True), publisher.path)
        signatures.verify_image(cv.plugin.model.spec.image, trust, cv.signature_file, offline=offline,
                                insecure_registries=insecure_registries, cache_dir=cache_dir,
                                where=f"{cv.plugin.path}: spec.image")
    except SignatureError as exc:
        return str(exc)
    return None
