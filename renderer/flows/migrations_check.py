"""`render migrations check`: the migration gate, then the migrations applied on a real PostgreSQL.

For a catalog plugin folder (``catalog/<plugin>``) or an environments repo (every catalog plugin
that ships migrations), this

1. runs the static gate (``renderer.gates.migrations.check_catalog``: squawk and the scope rules);
   SQL that the gate rejects is never sent to the server;
2. creates, through ``postgres_url`` (a role that may create databases and roles), a throwaway
   database and, per plugin, the role and schema that a rendered bundle's provider-sql Role,
   Schema and Grant describe (``ROLE_PRIVILEGES``: LOGIN and nothing else; the role owns its
   schema, which has USAGE and CREATE for it and nothing for PUBLIC);
3. applies every catalog version's migrations in semver order, each version's new files in name
   order, *as that role*, with ``search_path`` set to the plugin's schema, one statement at a time
   (autocommit, so that ``CREATE INDEX CONCURRENTLY`` runs as it would in production);
4. drops the database and the roles again, whatever happened.

``check`` returns a ``CheckReport``; ``Sandbox`` and ``run_sql`` are the pieces the tests use to
show that escaping statements fail on the server too.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pglast
import yaml
from pglast.parser import ParseError

from renderer.core.errors import OutsideSystemError, UsageError
from renderer.core.semver import Version, is_semver
from renderer.gates import migrations, sqlscope

# What the rendered Role grants (templates/sql-role.yaml.j2): provider-sql privilege -> SQL.
ROLE_PRIVILEGES = {"login": True, "superUser": False, "createDb": False, "createRole": False,
                   "inherit": False, "replication": False, "bypassRls": False}
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
_PRIV_SQL = {"login": "LOGIN", "superUser": "SUPERUSER", "createDb": "CREATEDB", "createRole": "CREATEROLE",
             "inherit": "INHERIT", "replication": "REPLICATION", "bypassRls": "BYPASSRLS"}
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class DatabaseGrant:
    """One plugin role in one database, as a bundle's Role, Schema and Grant describe it."""

    database: str
    role: str
    schema: str
    privileges: dict = field(default_factory=lambda: dict(ROLE_PRIVILEGES))
    connection_limit: int | None = None
    schema_privileges: tuple = SCHEMA_PRIVILEGES
    revoke_public: bool = True


@dataclass(frozen=True)
class ServerFailure:
    line: int  # 1-based, in the text that was run
    sqlstate: str
    message: str


@dataclass(frozen=True)
class FileResult:
    plugin: str
    version: str
    file: str  # path relative to the checked folder
    failure: ServerFailure | None


@dataclass
class CheckReport:
    findings: list = field(default_factory=list)  # blocking MigrationFindings (nothing was applied)
    warnings: list = field(default_factory=list)
    applied: list = field(default_factory=list)  # FileResults, in the order they ran

    @property
    def ok(self) -> bool:
        return not self.findings and all(r.failure is None for r in self.applied)


def grant_from_bundle(bundle_dir: Path) -> DatabaseGrant:
    """Read a rendered bundle's provider-sql Role, Schema and Grant."""
    objs = {}
    for path in sorted(Path(bundle_dir).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("postgresql.sql."):
            objs[doc["kind"]] = doc
    role, schema, grant = objs["Role"], objs["Schema"], objs["Grant"]
    return DatabaseGrant(
        database=grant["spec"]["forProvider"]["database"],
        role=role["metadata"]["annotations"]["crossplane.io/external-name"],
        schema=schema["metadata"]["annotations"]["crossplane.io/external-name"],
        privileges=dict(role["spec"]["forProvider"]["privileges"]),
        connection_limit=role["spec"]["forProvider"].get("connectionLimit"),
        schema_privileges=tuple(grant["spec"]["forProvider"]["privileges"]),
        revoke_public=bool(schema["spec"]["forProvider"].get("revokePublicOnSchema")),
    )


def _psycopg():
    import psycopg

    return psycopg


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect(conninfo: str, **overrides):
    psycopg = _psycopg()
    try:
        return psycopg.connect(psycopg.conninfo.make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT, **overrides),
                               autocommit=True)
    except psycopg.ProgrammingError as err:
        raise UsageError(f"--postgres-url: {str(err).splitlines()[0]}") from None
    except psycopg.Error as err:
        raise OutsideSystemError(f"PostgreSQL: {str(err).strip().splitlines()[0]}") from None


class Sandbox:
    """Databases and roles made for a check, dropped by ``close``; ``conninfo(role)`` logs in as one."""

    def __init__(self, admin_url: str, grants: list[DatabaseGrant]):
        self.admin_url = admin_url
        self.grants = list(grants)
        self.passwords: dict[str, str] = {}
        self.databases: list[str] = []

    def open(self) -> "Sandbox":
        try:
            return self._create()
        except _psycopg().Error as err:
            raise OutsideSystemError(f"PostgreSQL refused to set up the check: {str(err).strip().splitlines()[0]} "
                                     "(--postgres-url must name a role that may create databases and roles)") from None

    def _create(self) -> "Sandbox":
        with _connect(self.admin_url) as admin:
            for db in sorted({g.database for g in self.grants}):
                admin.execute(f"CREATE DATABASE {_ident(db)}")
                self.databases.append(db)
            for g in self.grants:
                flags = [(_PRIV_SQL[k] if v else "NO" + _PRIV_SQL[k]) for k, v in sorted(g.privileges.items())
                         if k in _PRIV_SQL]
                if g.connection_limit is not None:
                    flags.append(f"CONNECTION LIMIT {int(g.connection_limit)}")
                password = secrets.token_hex(16)
                admin.execute(f"CREATE ROLE {_ident(g.role)} {' '.join(flags)} PASSWORD '{password}'")
                self.passwords[g.role] = password
        for g in self.grants:
            with _connect(self.admin_url, dbname=g.database) as db:
                db.execute(f"CREATE SCHEMA {_ident(g.schema)} AUTHORIZATION {_ident(g.role)}")
                if g.revoke_public:
                    db.execute(f"REVOKE ALL ON SCHEMA {_ident(g.schema)} FROM PUBLIC")
                privs = ", ".join(p for p in g.schema_privileges if p.isalpha())
                db.execute(f"GRANT {privs} ON SCHEMA {_ident(g.schema)} TO {_ident(g.role)}")
        return self

    def conninfo(self, grant: DatabaseGrant) -> str:
        psycopg = _psycopg()
        return psycopg.conninfo.make_conninfo(self.admin_url, user=grant.role, password=self.passwords[grant.role],
                                              dbname=grant.database, options=f"-c search_path={_ident(grant.schema)}")

    def close(self) -> None:
        if not self.databases and not self.passwords:
            return
        try:
            with _connect(self.admin_url) as admin:
                for db in self.databases:
                    admin.execute(f"DROP DATABASE IF EXISTS {_ident(db)} WITH (FORCE)")
                for role in self.passwords:
                    admin.execute(f"DROP ROLE IF EXISTS {_ident(role)}")
        except _psycopg().Error as err:
            raise OutsideSystemError(f"PostgreSQL: could not drop the check's database and roles "
                                     f"{sorted(self.databases) + sorted(self.passwords)}: {str(err).strip()}") from None
        self.databases, self.passwords = [], {}


@contextmanager
def sandbox(admin_url: str, grants: list[DatabaseGrant]) -> Iterator[Sandbox]:
    box = Sandbox(admin_url, grants)
    try:
        yield box.open()
    finally:
        box.close()


def run_sql(conninfo: str, text: str) -> ServerFailure | None:
    """Run ``text`` statement by statement (autocommit) on one connection; the first failure, or None."""
    psycopg = _psycopg()
    try:
        statements = pglast.parse_sql(text)
    except ParseError as err:
        return ServerFailure(1, "42601", f"syntax error: {err.args[0] if err.args else err}")
    with _connect(conninfo) as conn:
        for raw in statements:
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
            stmt = text[raw.stmt_location:end]
            try:
                conn.execute(stmt.encode("utf-8"))  # bytes: sent as written, never as a query template
            except psycopg.Error as err:
                lead = len(stmt) - len(stmt.lstrip())
                line = text.count("\n", 0, raw.stmt_location + lead) + 1
                return ServerFailure(line, err.sqlstate or "", (err.diag.message_primary or str(err)).strip())
    return None


def _plugins(target: Path) -> list[Path]:
    target = Path(target)
    if (target / "catalog").is_dir():
        return sorted(p for p in (target / "catalog").iterdir() if p.is_dir() and not p.is_symlink())
    if any(is_semver(p.name) for p in target.iterdir() if p.is_dir()) if target.is_dir() else False:
        return [target]
    raise UsageError(f"{target}: neither an environments repo (with catalog/) nor a catalog plugin folder "
                     "(with <version>/ folders)")


def check(target: Path, postgres_url: str, *, database: str | None = None) -> CheckReport:
    """Gate, then apply every plugin's migrations as its own role on the server ``postgres_url`` names."""
    target = Path(target)
    plugins = _plugins(target)
    report = CheckReport()
    runs = []  # (plugin dir, [(version, [files])])
    for plugin_dir in plugins:
        versions = sorted((Version(p.name), p.name) for p in plugin_dir.iterdir() if p.is_dir() and is_semver(p.name))
        found = migrations.check_catalog(plugin_dir.parent, [(plugin_dir.name, v) for _, v in versions])
        report.findings += [f for f in found if f.blocking]
        report.warnings += [f for f in found if not f.blocking]
        steps, seen = [], set()
        for _, version in versions:
            mig = plugin_dir / version / "migrations"
            files = sorted(p for p in mig.glob("*.sql") if p.is_file()) if mig.is_dir() else []
            steps.append((version, [p for p in files if p.name not in seen]))
            seen.update(p.name for p in files)
        if any(files for _, files in steps):
            runs.append((plugin_dir, steps))
    if report.findings or not runs:
        return report
    db = database or f"render_check_{secrets.token_hex(4)}"
    tag = secrets.token_hex(3)
    grants = {}
    for plugin_dir, steps in runs:
        schema = sqlscope.plugin_schema(plugin_dir / steps[-1][0])
        grants[plugin_dir] = DatabaseGrant(db, f"render_check_{tag}_{plugin_dir.name.replace('-', '_')}"[:63],
                                           schema, connection_limit=25)
    base = target if (target / "catalog").is_dir() else target.parent
    with sandbox(postgres_url, list(grants.values())) as box:
        for plugin_dir, steps in runs:
            conninfo = box.conninfo(grants[plugin_dir])
            failed = False
            for version, files in steps:
                for path in files:
                    if failed:
                        break
                    failure = run_sql(conninfo, path.read_text(encoding="utf-8"))
                    report.applied.append(FileResult(plugin_dir.name, version, path.relative_to(base).as_posix(), failure))
                    failed = failure is not None
    return report
