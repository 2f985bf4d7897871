"""Parsed arguments to typed requests: flags, environment variables and their defaults.

Where it sits: ``cli``, between ``cli.parser`` and ``flows``. Everything a command reads from the
process environment is read here, once (RENDER_SCHEMA_LOCATION, RENDER_CACHE_DIR,
RENDER_INSECURE_REGISTRIES, RENDER_MAX_DELETE_SHARE, RENDER_SOURCE_COMMIT).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional

from renderer.cli.parser import MAX_DELETE_ENV, share
from renderer.core.errors import UsageError
from renderer.core.layout import parse_bundle
from renderer.flows.commit import CommitFlowRequest
from renderer.flows.ledger import BundleRef
from renderer.gitops import DEFAULT_MAX_DELETE_SHARE, CommitOptions
from renderer.pipeline.build import BuildRequest
from renderer.trust.signatures import default_cache_dir


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def schema_locations(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(args.schema_location or env_list("RENDER_SCHEMA_LOCATION"))


def cache_dir(args: argparse.Namespace) -> Optional[Path]:
    if args.no_cache:
        return None
    return Path(os.environ["RENDER_CACHE_DIR"]) if os.environ.get("RENDER_CACHE_DIR") else default_cache_dir()


def _only(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    tenant, _, plugin = text.partition("/")
    if parse_bundle(f"e/plugins/{tenant}/{plugin}") is None:
        raise UsageError(f"--only takes TENANT/PLUGIN (two DNS labels), got {text!r}")
    return text


def _shards(args: argparse.Namespace) -> None:
    shard, joined = getattr(args, "shard", None), getattr(args, "from_shards", [])
    if shard is not None and joined:
        raise UsageError("--shard renders one shard, --from-shards joins them: give one of the two")
    if (shard is not None or joined) and args.only is not None:
        raise UsageError(f"--only does not go with {'--shard' if shard else '--from-shards'}: shards are whole tenants")


def build_request(args: argparse.Namespace, out: Optional[Path], progress=None) -> BuildRequest:
    _shards(args)
    return BuildRequest(
        env_dir=args.env_dir, out=out, env=args.env, only=_only(getattr(args, "only", None)),
        schema_locations=schema_locations(args), ignore_missing_schemas=args.ignore_missing_schemas,
        offline=args.offline,
        insecure_registries=frozenset(args.insecure_registry + env_list("RENDER_INSECURE_REGISTRIES")),
        cache_dir=cache_dir(args), jobs=getattr(args, "jobs", 0), progress=progress, shard=getattr(args, "shard", None),
    )


def max_share(args: argparse.Namespace) -> float:
    if args.max_delete_share is not None:
        return args.max_delete_share
    text = os.environ.get(MAX_DELETE_ENV)
    if text:
        try:
            return share(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"${MAX_DELETE_ENV}: {exc}") from None
    return DEFAULT_MAX_DELETE_SHARE


def commit_request(args: argparse.Namespace, progress=None) -> CommitFlowRequest:
    options = CommitOptions(repo=args.repo, branch=args.branch, push=getattr(args, "push", False),
                            allow_mass_delete=args.allow_mass_delete, max_delete_share=max_share(args),
                            init=getattr(args, "init", False), cache_dir=cache_dir(args))
    return CommitFlowRequest(build=build_request(args, None, progress), options=options,
                             source_commit=args.source_commit or os.environ.get("RENDER_SOURCE_COMMIT") or None,
                             keep=not args.no_cache, from_shards=tuple(getattr(args, "from_shards", ())))


def bundle_ref(args: argparse.Namespace) -> BundleRef:
    key = parse_bundle(f"{args.env}/plugins/{args.tenant}/{args.plugin}")
    if key is None:
        raise UsageError(f"PLUGIN, --tenant and --env must be DNS labels (got {args.plugin!r}, "
                         f"--tenant {args.tenant!r}, --env {args.env!r})")
    return BundleRef(args.repo, key.env, key.tenant, key.plugin, args.branch)
