"""``render mark-good --from-argocd --env E --repo GITOPS [--commit SHA] [--kubeconfig PATH] [--context C]
[--argocd-namespace NS]``: flags in, ``flows.argocd_health`` out, the result printed. No logic here.

``add_arguments(parser)`` adds the flags to the ``mark-good`` parser and makes its PLUGIN and
``--tenant`` optional (they belong to the one-bundle form, which it still dispatches to);
``run(args)`` runs the Argo CD form and returns the exit code: 0 when it worked, even if no bundle
was healthy; 1 on a refusal; 3 when the API server or the git remote failed (``RenderError``s,
which the CLI prints).
"""

from __future__ import annotations

import argparse
import json

from renderer.core.errors import EXIT_OK, UsageError

LIST_LIMIT = 50  # bundles listed per outcome in text output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-argocd", action="store_true",
                        help="record every bundle of --env whose Argo CD Application is Synced and Healthy at the "
                             "commit, with a Succeeded last sync (leave out PLUGIN and --tenant)")
    parser.add_argument("--kubeconfig", metavar="PATH",
                        help="with --from-argocd: the kubeconfig (default $KUBECONFIG, ~/.kube/config, "
                             "else the pod's service account)")
    parser.add_argument("--context", metavar="C", help="with --from-argocd: the kubeconfig context (default: current)")
    parser.add_argument("--argocd-namespace", metavar="NS",
                        help="with --from-argocd: where the Applications live (default: the namespace of the "
                             "environment's rendered Applications at the commit, i.e. platform.yaml argocd.namespace)")
    for action in parser._actions:  # the one-bundle form's PLUGIN and --tenant: required only there
        if action.dest == "plugin" and not action.option_strings:
            action.nargs, action.required, action.default = "?", False, None
        elif action.dest == "tenant":
            action.required = False
    single = parser.get_default("func")

    def dispatch(args: argparse.Namespace) -> int:
        if args.from_argocd:
            return run(args)
        extra = [flag for flag, dest in (("--kubeconfig", "kubeconfig"), ("--context", "context"),
                                         ("--argocd-namespace", "argocd_namespace")) if getattr(args, dest, None)]
        if extra:
            raise UsageError(f"render mark-good: error: {', '.join(extra)} only go with --from-argocd")
        if not getattr(args, "plugin", None) or not getattr(args, "tenant", None):
            raise UsageError("render mark-good: error: give PLUGIN and --tenant ID, or --from-argocd")
        return single(args)

    if single is not None:
        parser.set_defaults(func=dispatch)


def run(args: argparse.Namespace) -> int:
    from renderer.cluster.argocd import KubeSettings
    from renderer.flows.argocd_health import mark_good_from_argocd

    if getattr(args, "plugin", None) or getattr(args, "tenant", None):
        raise UsageError("render mark-good: error: --from-argocd records every bundle of --env; "
                         "leave out PLUGIN and --tenant")
    result = mark_good_from_argocd(
        args.env, args.repo, commit=args.commit, branch=args.branch, push=bool(getattr(args, "push", False)),
        kube=KubeSettings(kubeconfig=args.kubeconfig, context=args.context), namespace=args.argocd_namespace)
    from renderer.gitops.repo import is_url

    published = bool(is_url(args.repo) or getattr(args, "push", False))
    if args.format == "json":
        print(json.dumps({**result.to_json(), "published": published}, sort_keys=True))
        return EXIT_OK
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
    return EXIT_OK
