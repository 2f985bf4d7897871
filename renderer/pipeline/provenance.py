"""What an earlier output holds: the bundles that can be kept, and the versions that run now.

Where it sits: ``cli`` and ``gitops`` hand these to ``pipeline`` (``BuildRequest.reuse`` and
``BuildRequest.deployed``); ``pipeline`` keeps a bundle whose bundle.json records the same
inputDigest and signature and whose files match its filesDigest, and refuses a version move
across a migration contract step. This module reads folders; ``gitops`` reads git trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import hashlib

from renderer.core.jsontext import pretty
from renderer.pipeline import stores
from renderer.pipeline.plan import BundlePlan


def files_of(source) -> tuple:
    """A kept bundle's files: given as they are, or read from its folder."""
    if isinstance(source, Path):
        try:
            return tuple(sorted((f.name, f.read_bytes()) for f in source.iterdir() if f.is_file()))
        except OSError:
            return ()
    return source


def reuse_from_folder(root: Path) -> Callable[[tuple], dict]:
    """``BuildRequest.reuse`` from a previous `render build` output: the files of each planned
    bundle whose bundle.json there records the same inputDigest and signature."""
    def reuse(plans) -> dict:
        out = {}
        for p in plans:
            folder = root / p.path
            try:
                if same_inputs(p, (folder / "bundle.json").read_bytes()):
                    out[p.path] = folder  # the worker reads the files
            except OSError:
                continue
        return out

    return reuse


def deployed_from_folder(root: Path) -> Callable[[tuple], dict]:
    """``BuildRequest.deployed`` from an earlier output: each bundle.json's pluginVersion."""
    def deployed(plans) -> dict:
        out = {}
        for p in plans:
            try:
                version = plugin_version((root / p.path / "bundle.json").read_bytes())
            except OSError:
                continue
            if version:
                out[p.path] = version
        return out

    return deployed


def plugin_version(bundle_json: bytes) -> str | None:
    """The pluginVersion a bundle.json records (None when unreadable)."""
    try:
        version = json.loads(bundle_json).get("pluginVersion")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def files_intact(files) -> bool:
    """Whether a bundle's files match the filesDigest its own bundle.json records."""
    try:
        recorded = json.loads(dict(files)["bundle.json"]).get("filesDigest")
    except (KeyError, ValueError, AttributeError, TypeError):
        return False
    return recorded == files_digest(files)


def same_inputs(plan: BundlePlan, previous_bundle_json: bytes) -> bool:
    """Whether a bundle written before came from exactly this plan's inputs and signature, so
    that its files can be kept without rendering it again."""
    try:
        doc = json.loads(previous_bundle_json)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("inputDigest") == plan.input_digest and doc.get("signature") == signature_record(plan)


def signature_record(plan: BundlePlan) -> dict | None:
    """The verified signature as bundle.json records it (None: not verified)."""
    sig = plan.signature
    return None if sig is None else {"keyFingerprint": sig.key_fingerprint, "payloadDigest": sig.payload_digest}


def files_digest(files, skip: tuple = ("bundle.json",)) -> str:
    """sha256 over a bundle's files (names and bytes), by default all but bundle.json: recorded
    in bundle.json, so a kept bundle is known to be byte for byte what render wrote for its
    inputDigest; with ``skip=()`` it keys the policy verdict cache (``validate.policy_key``)."""
    h = hashlib.sha256()
    for name, data in sorted(files):
        if name not in skip:
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def bundle_json(plan: BundlePlan, objects, digest_of_files: str) -> bytes:
    """Provenance beside the objects: only what derives from this bundle's own inputs."""
    doc = {
        "env": plan.env,
        "tenant": plan.tenant,
        "plugin": plan.plugin,
        "pluginVersion": plan.version,
        "publisher": plan.publisher,
        "image": plan.spec.image,
        "imageDigest": plan.image_digest,
        "inputDigest": plan.input_digest,
        "filesDigest": digest_of_files,
        "isolation": {  # what this bundle owns (CONTRACT §2); the policies check objects against it
            "namespace": plan.names.namespace, "vaultPrefix": plan.names.vault_prefix,
            "topicPrefix": plan.names.topic_prefix, "groupPrefix": plan.names.group_prefix,
            "database": plan.names.database, "schema": plan.names.schema, "dbRole": plan.names.db_role,
            **stores.owned(plan),
        },
        "signature": signature_record(plan),
        "objects": [{"file": f, "apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
                     "namespace": o["metadata"].get("namespace", "")} for f, o in objects],
    }
    return (pretty(doc) + "\n").encode()
