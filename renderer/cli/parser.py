"""The ``render`` argument parser: every command, flag and default of CONTRACT §3.

Where it sits: ``cli`` (argv to ``argparse.Namespace``; ``cli.requests`` turns that into typed
requests). A usage error prints one line and exits 2 (with ``--format json``: one JSON document
on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from renderer import __version__
from renderer.core.errors import EXIT_MEANING, EXIT_USAGE
from renderer.gitops import DEFAULT_MAX_DELETE_SHARE
from renderer.pipeline.shards import Shard

DEFAULT_ENV_DIR = Path("environments")
DEFAULT_OUT = Path("rendered")
MAX_DELETE_ENV = "RENDER_MAX_DELETE_SHARE"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2, one line, no traceback
        if _wants_json(sys.argv[1:] if _ARGV is None else _ARGV):
            print(json.dumps({"ok": False, "exit": EXIT_USAGE, "meaning": EXIT_MEANING[EXIT_USAGE],
                              "error": message, "findings": [], "counts": {"errors": 1, "warnings": 0}},
                             sort_keys=True))
        self.print_usage(sys.stderr)
        sys.stderr.write(f"render: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


_ARGV: list[str] | None = None


def _wants_json(argv: list[str]) -> bool:
    return "--format=json" in argv or any(a == "--format" and b == "json" for a, b in zip(argv, argv[1:]))


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _from_shards(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-shards", nargs="+", type=Path, default=[], metavar="DIR",
                   help="join these `render build --shard I/N` outputs (all N of them) instead of rendering")


def _formats(p: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    p.add_argument("--format", choices=choices, default="text", help="output format: " + ", ".join(choices))


def _gates(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema-location", action="append", default=[], metavar="DIR_OR_URL",
                   help="custom-resource schemas, kubeconform layout (repeatable; default $RENDER_SCHEMA_LOCATION)")
    p.add_argument("--ignore-missing-schemas", action="store_true", help="accept kinds that have no schema")


def _rendering(p: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json")) -> None:
    p.add_argument("env_dir", nargs="?", type=Path, default=DEFAULT_ENV_DIR, metavar="ENV_DIR",
                   help="the environments repo's root (default ./environments)")
    p.add_argument("--env", help="only this environment")
    p.add_argument("--only", metavar="TENANT/PLUGIN", help="only this bundle")
    _formats(p, formats)
    _gates(p)
    p.add_argument("--offline", action="store_true", help="verify signatures from signature.json only")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="use plain HTTP for this registry (repeatable; also $RENDER_INSECURE_REGISTRIES)")
    p.add_argument("--no-cache", action="store_true",
                   help="ignore the caches (verified signatures, policy verdicts) and render unchanged bundles again")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _repo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, metavar="GITOPS", help="the GitOps repo: a local path or a git URL")
    p.add_argument("--branch", metavar="B", help="branch to write (default: the remote's default branch, or main)")


def _deletes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-mass-delete", action="store_true",
                   help="allow a commit that deletes more than --max-delete-share of an environment's bundles")
    p.add_argument("--max-delete-share", type=share, default=None, metavar="FRACTION",
                   help=f"largest share of an environment's bundles one commit may delete (default "
                        f"${MAX_DELETE_ENV} or {DEFAULT_MAX_DELETE_SHARE})")


def _bundle(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("plugin", metavar="PLUGIN", nargs="?" if optional else None)
    p.add_argument("--tenant", required=not optional, metavar="ID")
    p.add_argument("--env", required=True, metavar="E")
    _repo(p)
    _formats(p)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="render", description="Render plugin installs into isolated namespace bundles.")
    p.add_argument("--version", action="version", version=f"render {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    b = sub.add_parser("build", help="render and validate into a folder")
    _rendering(b)
    b.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically)")
    b.add_argument("--shard", type=shard, default=None, metavar="I/N",
                   help="render only shard I of N (whole tenants, by a stable hash) and its facts file")
    _from_shards(b)

    c = sub.add_parser("commit", help="render, validate, and commit the bundles to the GitOps repo")
    _rendering(c)
    _repo(c)
    c.add_argument("--push", action="store_true", help="publish the commit to the remote (origin for a local path)")
    c.add_argument("--init", action="store_true", help="create the GitOps repo when --repo is a missing or empty folder")
    _from_shards(c)
    c.add_argument("--source-commit", metavar="SHA",
                   help="the environments repo's commit, for the trailer (default $RENDER_SOURCE_COMMIT)")
    _deletes(c)

    d = sub.add_parser("diff", help="what `render commit` would change, object by object; never writes")
    _rendering(d, ("text", "markdown", "json"))
    _repo(d)
    d.add_argument("--output", type=Path, metavar="FILE",
                   help="also write the whole diff, nothing cut, to FILE (.md markdown, .json JSON, else text): "
                        "the build artifact a capped PR comment points to")
    _deletes(d)
    d.add_argument("--source-commit", metavar="SHA", help="the environments repo's commit (default $RENDER_SOURCE_COMMIT)")

    m = sub.add_parser("mark-good", help="record a bundle's state at a commit as known good (or, with --from-argocd, "
                                         "every bundle Argo CD reports Synced and Healthy there)")
    _bundle(m, optional=True)
    m.add_argument("--commit", metavar="SHA", help="the commit whose state is known good (default: the branch head)")
    m.add_argument("--push", action="store_true",
                   help="for a local path: publish the record to origin too (a URL always publishes)")
    m.add_argument("--from-argocd", action="store_true",
                   help="record every bundle of --env whose Argo CD Application is Synced and Healthy at the "
                        "commit, with a Succeeded last sync (leave out PLUGIN and --tenant)")
    m.add_argument("--kubeconfig", metavar="PATH",
                   help="with --from-argocd: the kubeconfig (default $KUBECONFIG, ~/.kube/config, else the pod's "
                        "service account)")
    m.add_argument("--context", metavar="C", help="with --from-argocd: the kubeconfig context (default: current)")
    m.add_argument("--argocd-namespace", metavar="NS",
                   help="with --from-argocd: where the Applications live (default: the namespace of the "
                        "environment's rendered Applications at the commit)")

    r = sub.add_parser("rollback", help="restore a bundle's last known-good state as a new commit")
    _bundle(r)
    r.add_argument("--push", action="store_true", help="publish the rollback commit to the remote")
    r.add_argument("--environments", type=Path, default=DEFAULT_ENV_DIR, metavar="ENV_DIR", dest="env_dir",
                   help="the environments repo (default ./environments): the restored state is checked against "
                        "its catalog (signatures, the migration contract) and every gate")
    _gates(r)
    r.add_argument("--offline", action="store_true", help="verify signatures from signature.json only")
    r.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="use plain HTTP for this registry (repeatable; also $RENDER_INSECURE_REGISTRIES)")
    r.add_argument("--no-cache", action="store_true", help="ignore the signature cache")

    v = sub.add_parser("validate", help="schema, policy and isolation gates on a folder of rendered bundles")
    v.add_argument("folder", type=Path, metavar="DIR")
    v.add_argument("--kubernetes-version", default=None, help="built-in schemas of this Kubernetes version (default 1.33)")
    _formats(v)
    _gates(v)

    sc = sub.add_parser("schemas", help="schema tools")
    sc_sub = sc.add_subparsers(dest="schemas_command", parser_class=_Parser, required=True)
    imp = sc_sub.add_parser("import", help="convert CustomResourceDefinitions into kubeconform-layout schemas")
    imp.add_argument("crds", nargs="+", type=Path, metavar="CRD_FILE")
    imp.add_argument("--to", type=Path, required=True, metavar="DIR")
    imp.add_argument("--versions", default=None, help="comma-separated versions to write (default: every served one)")
    _formats(imp)
    __import__("renderer.cli.migrations_cmd", fromlist=["register"]).register(sub)  # migrations check
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    global _ARGV
    _ARGV = argv
    try:
        return parser().parse_args(argv)
    finally:
        _ARGV = None
