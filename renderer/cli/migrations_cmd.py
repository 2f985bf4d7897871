"""`render migrations check PATH --postgres-url URL`: flags to ``flows.migrations_check.check``, results to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from renderer.core.errors import EXIT_OK, EXIT_REJECTED, RenderError


def register(subparsers) -> None:
    """Add ``migrations check`` to the ``render`` parser's subcommands."""
    m = subparsers.add_parser("migrations", help="migration tools")
    m_sub = m.add_subparsers(dest="migrations_command", parser_class=type(m), required=True)
    c = m_sub.add_parser(
        "check",
        help="run the migration gate, then apply the migrations as each plugin's own role on a PostgreSQL server",
        description="Checks every catalog version's migrations with the migration gate (docs/migrations.md); "
                    "if they pass, creates a throwaway database with each plugin's role and schema as the rendered "
                    "bundles describe them, applies the migrations in order as that role, and drops it all again.",
    )
    c.add_argument("target", type=Path, metavar="CATALOG_PLUGIN_DIR_OR_ENV_DIR")
    c.add_argument("--postgres-url", default=os.environ.get("RENDER_POSTGRES_URL"),
                   help="a role that may create databases and roles (default $RENDER_POSTGRES_URL), "
                        "e.g. postgresql://admin:secret@127.0.0.1:5432/postgres")
    c.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    c.set_defaults(func=run)


def _finding(f, base: Path) -> dict:
    try:
        path = f.path.relative_to(base).as_posix()
    except ValueError:
        path = f.path.as_posix()
    return {"path": path, "line": f.line, "rule": f.rule, "message": f.message}


def run(args: argparse.Namespace) -> int:
    from renderer.core.errors import UsageError
    from renderer.flows.migrations_check import check

    base = args.target if (args.target / "catalog").is_dir() else args.target.parent
    try:
        if not args.postgres_url:
            raise UsageError("--postgres-url (or $RENDER_POSTGRES_URL) is required")
        report = check(args.target, args.postgres_url)
    except RenderError as exc:
        if args.format == "json":
            print(json.dumps({"ok": False, "error": str(exc), "findings": [], "applied": []}))
        else:
            for line in exc.lines():
                sys.stderr.write(line + "\n")
        return exc.exit_code
    findings = [_finding(f, base) for f in report.findings]
    applied = [{"plugin": r.plugin, "version": r.version, "file": r.file, "ok": r.failure is None,
                **({"line": r.failure.line, "sqlstate": r.failure.sqlstate, "error": r.failure.message}
                   if r.failure else {})} for r in report.applied]
    if args.format == "json":
        print(json.dumps({"ok": report.ok, "findings": findings, "applied": applied}, indent=2, sort_keys=True))
    else:
        for f in findings:
            sys.stderr.write(f"{f['path']}:{f['line']}: migrations: {f['rule']}: {f['message']}\n")
        for r in applied:
            if r["ok"]:
                print(f"applied {r['file']} ({r['plugin']} {r['version']})")
            else:
                sys.stderr.write(f"{r['file']}:{r['line']}: postgresql: {r['sqlstate']}: {r['error']}\n")
        if report.findings:
            sys.stderr.write(f"error: {len(findings)} migration problem(s); nothing was sent to the server\n")
        elif not report.ok:
            sys.stderr.write("error: a migration failed on the server as the plugin's role\n")
        else:
            print(f"{len(applied)} migration file(s) applied as the plugins' own roles")
    return EXIT_OK if report.ok else EXIT_REJECTED
