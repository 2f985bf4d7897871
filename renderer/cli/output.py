"""Results and errors to what the user reads: text on stdout/stderr, or one JSON document.

Where it sits: ``cli``. With ``--format json`` every command prints exactly one JSON document on
stdout, in success and in failure: ``ok``, ``exit``, ``meaning``, ``findings`` and ``counts``,
plus what the command produced. Text keeps the compiler-style lines on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

from renderer.core.errors import (
    EXIT_MEANING,
    EXIT_OK,
    WARNING,
    Finding,
    RenderError,
    finding_of,
)
from renderer.gitops import Outcome, Published, versions
from renderer.gitops import report as reports
from renderer.gitops import report_markdown

LIST_LIMIT = 25  # bundles listed in text output


def emit_ok(payload: dict, findings: Iterable[Finding] = ()) -> None:
    found = list(findings)
    warnings = sum(1 for f in found if f.severity == WARNING)
    doc = {"ok": True, "exit": EXIT_OK, "meaning": EXIT_MEANING[EXIT_OK], "findings": [f.to_json() for f in found],
           "counts": {"errors": len(found) - warnings, "warnings": warnings}, **payload}
    print(json.dumps(doc, sort_keys=True))


def warnings_of(lines: Iterable[str]) -> list[Finding]:
    return [finding_of(line, WARNING) for line in lines]


def error(exc: RenderError, fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(exc.to_json(), sort_keys=True))
    else:
        for line in exc.lines():
            sys.stderr.write(line + "\n")
    return exc.exit_code


def internal_error(exc: BaseException, fmt: str) -> int:
    message = (f"render: internal error ({type(exc).__name__}: {exc}); nothing was written. This is a bug in "
               "render: rerun with RENDER_DEBUG=1 and report the traceback")
    if fmt == "json":
        print(json.dumps({"ok": False, "exit": 70, "meaning": EXIT_MEANING[70], "error": message,
                          "kind": type(exc).__name__, "findings": [], "counts": {"errors": 1, "warnings": 0}},
                         sort_keys=True))
    else:
        sys.stderr.write(message + "\n")
    return 70


def build(result, out: Path, fmt: str) -> None:
    per_env = {e.name: len(e.bundles) for e in result.environments}
    found = warnings_of(result.warnings)
    if fmt == "json":
        emit_ok({"out": str(out), "bundles": result.bundles, "objects": result.objects, "environments": per_env,
             "seconds": round(result.seconds, 3), "kept": result.reused, "warnings": result.warnings}, found)
        return
    for f in found:
        sys.stderr.write(f"warning: {f}\n")
    envs = ", ".join(f"{k}: {v}" for k, v in per_env.items())
    kept = f", {result.reused} kept as they were (same inputDigest)" if result.reused else ""
    print(f"rendered {result.bundles} bundles ({result.objects} objects) for {len(per_env)} environments "
          f"({envs}) into {out}/ in {result.seconds:.2f} s{kept}")
    print("signatures verified; every bundle passed the migration, schema, policy and isolation gates")
    for note in result.notes:
        print(f"note: {note}")


def validated(count: int, folder: Path, fmt: str) -> None:
    if fmt == "json":
        emit_ok({"bundles": count, "violations": []})
    else:
        print(f"{count} bundles in {folder} passed the schema, policy and isolation gates")


def schemas_written(written: list[Path], fmt: str) -> None:
    if fmt == "json":
        emit_ok({"written": [str(p) for p in written]})
    else:
        for path in written:
            print(f"wrote {path}")


def diff(report: reports.Report, fmt: str) -> None:
    if fmt == "json":
        emit_ok(reports.to_json(report))
    elif fmt == "markdown":
        sys.stdout.write(report_markdown.format_markdown(report))
    else:
        sys.stdout.write(reports.format_text(report))


def write_full_diff(report: reports.Report, path: Path) -> None:
    report_markdown.write_full_report(report, path)


def outcome(result: Outcome, fmt: str) -> None:
    if fmt == "json":
        emit_ok(result.to_json())
        return
    where = f"{result.branch} of {result.repo}"
    if result.commit is None:
        base = f" at {result.base[:12]}" if result.base else ""
        print(f"unchanged: {where}{base} already holds this; no commit made")
    if result.kept:
        print(f"kept {result.kept} bundle(s) exactly as the head holds them, without rendering them: the kept index "
              "(RENDER_CACHE_DIR) knows their files passed every gate for their inputs")
    if result.commit is not None:
        report = result.report
        counts = ", ".join(f"{n} {c}" for c, n in report.summary().items() if n) if report else ""
        print(f"committed {result.commit[:12]} on {where}" + (f": {counts}" if counts else ""))
        if report:
            for b in report.bundles[:LIST_LIMIT]:
                print(f"  {b.change:8} {b.path}{versions(b)}")
            if len(report.bundles) > LIST_LIMIT:
                print(f"  ... and {len(report.bundles) - LIST_LIMIT} more (the commit message names them all)")
        if result.published is Published.NONE:
            print("not published: the commit was made in a temporary clone of the URL; add --push to publish it")
        elif result.pushed:
            print(f"pushed to {result.repo}" + (f" after {result.attempts} attempts" if result.attempts > 1 else ""))
    for note in result.notes:
        print(f"note: {note}")


def marked_good(result, fmt: str) -> None:
    record = result.record
    if fmt == "json":
        emit_ok({**record.to_json(), "recorded": result.written, "published": bool(result.published)})
        return
    where = "published to the remote" if result.published else "recorded locally"
    if result.written:
        print(f"known good: {record.bundle} at {record.commit[:12]} ({where}, render-known-good "
              f"{(record.ledger_commit or '')[:12]})")
    else:
        print(f"known good: {record.bundle} at {record.commit[:12]} was already recorded; nothing changed")
