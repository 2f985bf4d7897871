"""The ``render commit | diff | mark-good | rollback`` commands: flags in, ``gitops`` calls out.

cli -> **gitops_cli** -> pipeline (render and validate into a temporary folder) -> gitops.
``register(subparsers, common)`` adds the four subcommands to the ``render`` parser (``common`` is
the CLI's function that adds ENV_DIR and the rendering flags); each command function takes the
parsed ``args`` and returns an exit code (errors are ``RenderError``s, which the CLI prints).
No git here: ``gitops`` is the only module that touches it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from renderer.gitops import report as diffmod
from renderer.gitops import repo as gitops
from renderer.core.errors import EXIT_OK, InputError, Problem, UsageError

MAX_DELETE_ENV = "RENDER_MAX_DELETE_SHARE"
LIST_LIMIT = 25  # bundles listed in text output


def register(subparsers, common) -> None:
    c = subparsers.add_parser("commit", help="render, validate, and commit the bundles to the GitOps repo")
    common(c)
    _repo(c)
    c.add_argument("--push", action="store_true", help="publish the commit to the remote (origin for a local path)")
    c.add_argument("--source-commit", metavar="SHA",
                   help="the environments repo's commit, for the trailer (default $RENDER_SOURCE_COMMIT)")
    _deletes(c)
    c.set_defaults(func=cmd_commit)

    d = subparsers.add_parser("diff", help="what `render commit` would change, object by object; never writes")
    common(d)
    _formats(d, ("text", "markdown", "json"))
    _repo(d)
    _deletes(d)
    d.set_defaults(func=cmd_diff)

    m = subparsers.add_parser("mark-good", help="record a bundle's state at a commit as known good")
    _bundle(m)
    m.add_argument("--commit", metavar="SHA", help="the commit whose state is known good (default: the branch head)")
    m.add_argument("--push", action="store_true",
                   help="for a local path: publish the record to origin too (a URL always publishes)")
    m.set_defaults(func=cmd_mark_good)

    r = subparsers.add_parser("rollback", help="restore a bundle's last known-good state as a new commit")
    _bundle(r)
    r.add_argument("--push", action="store_true", help="publish the rollback commit to the remote")
    r.set_defaults(func=cmd_rollback)


def _repo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, metavar="GITOPS", help="the GitOps repo: a local path or a git URL")
    p.add_argument("--branch", metavar="B", help="branch to write (default: the remote's default branch, or main)")


def _deletes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-mass-delete", action="store_true",
                   help="allow a commit that deletes more than --max-delete-share of an environment's bundles")
    p.add_argument("--max-delete-share", type=_share, default=None, metavar="FRACTION",
                   help=f"largest share of an environment's bundles one commit may delete (default "
                        f"${MAX_DELETE_ENV} or {gitops.DEFAULT_MAX_DELETE_SHARE})")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def _formats(p: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    for action in p._actions:  # the common flags define --format text|json; diff adds markdown
        if action.dest == "format":
            action.choices = choices
            action.help = "output format: " + ", ".join(choices)
            return
    p.add_argument("--format", choices=choices, default="text", help="output format")


def _bundle(p: argparse.ArgumentParser) -> None:
    p.add_argument("plugin", metavar="PLUGIN")
    p.add_argument("--tenant", required=True, metavar="ID")
    p.add_argument("--env", required=True, metavar="E")
    _repo(p)
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")


# ------------------------------------------------------------------------------------ rendering


def render(args: argparse.Namespace, reuse=None, deployed=None) -> gitops.Rendered:
    """Render and validate into a temporary folder (all or nothing) and read it back. ``reuse``
    (from ``gitops``) supplies bundles unchanged at the repo's head, by inputDigest."""
    from renderer.cli.main import _request
    from renderer.pipeline.build import build

    with tempfile.TemporaryDirectory(prefix="render-gitops-out-") as tmp:
        out = Path(tmp) / "out"
        request = _request(args, out)
        only = request.only
        # the whole environment is rendered even with --only: its argocd/ folder (the AppProject)
        # depends on every bundle, and rendering is cheap; --only limits what is written
        result = build(dataclasses.replace(request, only=None, reuse=None if args.no_cache else reuse,
                                           deployed=deployed))
        files = gitops.Rendered.from_folder(out, envs=()).files
    envs = tuple(e.name for e in result.environments)
    installs = {}
    for env in result.environments:
        for b in env.bundles:
            path = args.env_dir / env.name / "tenants" / b.tenant / "plugins" / f"{b.plugin}.yaml"
            installs[b.path] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    if only is not None:
        files = _only(files, only, [e.name for e in result.environments if any(b.key == only for b in e.bundles)])
    source = getattr(args, "source_commit", None) or os.environ.get("RENDER_SOURCE_COMMIT") or None
    return gitops.Rendered(files=files, envs=envs, all_envs=args.env is None, only=only, installs=installs,
                           source_commit=source)


def _only(files: dict, only: str, envs: list[str]) -> dict:
    if not envs:
        raise InputError([Problem(only, 0, "--only", "no install matches TENANT/PLUGIN in the selected environments")])
    import yaml

    keep = {}
    for env in envs:
        bundle = f"{env}/plugins/{only}"
        for path, data in files.items():
            if path.startswith(bundle + "/"):
                keep[path] = data
            elif path.startswith(f"{env}/argocd/appproject-"):
                keep[path] = data
            elif path.startswith(f"{env}/argocd/application-"):
                doc = yaml.safe_load(data) or {}
                if ((doc.get("spec") or {}).get("source") or {}).get("path") == bundle:
                    keep[path] = data
    return keep


def _max_share(args: argparse.Namespace) -> float:
    if args.max_delete_share is not None:
        return args.max_delete_share
    text = os.environ.get(MAX_DELETE_ENV)
    if text:
        try:
            return _share(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"${MAX_DELETE_ENV}: {exc}") from None
    return gitops.DEFAULT_MAX_DELETE_SHARE


def _options(args: argparse.Namespace, push: bool = False) -> gitops.CommitOptions:
    return gitops.CommitOptions(repo=args.repo, branch=args.branch, push=push,
                                allow_mass_delete=args.allow_mass_delete, max_delete_share=_max_share(args))


# ------------------------------------------------------------------------------------ commands


def cmd_commit(args: argparse.Namespace) -> int:
    outcome = gitops.commit(lambda reuse, deployed: render(args, reuse, deployed), _options(args, push=args.push))
    _print_outcome(outcome, args.format, "commit")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    report = gitops.diff(lambda reuse, deployed: render(args, reuse, deployed), _options(args))
    fmt = args.format
    text = diffmod.format_json(report) if fmt == "json" else diffmod.format_markdown(report) if fmt == "markdown" \
        else diffmod.format_text(report)
    sys.stdout.write(text)
    return EXIT_OK


def cmd_mark_good(args: argparse.Namespace) -> int:
    record, written = gitops.mark_good(args.repo, args.env, args.tenant, args.plugin, commit_ish=args.commit,
                                       branch=args.branch, push=args.push)
    published = gitops.is_url(args.repo) or args.push
    if args.format == "json":
        print(json.dumps({**record.to_json(), "recorded": written, "published": bool(published)}, sort_keys=True))
        return EXIT_OK
    where = "published to the remote" if published else "recorded locally"
    if written:
        print(f"known good: {record.bundle} at {record.commit[:12]} ({where}, {gitops.LEDGER_BRANCH} "
              f"{(record.ledger_commit or '')[:12]})")
    else:
        print(f"known good: {record.bundle} at {record.commit[:12]} was already recorded; nothing changed")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    outcome = gitops.rollback(args.repo, args.env, args.tenant, args.plugin, branch=args.branch, push=args.push)
    _print_outcome(outcome, args.format, "rollback")
    return EXIT_OK


def _print_outcome(outcome: gitops.Outcome, fmt: str, what: str) -> None:
    if fmt == "json":
        print(json.dumps(outcome.to_json(), sort_keys=True))
        return
    where = f"{outcome.branch} of {outcome.repo}"
    if outcome.commit is None:
        base = f" at {outcome.base[:12]}" if outcome.base else ""
        print(f"unchanged: {where}{base} already holds this; no commit made")
    else:
        report = outcome.report
        counts = ", ".join(f"{n} {c}" for c, n in report.summary().items() if n) if report else ""
        print(f"committed {outcome.commit[:12]} on {where}" + (f": {counts}" if counts else ""))
        if report:
            for b in report.bundles[:LIST_LIMIT]:
                print(f"  {b.change:8} {b.path}{gitops.versions(b)}")
            if len(report.bundles) > LIST_LIMIT:
                print(f"  ... and {len(report.bundles) - LIST_LIMIT} more (the commit message names them all)")
        if outcome.published == "temporary clone":
            print("not published: the commit was made in a temporary clone of the URL; add --push to publish it")
        elif outcome.pushed:
            print(f"pushed to {outcome.repo}" + (f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""))
    for note in outcome.notes:
        print(f"note: {note}")
