"""``render mark-good --from-argocd --env E --repo GITOPS [--commit SHA] [--kubeconfig PATH]
[--context C] [--argocd-namespace NS]``: flags to ``flows.argocd_health``, the result printed.

Where it sits: ``cli``. Exit 0 when it worked, even if no bundle was healthy; 1 on a refusal; 3
when the API server or the git remote failed (``RenderError``s, which ``cli.main`` prints).
"""

from __future__ import annotations

import argparse

from renderer.cli.output import emit_ok
from renderer.cluster.argocd import KubeSettings
from renderer.core.errors import UsageError
from renderer.flows.argocd_health import mark_good_from_argocd
from renderer.gitops import is_url

LIST_LIMIT = 50  # bundles listed per outcome in text output
CLUSTER_FLAGS = (("--kubeconfig", "kubeconfig"), ("--context", "context"), ("--argocd-namespace", "argocd_namespace"))


def refuse_cluster_flags(args: argparse.Namespace) -> None:
    """The one-bundle form: the cluster flags belong to --from-argocd, PLUGIN and --tenant are needed."""
    extra = [flag for flag, dest in CLUSTER_FLAGS if getattr(args, dest, None)]
    if extra:
        raise UsageError(f"render mark-good: {', '.join(extra)} only go with --from-argocd")
    if not args.plugin or not args.tenant:
        raise UsageError("render mark-good: give PLUGIN and --tenant ID, or --from-argocd")


def run(args: argparse.Namespace) -> None:
    if args.plugin or args.tenant:
        raise UsageError("render mark-good: --from-argocd records every bundle of --env; leave out PLUGIN and --tenant")
    result = mark_good_from_argocd(
        args.env, args.repo, commit=args.commit, branch=args.branch, push=bool(args.push),
        kube=KubeSettings(kubeconfig=args.kubeconfig, context=args.context), namespace=args.argocd_namespace)
    published = bool(is_url(args.repo) or args.push)
    if args.format == "json":
        emit_ok({**result.to_json(), "published": published})
        return
    where = "published to the remote" if published else "recorded locally"
    counts = (f"{len(result.recorded)} recorded, {len(result.already_recorded)} already recorded, "
              f"{len(result.skipped)} skipped")
    print(f"known good from Argo CD: {result.env} at {result.commit[:12]} on {result.branch} "
          f"(Applications in {', '.join(result.namespaces)}): {counts}" + (f" ({where})" if result.recorded else ""))
    for kind in ("recorded", "already recorded", "skipped"):
        rows = result.of(kind)
        for o in rows[:LIST_LIMIT]:
            app = f" ({o.application})" if o.application else ""
            why = f": {'; '.join(o.reasons)}" if o.reasons else ""
            print(f"  {kind:16} {o.bundle or '-'}{app}{why}")
        if len(rows) > LIST_LIMIT:
            print(f"  ... and {len(rows) - LIST_LIMIT} more {kind} (--format json lists them all)")
