"""`render migrations check PATH --postgres-url URL`: flags to ``flows.migrations_check.check``, its
report to text or JSON; failures are raised as ``RenderError``s, which ``cli.main`` turns into
exit codes (1 rejected, 2 usage, 3 the server failed)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from renderer.core.errors import Finding, InputError, Problem, Rejected, UsageError


def register(subparsers) -> None:
    """Add ``migrations check`` to the ``render`` parser's subcommands (dispatch: ``args.func``)."""
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
    c.add_argument("--format", choices=("text", "json"), default="text", help="output format: text, json")
    c.set_defaults(func=run)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def run(args: argparse.Namespace) -> None:
    """Print what was applied; raise ``InputError`` (the gate), ``Rejected`` (the server refused a
    migration), ``UsageError`` or ``OutsideSystemError``."""
    if not args.postgres_url:
        raise UsageError("--postgres-url (or $RENDER_POSTGRES_URL) is required")
    from renderer.flows.migrations_check import check  # PostgreSQL's parser: loaded for this command only

    base = args.target if (args.target / "catalog").is_dir() else args.target.parent
    report = check(args.target, args.postgres_url)
    if report.findings:
        raise InputError([Problem(_relative(f.path, base), f.line, f"migrations: {f.rule}", f.message)
                          for f in report.findings])
    failed = [r for r in report.applied if r.failure]
    if failed:
        raise Rejected("a migration failed on the server as the plugin's own role",
                       hint="fix the statement named above; the check's database and roles were dropped",
                       findings=[Finding(r.file, r.failure.line, "", f"postgresql: {r.failure.sqlstate}",
                                         r.failure.message) for r in failed])
    applied = [{"plugin": r.plugin, "version": r.version, "file": r.file} for r in report.applied]
    if args.format == "json":
        print(json.dumps({"ok": True, "findings": [], "applied": applied}, indent=2, sort_keys=True))
        return
    for r in applied:
        print(f"applied {r['file']} ({r['plugin']} {r['version']})")
    print(f"{len(applied)} migration file(s) applied as the plugins' own roles")
