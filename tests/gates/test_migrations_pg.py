"""Migrations on a real PostgreSQL server, as the plugin's own role (Debian's postgresql package).

A session-scoped fixture starts a throwaway server (initdb in a tmp folder, 127.0.0.1, a free
port; as an unprivileged user when the tests run as root) and stops it at the end. The tenant
database and the plugin roles are made exactly as a rendered bundle's provider-sql Role, Schema
and Grant describe them (``migrations_check.grant_from_bundle``).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import EXAMPLE
from renderer.flows.migrations_check import (
    ROLE_PRIVILEGES,
    SCHEMA_PRIVILEGES,
    check,
    grant_from_bundle,
    run_sql,
    sandbox,
)
from renderer.gates.sqlscope import check_sql

ADMIN = "render_admin"
QUIZ = "plugin_quiz_generator_riverside_academy"
GRADES = "plugin_grade_sync_riverside_academy"


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: run `make tools` "
                "(scripts/install-tools.sh installs Debian's postgresql package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server():
    """A throwaway PostgreSQL server on 127.0.0.1, stopped and removed at the end; yields a superuser URL."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="render-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(16)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", ADMIN, "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                    "--no-instructions"], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
                    "-o", options, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://{ADMIN}:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> str:
    with _server() as url:
        yield url


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    from renderer.cli import main

    out = tmp_path_factory.mktemp("rendered") / "out"
    assert main(["build", str(EXAMPLE), "--out", str(out), "--offline"]) == 0
    return out


def _bundles_with_database(rendered: Path) -> list[Path]:
    return sorted({p.parent for p in rendered.glob("*/plugins/*/*/schema-*.yaml")})


def _migrations_of(bundle: Path) -> list[Path]:
    meta = json.loads((bundle / "bundle.json").read_text())
    return sorted((EXAMPLE / "catalog" / meta["plugin"] / meta["pluginVersion"] / "migrations").glob("*.sql"))


def test_the_rendered_role_is_login_only_and_owns_just_its_schema(rendered):
    grants = [grant_from_bundle(b) for b in _bundles_with_database(rendered)]

    assert len(grants) >= 3
    for g in grants:
        assert g.privileges == ROLE_PRIVILEGES
        assert g.schema_privileges == SCHEMA_PRIVILEGES and g.revoke_public


def test_every_example_plugins_migrations_apply_as_its_own_role(postgres, rendered):
    for env in sorted({b.parts[-4] for b in _bundles_with_database(rendered)}):
        bundles = [b for b in _bundles_with_database(rendered) if b.parts[-4] == env]
        grants = [grant_from_bundle(b) for b in bundles]
        with sandbox(postgres, grants) as box:
            for bundle, grant in zip(bundles, grants):
                files = _migrations_of(bundle)
                assert files, bundle
                for path in files:
                    assert run_sql(box.conninfo(grant), path.read_text()) is None, (env, path)
            for g in grants:
                with psycopg.connect(postgres, dbname=g.database, autocommit=True) as admin:
                    row = admin.execute(
                        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolbypassrls, "
                        "rolcanlogin, (SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
                        "FROM pg_roles r WHERE rolname = %s", (g.role,)).fetchone()
                    owner, acl = admin.execute("SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace "
                                               "WHERE nspname = %s", (g.schema,)).fetchone()
                    tables = admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tableowner = %s",
                                           (g.schema, g.role)).fetchone()[0]
                assert row == (False, False, False, False, False, False, True, 0), g.role
                assert owner == g.role and tables >= 1
                assert [item for item in acl.strip("{}").split(",") if item.startswith("=")] == [], acl


@pytest.fixture(scope="module")
def tenant(rendered):
    """riverside-academy's database in dev: quiz-generator and grade-sync, each migrated as its role.

    On a server of its own: the same role names are made and dropped by the test above."""
    bundles = [b for b in _bundles_with_database(rendered) if b.parts[-4] == "dev" and b.parts[-2] == "riverside-academy"]
    grants = {b.name: grant_from_bundle(b) for b in bundles}
    assert set(grants) == {"quiz-generator", "grade-sync"}
    with _server() as url, sandbox(url, list(grants.values())) as box:
        for bundle in bundles:
            for path in _migrations_of(bundle):
                assert run_sql(box.conninfo(grants[bundle.name]), path.read_text()) is None
        yield box, grants["quiz-generator"]


# Each statement: the gate rejects it (rule), and PostgreSQL refuses it to the plugin's role.
ESCAPES = [
    pytest.param(f"SET ROLE {ADMIN}", "scope-role", id="set-role-superuser"),
    pytest.param(f"SET ROLE {GRADES}", "scope-role", id="set-role-other-plugin"),
    pytest.param(f"SET SESSION AUTHORIZATION {ADMIN}", "scope-role", id="set-session-authorization"),
    pytest.param(f"SELECT set_config('role', '{ADMIN}', false)", "scope-search-path", id="set-config-role"),
    pytest.param(f"ALTER ROLE {QUIZ} SUPERUSER", "scope-role", id="alter-role-superuser"),
    pytest.param("ALTER ROLE CURRENT_USER CREATEROLE", "scope-role", id="alter-role-createrole"),
    pytest.param("CREATE ROLE evil LOGIN PASSWORD 'x'", "scope-role", id="create-role"),
    pytest.param("CREATE USER evil", "scope-role", id="create-user"),
    pytest.param(f"DROP ROLE {GRADES}", "scope-role", id="drop-role"),
    pytest.param("GRANT pg_read_server_files TO CURRENT_USER", "scope-role", id="grant-role"),
    pytest.param(f"REASSIGN OWNED BY {GRADES} TO CURRENT_USER", "scope-role", id="reassign-owned"),
    pytest.param(f"ALTER TABLE quiz.quizzes OWNER TO {ADMIN}", "scope-role", id="change-owner"),
    pytest.param(f"ALTER SCHEMA quiz OWNER TO {ADMIN}", "scope-role", id="schema-owner"),
    pytest.param("GRANT SELECT ON pg_catalog.pg_authid TO PUBLIC", "scope-privilege", id="grant-catalog-to-public"),
    pytest.param("GRANT SELECT ON grade_sync.synced_grades TO PUBLIC", "scope-privilege", id="grant-other-plugin"),
    pytest.param(f"ALTER DEFAULT PRIVILEGES FOR ROLE {ADMIN} GRANT ALL ON TABLES TO PUBLIC", "scope-privilege",
                 id="default-privileges-for-superuser"),
    pytest.param("COPY quiz.quizzes FROM PROGRAM 'id'", "scope-program", id="copy-from-program"),
    pytest.param("COPY quiz.quizzes TO PROGRAM 'cat > /tmp/x'", "scope-program", id="copy-to-program"),
    pytest.param("COPY quiz.quizzes FROM '/etc/passwd'", "scope-program", id="copy-from-file"),
    pytest.param("COPY quiz.quizzes TO '/tmp/quizzes.csv'", "scope-program", id="copy-to-file"),
    pytest.param("SELECT pg_read_file('/etc/passwd')", "scope-program", id="read-file"),
    pytest.param("SELECT lo_import('/etc/passwd')", "scope-program", id="lo-import"),
    pytest.param("LOAD '/tmp/evil.so'", "scope-program", id="load"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE c AS '/tmp/evil.so', 'f'", "scope-language",
                 id="function-in-c"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE internal AS 'int4in'", "scope-language",
                 id="function-internal"),
    pytest.param("DO LANGUAGE c $$x$$", "scope-language", id="do-in-c"),
    pytest.param(f"DO $$ BEGIN EXECUTE 'SET ROLE {ADMIN}'; END $$", "scope-dynamic-sql", id="do-dynamic-sql"),
    pytest.param("DO $$ BEGIN PERFORM 1 FROM grade_sync.synced_grades; END $$", "scope-other-schema",
                 id="do-reads-other-plugin"),
    pytest.param("CREATE EXTENSION IF NOT EXISTS pgcrypto", "scope-extension", id="create-extension"),
    pytest.param("CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA quiz", "scope-extension", id="extension-in-own-schema"),
    pytest.param("CREATE FOREIGN DATA WRAPPER evil", "scope-extension", id="foreign-data-wrapper"),
    pytest.param("CREATE SCHEMA evil", "scope-schema", id="create-schema"),
    pytest.param("ALTER SCHEMA quiz RENAME TO quiz2", "scope-schema", id="rename-schema"),
    pytest.param("DROP SCHEMA grade_sync CASCADE", "scope-schema", id="drop-other-plugins-schema"),
    pytest.param("DROP SCHEMA public", "scope-schema", id="drop-public"),
    pytest.param("SET search_path = grade_sync;\nCREATE TABLE t (id bigint)", "scope-search-path",
                 id="search-path-to-other-plugin"),
    pytest.param("CREATE TABLE public.t (id bigint)", "scope-other-schema", id="table-in-public"),
    pytest.param("CREATE TABLE pg_catalog.t (id bigint)", "scope-other-schema", id="table-in-pg-catalog"),
    pytest.param("SELECT * FROM pg_catalog.pg_authid", "scope-other-schema", id="read-pg-authid"),
    pytest.param("INSERT INTO grade_sync.synced_grades (external_id) VALUES ('x')", "scope-other-schema",
                 id="write-other-plugin"),
    pytest.param("CREATE VIEW quiz.v AS SELECT * FROM grade_sync.synced_grades", "scope-other-schema",
                 id="view-on-other-plugin"),
    pytest.param("ALTER TABLE quiz.quizzes SET SCHEMA grade_sync", "scope-other-schema", id="move-to-other-plugin"),
    pytest.param("ALTER SYSTEM SET log_statement = 'none'", "scope-database", id="alter-system"),
    pytest.param("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION quiz.f()", "scope-database",
                 id="event-trigger"),
    pytest.param("CREATE DATABASE evil", "scope-database", id="create-database"),
    pytest.param("ALTER DATABASE tenant_riverside_academy SET search_path = public", "scope-database",
                 id="alter-database"),
    pytest.param("CREATE TABLESPACE evil LOCATION '/tmp'", "scope-database", id="create-tablespace"),
    pytest.param("CREATE PUBLICATION p FOR ALL TABLES", "scope-database", id="publication"),
    pytest.param("CREATE CAST (text AS bigint) WITH INOUT", "scope-database", id="create-cast"),
]


@pytest.mark.parametrize(("statement", "rule"), ESCAPES)
def test_an_escaping_statement_is_rejected_by_the_gate_and_fails_on_the_server(tenant, statement, rule):
    box, quiz = tenant

    assert rule in {f.rule for f in check_sql(statement + ";\n", "quiz")}
    failure = run_sql(box.conninfo(quiz), statement)
    assert failure is not None, f"PostgreSQL let the plugin's role run: {statement}"
    assert failure.sqlstate[:2] in ("42", "0L", "3F", "55", "0A", "22"), failure


# The server allows these to the plugin's role, inside what it owns; the gate still rejects them
# (sharing with PUBLIC, owner-privilege functions, a role-wide search_path): run and rolled back.
GATE_ONLY = [
    pytest.param("GRANT SELECT ON quiz.quizzes TO PUBLIC", "scope-privilege", id="grant-own-table-to-public"),
    pytest.param("GRANT USAGE ON SCHEMA quiz TO PUBLIC", "scope-privilege", id="grant-own-schema-to-public"),
    pytest.param("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC", "scope-privilege",
                 id="default-privileges"),
    pytest.param("ALTER ROLE CURRENT_USER SET search_path = public", "scope-role", id="role-search-path"),
    pytest.param("SET search_path = public", "scope-search-path", id="search-path"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
                 "scope-security-definer", id="security-definer"),
    pytest.param("DROP SCHEMA quiz CASCADE", "scope-schema", id="drop-own-schema"),
    pytest.param("SELECT count(*) FROM pg_catalog.pg_class", "scope-other-schema", id="read-catalog"),
]


@pytest.mark.parametrize(("statement", "rule"), GATE_ONLY)
def test_a_statement_the_server_allows_inside_the_plugins_own_objects_is_still_rejected_by_the_gate(
        tenant, statement, rule):
    box, quiz = tenant

    assert rule in {f.rule for f in check_sql(statement + ";\n", "quiz")}
    with psycopg.connect(box.conninfo(quiz)) as conn, conn.transaction(force_rollback=True):
        conn.execute(statement.encode())  # no error: only the gate stops it


# --- render migrations check ------------------------------------------------------------------


def _leftovers(postgres: str) -> list:
    with psycopg.connect(postgres, autocommit=True) as admin:
        return admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'render_check_%' UNION ALL "
                             "SELECT rolname FROM pg_roles WHERE rolname LIKE 'render_check_%'").fetchall()


def test_the_check_command_applies_the_example_migrations_and_leaves_nothing_behind(postgres, render):
    result = render("migrations", "check", str(EXAMPLE), "--postgres-url", postgres, "--format", "json")

    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["ok"] and report["findings"] == []
    assert {r["file"] for r in report["applied"]} == {
        "catalog/grade-sync/0.9.0/migrations/001_create_grades.sql",
        "catalog/quiz-generator/1.2.0/migrations/001_create_quizzes.sql",
        "catalog/quiz-generator/1.3.0/migrations/002_add_difficulty.sql",
    }
    assert _leftovers(postgres) == []


def test_the_check_command_sends_nothing_to_the_server_when_the_gate_rejects(postgres, render, envs):
    bad = envs / "catalog" / "quiz-generator" / "1.3.0" / "migrations" / "003_escape.sql"
    bad.write_text("-- looks harmless\nSET ROLE postgres;\n")

    result = render("migrations", "check", str(envs / "catalog" / "quiz-generator"), "--postgres-url", postgres)

    assert result.code == 1
    assert "quiz-generator/1.3.0/migrations/003_escape.sql:2: migrations: scope-role: SET ROLE" in result.err
    assert "applied" not in result.out and "Traceback" not in result.err


def test_a_migration_that_fails_on_the_server_is_reported_with_its_file_and_line(postgres, envs):
    path = envs / "catalog" / "quiz-generator" / "1.3.0" / "migrations" / "003_bad.sql"
    path.write_text("ALTER TABLE quiz.quizzes ADD COLUMN IF NOT EXISTS hint text;\n\n"
                    "ALTER TABLE quiz.missing ADD COLUMN IF NOT EXISTS hint text;\n")

    report = check(envs / "catalog" / "quiz-generator", postgres)

    assert not report.ok and report.findings == []
    (last,) = [r for r in report.applied if r.failure]
    assert last.file == "quiz-generator/1.3.0/migrations/003_bad.sql" and last.failure.line == 3
    assert last.failure.sqlstate == "42P01"
    assert _leftovers(postgres) == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        pytest.param("postgresql://nobody:x@127.0.0.1:1/postgres", 3, id="unreachable"),
        pytest.param("not a url", 2, id="malformed"),
    ],
)
def test_a_server_that_cannot_be_used_is_a_clear_error(render, url, code):
    result = render("migrations", "check", str(EXAMPLE), "--postgres-url", url)

    assert result.code == code
    assert "Traceback" not in result.err and result.err.strip()


def test_a_server_role_that_may_not_create_databases_is_an_outside_error_and_leaves_nothing(postgres, render):
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS weak_admin")
        admin.execute("CREATE ROLE weak_admin LOGIN CREATEROLE PASSWORD 'weak'")
    url = postgres.replace(postgres.split("@")[0], "postgresql://weak_admin:weak")

    result = render("migrations", "check", str(EXAMPLE), "--postgres-url", url)

    assert result.code == 3
    assert "may create databases and roles" in result.err and "Traceback" not in result.err
    assert _leftovers(postgres) == []
