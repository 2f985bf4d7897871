"""The ``render`` command line: argv to a typed request, a flow, and the result to an exit code.

Where it sits: the top layer. ``cli.parser`` reads argv, ``cli.requests`` builds the typed
request, one ``flows`` function does the work, ``cli.output`` shows the result. No logic lives
here. Exit codes (CONTRACT §3, ``core.errors``): 0 success; 1 rejected or refusing to proceed;
2 usage; 3 an outside system failed; 70 the renderer itself is broken (one line; a traceback only
with ``RENDER_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Callable, NoReturn, Optional, Sequence

from renderer.cli import output, requests
from renderer.cli.parser import DEFAULT_OUT, parse, parser
from renderer.core.errors import EXIT_OK, EXIT_USAGE, RenderError
from renderer.flows import build as build_flow
from renderer.flows import commit as commit_flow
from renderer.flows import ledger as ledger_flow
from renderer.flows import shards as shards_flow
from renderer.flows.schemas import schemas_import
from renderer.flows.validate import validate
from renderer.cli.progress import reporter

__all__ = ["main", "parser"]


def _progress(args: argparse.Namespace, label: str = "rendering"):
    return reporter(args.format, getattr(args, "quiet", False), label)


def _build(args: argparse.Namespace) -> None:
    if args.from_shards:
        request = requests.build_request(args, args.out, _progress(args, "checking shards:"))
        result = shards_flow.build_from_shards(request, args.from_shards)
    else:
        result = build_flow.build(requests.build_request(args, args.out, _progress(args)), keep=not args.no_cache)
    output.build(result, args.out, args.format)


def _validate(args: argparse.Namespace) -> None:
    count = validate(args.folder, kubernetes_version=args.kubernetes_version,
                     schema_locations=requests.schema_locations(args),
                     ignore_missing_schemas=args.ignore_missing_schemas)
    output.validated(count, args.folder, args.format)


def _commit(args: argparse.Namespace) -> None:
    label = "checking shards:" if args.from_shards else "rendering"
    output.outcome(commit_flow.commit(requests.commit_request(args, _progress(args, label))), args.format)


def _diff(args: argparse.Namespace) -> None:
    report = commit_flow.diff(requests.commit_request(args))
    if args.output is not None:
        output.write_full_diff(report, args.output)
    output.diff(report, args.format)


def _mark_good(args: argparse.Namespace) -> None:
    from renderer.cli import argocd_cmd  # the cluster client and its flow: only this command needs them

    if args.from_argocd:
        argocd_cmd.run(args)
        return
    argocd_cmd.refuse_cluster_flags(args)
    output.marked_good(ledger_flow.mark_good(requests.bundle_ref(args), commit=args.commit, push=args.push),
                       args.format)


def _rollback(args: argparse.Namespace) -> None:
    ref = requests.bundle_ref(args)
    output.outcome(ledger_flow.rollback(ref, requests.build_request(args, None), push=args.push), args.format)


def _schemas(args: argparse.Namespace) -> None:
    versions = args.versions.split(",") if args.versions else None
    output.schemas_written(schemas_import(args.crds, args.to, versions=versions), args.format)


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "build": _build, "validate": _validate, "commit": _commit, "diff": _diff, "mark-good": _mark_good,
    "rollback": _rollback, "schemas": _schemas,
    "migrations": lambda args: args.func(args),  # renderer/cli/migrations_cmd.py
}


# A run allocates millions of small objects that live until it ends (plans, parsed inputs, trees):
# with CPython's default threshold (700) the cyclic collector walks them over and over, about a
# third of the time of planning 10,000 bundles. Collect young objects every 100,000 instead.
GC_THRESHOLD = (100_000, 50, 100)


def main(argv: Optional[Sequence[str]] = None) -> int:
    gc.set_threshold(*GC_THRESHOLD)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        # `render` alone: the demo -- render ./environments into ./rendered
        argv = ["build", *argv, "--out", str(DEFAULT_OUT)] if "--out" not in argv else ["build", *argv]
    args = parse(argv)
    fmt = "json" if getattr(args, "format", "text") == "json" else "text"
    command = COMMANDS.get(args.command or "")
    if command is None:
        parser().print_help()
        return EXIT_USAGE
    try:
        command(args)
        return EXIT_OK
    except RenderError as exc:
        return output.error(exc, fmt)
    except KeyboardInterrupt:
        sys.stderr.write("render: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:  # the reader went away (`render ... | head`): the work is done, the rest unread
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush does not fail again
        return EXIT_OK
    except Exception as exc:  # a bug: say so in one line; RENDER_DEBUG=1 shows the traceback
        if os.environ.get("RENDER_DEBUG"):
            raise
        return output.internal_error(exc, fmt)


def run() -> NoReturn:
    """The ``render`` console script (and ``python -m renderer.cli``): ``main``, then exit without
    the interpreter's final full collection. A commit of 10,000 bundles leaves a few million
    objects alive to the end (caches, modules), and that last pass over them cost 0.2 s of every
    command; they are left to the process's end instead (``gc.freeze``). In-process callers (the
    tests) call ``main``."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
