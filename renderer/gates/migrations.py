"""The migration gate: a catalog version's PostgreSQL migrations must not break the version before it.

Where it sits (cli -> pipeline -> load -> plan -> verify -> render -> ...): a ``verify``-stage
check of the input, run by ``pipeline`` once ``plan`` knows the (plugin, version) pairs that
installs use and before ``render``; blocking findings become ``Problem``s and reject the run like
any other input error.

Input (CONTRACT section 1): ``catalog/<plugin>/<version>/migrations/*.sql``, applied in file-name
order. Every catalog version carries its plugin's whole migration history, so:

* the *previous* version of V is the highest catalog version of the plugin below V by semver
  precedence (``renderer.semver``), whichever versions installs use;
* V's *new* migrations are its files whose names the previous version does not have;
* a file of the previous version whose bytes differ in V is ``migration-rewritten``: databases
  that already ran it would never run the new text, so tenants upgraded from the previous version
  and tenants installed fresh at V would end up with different schemas;
* a file of the previous version that V lacks is ``migration-removed``: a fresh install of V would
  miss part of the schema that upgraded tenants have (and a migration tool that checks its
  history would refuse to run);
* a new file whose name sorts before the previous version's last file is
  ``migration-out-of-order``: a fresh install would run it before that file, an upgraded
  tenant after it, so the two would not be built by the same sequence of statements.

Forward compatibility: after V's new migrations the previous version must keep running, so that
rolling a tenant back from V is safe. Squawk (pip package ``squawk-cli``) lints the new files; its
rules that break code written against the old schema (``BLOCKING_RULES``) reject the version, all
its other findings (locks, timeouts, bigint, robustness...) are warnings: they are about how a
migration runs, not about whether the old version survives it. Invalid SQL (squawk's
``syntax-error``) and files that are not UTF-8 are always errors.

The lowest catalog version has no previous version: no tenant can be rolled back from it to an
older one, so its findings are warnings (invalid SQL is still an error).

Squawk's ``squawk-ignore`` comments and ``.squawk.toml`` files are not honoured
(``renderer.gates.squawk``); the checkable way to make a breaking change is the
``-- contract-since: X.Y.Z`` marker (``docs/migrations.md``): it allows the blocking findings of
its file only when the previous version is X.Y.Z or later; ``rollback_floor`` then tells the
pipeline which running versions may be moved to V.

Scope (``renderer.gates.sqlscope``, always blocking, the first version too): a migration runs as
the plugin's role and must not change roles or privileges, run programs, install extensions or
name any schema but the plugin's own. Symlinks (``migration-symlink``): a migrations/ folder that
is a link, or a link in it, is rejected and never read, whatever it points at.

``check_catalog`` checks each asked version together with the versions below it (its history):
upgrading to V runs every intermediate version's new files. Squawk runs once per set of new files
and is memoised in process by their content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from renderer.core.errors import Problem
from renderer.core.semver import Version, is_semver
from renderer.gates.migration_verdicts import MigrationVerdicts
from renderer.gates.migration_history import (
    CONTRACT_MARKER_RE,
    first_difference as _first_difference,
    markers as _markers,
    migrations as _migrations,
    previous as _previous,
    rollback_floor,
    subdirs as _subdirs,
    unsafe_move,
    versions as _versions,
)
from renderer.gates.squawk import OPT_IN_RULES, SquawkFailed, _memo, lint, squawk_path, squawk_run_count

__all__ = ["BLOCKING_RULES", "CONTRACT_MARKER_RE", "OPT_IN_RULES", "MigrationFinding", "SquawkFailed", "as_problems", "check_catalog",
           "check_version", "rollback_floor", "squawk_path", "squawk_run_count", "unsafe_move"]

# Squawk rules whose statements break code written for the schema before them (verified against
# squawk 2.70.0). Each removes, renames, moves or retypes something the old version names, or
# changes what its reads return or what its writes must supply.
BLOCKING_RULES = frozenset(
    {
        # the list
        "ban-drop-column",
        "ban-drop-table",
        "renaming-column",
        "renaming-table",
        "changing-column-type",
        "adding-required-field",  # new NOT NULL column without default: old INSERTs fail
        "adding-not-nullable-field",  # SET NOT NULL: old INSERTs that leave it NULL fail
        # removes objects the old version may use
        "ban-drop-database",
        "ban-drop-schema",
        "ban-drop-view",
        "ban-drop-function",
        "ban-drop-type",
        "ban-drop-sequence",
        "ban-drop-domain",
        "ban-drop-extension",
        "ban-drop-constraint",  # e.g. the unique constraint an old ON CONFLICT names
        # renames or moves objects the old version names
        "renaming-object",
        "ban-set-schema",
        # changes the contract of a column the old version reads or writes
        "ban-drop-default",  # old INSERTs omitting the column now write NULL (or fail)
        "ban-drop-not-null",  # old reads may now meet NULLs written by the new version
        "ban-alter-identity",  # old INSERTs relying on (or supplying) generated ids fail
        "ban-drop-generated-expression",  # old INSERTs leave the column NULL
        # opt-in in squawk, enabled below: the old version loses privileges it uses
        "ban-revoke",
    }
)
SYNTAX_RULE = "syntax-error"
MAX_MIGRATION_BYTES = 1 << 20  # 1 MiB: never parsed or linted beyond this

_DOC = "docs/migrations.md"


@dataclass(frozen=True, order=True)
class MigrationFinding:
    """One finding of the gate; ``blocking`` ones reject the catalog version."""

    path: Path  # the migration file (for migration-removed: where V should hold it)
    line: int  # 1-based; 0 when not about a line
    rule: str  # squawk's rule name, or migration-rewritten / -removed / -out-of-order, ...
    message: str
    blocking: bool


def check_version(catalog_plugin_dir: Path, version: str) -> list[MigrationFinding]:
    """Check one catalog version against the version just before it (one step, not its history).

    A folder that does not exist or is not a semantic version gives no findings: ``load``
    reports those.
    """
    catalog_plugin_dir = Path(catalog_plugin_dir)
    version_dir = catalog_plugin_dir / version
    if not is_semver(version) or not version_dir.is_dir():
        return []
    previous = _previous(catalog_plugin_dir, version)
    mig_dir = version_dir / "migrations"
    files = _migrations(version_dir)
    findings: list[MigrationFinding] = _links(mig_dir)
    if previous is None:
        new = files
    else:
        old = _migrations(catalog_plugin_dir / previous)
        for name, data in old.items():
            if name not in files:
                findings.append(
                    MigrationFinding(
                        mig_dir / name,
                        0,
                        "migration-removed",
                        f"{name} of version {previous} is missing from {version}; a version keeps every "
                        f"migration of the versions before it: copy {previous}/migrations/{name} back unchanged",
                        True,
                    )
                )
            elif files[name] != data:
                findings.append(
                    MigrationFinding(
                        mig_dir / name,
                        _first_difference(data, files[name]),
                        "migration-rewritten",
                        f"this file differs from the one in version {previous}; tenants that already ran it "
                        f"will never run the new text: restore it byte for byte and put the change in a new file "
                        f"that sorts after the last one",
                        True,
                    )
                )
        new = {name: data for name, data in files.items() if name not in old}
        if old:
            last = max(old)
            for name in new:
                if name < last:
                    findings.append(
                        MigrationFinding(
                            mig_dir / name,
                            0,
                            "migration-out-of-order",
                            f"new migration sorts before {last} of version {previous}, so fresh and upgraded "
                            f"databases would run it in a different order: rename it to sort after {last}",
                            True,
                        )
                    )
    big = {name for name, data in files.items() if len(data) > MAX_MIGRATION_BYTES}
    findings.extend(MigrationFinding(mig_dir / name, 0, "migration-too-large", f"larger than {MAX_MIGRATION_BYTES} "
                                     "bytes: split it into several files (or load bulk data another way)", True)
                    for name in sorted(big & set(new)))
    # Scope (PostgreSQL's parser) first: the new files, all of them when the version moves the
    # plugin to another schema. What it cannot parse is rejected and never reaches squawk.
    from renderer.gates import sqlscope  # PostgreSQL's parser: loaded only when a version is checked

    schema = sqlscope.plugin_schema(version_dir)
    same = previous is not None and sqlscope.plugin_schema(catalog_plugin_dir / previous) == schema
    scoped = _scope(mig_dir, {n: d for n, d in (new if same else files).items() if n not in big}, schema)
    findings.extend(scoped)
    skip = big | {f.path.name for f in scoped if f.rule == SYNTAX_RULE}
    findings.extend(_lint_new(mig_dir, {n: d for n, d in new.items() if n not in skip}, version, previous))
    return sorted(findings)


def check_catalog(
    catalog_dir: Path, wanted: Iterable[tuple[str, str]] | None = None, *, history: bool = True,
    cache_dir: Path | None = None,
) -> list[MigrationFinding]:
    """Check the asked (plugin, version) pairs (None: every catalog version).

    With ``history`` (the default) each asked version is checked with every catalog version of
    its plugin below it, since upgrading to it runs their new files too. "Previous" is always
    computed over all catalog versions. Pairs that name no catalog folder are skipped (``load``
    reports them). Findings are sorted and free of duplicates. ``cache_dir``: the verdicts of
    earlier runs are taken for versions whose plugin folder is byte for byte the same
    (``migration_verdicts``), and this run's are recorded there.
    """
    catalog_dir = Path(catalog_dir)
    if wanted is None:
        pairs = {
            (p.name, v.name)
            for p in _subdirs(catalog_dir)
            for v in _subdirs(p)
            if is_semver(v.name)
        }
    else:
        pairs = set(wanted)
    steps: set[tuple[str, str]] = set()
    for plugin, version in pairs:
        if Path(plugin).name != plugin or Path(version).name != version or not is_semver(version):
            continue
        plugin_dir = catalog_dir / plugin
        if not (plugin_dir / version).is_dir():
            continue
        steps.add((plugin, version))
        if history:
            top = Version(version)
            steps.update((plugin, text) for ver, text in _versions(plugin_dir) if ver < top)
    found: set[MigrationFinding] = set()
    recorded = MigrationVerdicts(cache_dir, lambda: squawk_path())  # a module global, looked up when used
    for plugin, version in sorted(steps):
        found.update(_checked(recorded, catalog_dir / plugin, version))
    return sorted(found)


def _checked(recorded: MigrationVerdicts, plugin_dir: Path, version: str) -> list[MigrationFinding]:
    """``check_version``'s findings, from the record of an earlier run when there is one."""
    key = recorded.key(plugin_dir, version)
    known = recorded.get(key)
    if known is not None:
        return [MigrationFinding(plugin_dir / rel, line, rule, message, blocking)
                for rel, line, rule, message, blocking in known]
    findings = check_version(plugin_dir, version)
    try:
        recorded.put(key, [(f.path.relative_to(plugin_dir).as_posix(), f.line, f.rule, f.message, f.blocking)
                           for f in findings])
    except ValueError:  # a path outside the plugin folder: not recorded
        pass
    return findings


def as_problems(findings: Iterable[MigrationFinding], root: Path) -> list[Problem]:
    """The blocking findings as ``Problem``s, paths relative to ``root`` (the environments repo)."""
    root = Path(root)
    problems = []
    for f in findings:
        if not f.blocking:
            continue
        try:
            path = f.path.relative_to(root).as_posix()
        except ValueError:
            path = f.path.as_posix()
        problems.append(Problem(path, f.line, f"migrations: {f.rule}", f.message))
    return sorted(problems)


# --- internals -----------------------------------------------------------------------------


def _links(mig_dir: Path) -> list[MigrationFinding]:
    """A migrations/ folder that is a symlink, and every symlink in it, whatever it points at."""
    fix = "a catalog version's migrations are plain files inside it: replace the link by a copy of the file"
    if mig_dir.is_symlink():
        return [MigrationFinding(mig_dir, 0, "migration-symlink", f"migrations/ is a symbolic link; {fix}", True)]
    if not mig_dir.is_dir():
        return []
    return [MigrationFinding(p, 0, "migration-symlink", f"{p.name} is a symbolic link; {fix}", True)
            for p in sorted(mig_dir.iterdir()) if p.is_symlink()]


def _scope(mig_dir: Path, files: dict[str, bytes], schema: str) -> list[MigrationFinding]:
    """``sqlscope``'s findings for these files, always blocking (non-UTF-8 files: ``_lint_new`` says so)."""
    from renderer.gates import sqlscope

    out = []
    for name, data in files.items():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # reported as `encoding` by the version that added it
        for f in sqlscope.check_sql(text, schema):
            out.append(MigrationFinding(mig_dir / name, f.line, f.rule, f.message, True))
    return out


def _lint_new(mig_dir: Path, new: dict[str, bytes], version: str, previous: str | None) -> list[MigrationFinding]:
    findings: list[MigrationFinding] = []
    texts: dict[str, bytes] = {}
    for name, data in new.items():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            findings.append(
                MigrationFinding(
                    mig_dir / name,
                    data[: err.start].count(b"\n") + 1,
                    "encoding",
                    "migration is not UTF-8: save it as UTF-8",
                    True,
                )
            )
            continue
        texts[name] = data

    # Which files may break the previous version: a valid contract-since marker <= previous.
    waived: dict[str, str] = {}
    if previous is not None:
        prev = Version(previous)
        for name, data in texts.items():
            marks = _markers(data)
            ok = bool(marks)
            for line, text in marks:
                if text is None:
                    ok = False
                    findings.append(
                        MigrationFinding(
                            mig_dir / name,
                            line,
                            "contract-marker",
                            "malformed marker: write it alone on its line as `-- contract-since: X.Y.Z`, "
                            "X.Y.Z being the first version that no longer uses what this file removes",
                            True,
                        )
                    )
                elif prev < Version(text):
                    ok = False
                    findings.append(
                        MigrationFinding(
                            mig_dir / name,
                            line,
                            "contract-too-early",
                            f"the previous version {previous} is older than {text} and still uses what this "
                            f"file removes, and tenants roll back to it: ship this file in a version released "
                            f"after {text} ({_DOC})",
                            True,
                        )
                    )
            if ok:
                waived[name] = max((t for _l, t in marks), key=Version)  # type: ignore[arg-type]

    for raw in lint(texts, find=squawk_path, memo=_memo):  # module globals, looked up at call time
        path = mig_dir / raw.name
        if raw.rule == SYNTAX_RULE:
            findings.append(
                MigrationFinding(
                    path,
                    raw.line,
                    raw.rule,
                    f"invalid SQL: {raw.message} Fix the statement so that PostgreSQL can parse it.",
                    True,
                )
            )
            continue
        if raw.rule not in BLOCKING_RULES or previous is None:
            findings.append(MigrationFinding(path, raw.line, raw.rule, raw.message, False))
            continue
        if raw.name in waived:
            since = waived[raw.name]
            findings.append(
                MigrationFinding(
                    path,
                    raw.line,
                    raw.rule,
                    f"allowed by `contract-since: {since}` (versions before {since} cannot run after this "
                    f"migration): {raw.message}",
                    False,
                )
            )
            continue
        note = ""
        if b"squawk-ignore" in texts[raw.name].lower():
            note = " squawk-ignore comments do not lift this gate."
        findings.append(
            MigrationFinding(
                path,
                raw.line,
                raw.rule,
                f"{raw.message} Version {version} must leave the schema usable by {previous}, which tenants "
                f"roll back to: split the change into expand and contract steps ({_DOC}).{note}",
                True,
            )
        )
    return findings
