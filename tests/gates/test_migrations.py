"""The migration gate, run against the real squawk binary on catalog trees built in tmp_path."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from renderer.gates import migrations
from renderer.core.errors import Finding
from renderer.gates.migrations import (
    MigrationFinding,
    SquawkFailed,
    as_problems,
    check_catalog,
    check_version,
    rollback_floor,
    squawk_path,
    squawk_run_count,
)

INIT = """\
CREATE TABLE IF NOT EXISTS quiz (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question text NOT NULL,
    answer text NOT NULL,
    score bigint DEFAULT 0,
    total bigint GENERATED ALWAYS AS (score * 2) STORED,
    CONSTRAINT quiz_question_key UNIQUE (question)
);
"""

# Two comment lines put each statement on line 3: squawk reports 0-based lines, the gate 1-based.
HEADER = "-- 002: the change under test\n-- (second comment line)\n"


def release(catalog: Path, plugin: str, version: str, files: dict[str, str | bytes]) -> Path:
    """Write catalog/<plugin>/<version>/migrations/<files> and return the migrations folder."""
    mig = catalog / plugin / version / "migrations"
    mig.mkdir(parents=True)
    for name, text in files.items():
        (mig / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return mig


def two_versions(tmp_path: Path, change: str | bytes, name: str = "002_change.sql") -> Path:
    """quiz 1.0.0 with the initial schema, quiz 1.1.0 adding `change`; returns the plugin folder."""
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT, name: change})
    return catalog / "quiz"


def blocking(findings: list[MigrationFinding]) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in findings if f.blocking]


UNSAFE = [
    pytest.param("ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n", "ban-drop-column", 3, id="drop-column"),
    pytest.param("DROP TABLE IF EXISTS quiz;\n", "ban-drop-table", 3, id="drop-table"),
    pytest.param("ALTER TABLE quiz RENAME COLUMN answer TO solution;\n", "renaming-column", 3, id="rename-column"),
    pytest.param("ALTER TABLE quiz RENAME TO quizzes;\n", "renaming-table", 3, id="rename-table"),
    pytest.param("ALTER TABLE quiz ALTER COLUMN score TYPE numeric;\n", "changing-column-type", 3, id="change-type"),
    pytest.param(
        "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS level bigint NOT NULL;\n",
        "adding-required-field",
        3,
        id="add-required-column",
    ),
    pytest.param(
        "ALTER TABLE quiz ALTER COLUMN score SET NOT NULL;\n", "adding-not-nullable-field", 3, id="set-not-null"
    ),
    pytest.param("DROP DATABASE IF EXISTS plugins;\n", "ban-drop-database", 3, id="drop-database"),
    pytest.param("DROP SCHEMA IF EXISTS quiz;\n", "ban-drop-schema", 3, id="drop-schema"),
    pytest.param("DROP VIEW IF EXISTS quiz_public;\n", "ban-drop-view", 3, id="drop-view"),
    pytest.param("DROP FUNCTION IF EXISTS grade(bigint);\n", "ban-drop-function", 3, id="drop-function"),
    pytest.param("DROP TYPE IF EXISTS difficulty;\n", "ban-drop-type", 3, id="drop-type"),
    pytest.param("DROP SEQUENCE IF EXISTS quiz_seq;\n", "ban-drop-sequence", 3, id="drop-sequence"),
    pytest.param("DROP DOMAIN IF EXISTS positive;\n", "ban-drop-domain", 3, id="drop-domain"),
    pytest.param("DROP EXTENSION IF EXISTS pgcrypto;\n", "ban-drop-extension", 3, id="drop-extension"),
    pytest.param(
        "ALTER TABLE quiz DROP CONSTRAINT IF EXISTS quiz_question_key;\n",
        "ban-drop-constraint",
        3,
        id="drop-unique-constraint",
    ),
    pytest.param("ALTER VIEW quiz_public RENAME TO quiz_open;\n", "renaming-object", 3, id="rename-view"),
    pytest.param("ALTER TABLE quiz SET SCHEMA archive;\n", "ban-set-schema", 3, id="move-table"),
    pytest.param("ALTER TABLE quiz ALTER COLUMN score DROP DEFAULT;\n", "ban-drop-default", 3, id="drop-default"),
    pytest.param("ALTER TABLE quiz ALTER COLUMN answer DROP NOT NULL;\n", "ban-drop-not-null", 3, id="drop-not-null"),
    pytest.param("ALTER TABLE quiz ALTER COLUMN id DROP IDENTITY;\n", "ban-alter-identity", 3, id="drop-identity"),
    pytest.param(
        "ALTER TABLE quiz ALTER COLUMN total DROP EXPRESSION;\n",
        "ban-drop-generated-expression",
        3,
        id="drop-generated-expression",
    ),
    pytest.param("REVOKE SELECT ON quiz FROM quiz_reader;\n", "ban-revoke", 3, id="revoke"),
    pytest.param(
        "ALTER TABLE quiz\n    DROP COLUMN IF EXISTS answer;\n", "ban-drop-column", 4, id="drop-column-second-line"
    ),
]


# These statements also leave the plugin's schema: the scope rules reject them too (test_migrations_scope.py).
ALSO_SCOPE = {"ban-drop-database": "scope-database", "ban-drop-schema": "scope-schema",
              "ban-set-schema": "scope-other-schema", "ban-drop-extension": "scope-extension",
              "ban-revoke": "scope-privilege"}


@pytest.mark.parametrize(("statement", "rule", "line"), UNSAFE)
def test_a_change_that_breaks_the_previous_version_is_rejected_at_its_line(tmp_path, statement, rule, line):
    plugin = two_versions(tmp_path, HEADER + statement)

    findings = check_version(plugin, "1.1.0")

    assert blocking(findings) == [(rule, line)] + ([(ALSO_SCOPE[rule], line)] if rule in ALSO_SCOPE else [])
    (bad,) = [f for f in findings if f.blocking and f.rule == rule]
    assert bad.path == plugin / "1.1.0" / "migrations" / "002_change.sql"
    assert "1.0.0" in bad.message and "docs/migrations.md" in bad.message


SAFE = [
    pytest.param("ALTER TABLE quiz ADD COLUMN IF NOT EXISTS hint text;\n", id="add-nullable-column"),
    pytest.param(
        "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS attempts bigint NOT NULL DEFAULT 0;\n",
        id="add-column-with-constant-default",
    ),
    pytest.param(
        "CREATE TABLE IF NOT EXISTS quiz_tag (\n"
        "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    quiz_id bigint NOT NULL REFERENCES quiz (id),\n"
        "    tag text NOT NULL\n);\n",
        id="create-table",
    ),
    pytest.param(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS quiz_answer_idx ON quiz (answer);\n", id="index-concurrently"
    ),
    pytest.param(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS quiz_answer_key ON quiz (answer);\n",
        id="unique-index-concurrently",
    ),
    pytest.param("COMMENT ON COLUMN quiz.answer IS 'read by 1.0.0 only';\n", id="comment"),
    pytest.param(
        "ALTER TABLE quiz ADD CONSTRAINT quiz_score_positive CHECK (score >= 0) NOT VALID;\n", id="check-not-valid"
    ),
    pytest.param("UPDATE quiz SET score = 0 WHERE score IS NULL;\n", id="backfill"),
    pytest.param("ALTER TABLE quiz ALTER COLUMN score SET DEFAULT 1;\n", id="set-default"),
]


@pytest.mark.parametrize("statement", SAFE)
def test_a_change_the_previous_version_survives_passes(tmp_path, statement):
    plugin = two_versions(tmp_path, HEADER + statement)

    findings = check_version(plugin, "1.1.0")

    assert blocking(findings) == []
    assert as_problems(findings, tmp_path) == []


WARNINGS = [
    pytest.param(
        "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS token uuid DEFAULT gen_random_uuid();\n",
        "adding-field-with-default",
        id="volatile-default",
    ),
    pytest.param(
        "CREATE INDEX IF NOT EXISTS quiz_answer_idx ON quiz (answer);\n",
        "require-concurrent-index-creation",
        id="index-not-concurrent",
    ),
    pytest.param("ALTER TABLE quiz ADD COLUMN hint text;\n", "prefer-robust-stmts", id="not-rerunnable"),
    pytest.param("ALTER TABLE quiz ADD COLUMN IF NOT EXISTS level int;\n", "prefer-bigint-over-int", id="int-column"),
    pytest.param("TRUNCATE quiz CASCADE;\n", "ban-truncate-cascade", id="truncate-cascade"),
]


@pytest.mark.parametrize(("statement", "rule"), WARNINGS)
def test_a_finding_about_how_a_migration_runs_is_a_warning_not_a_rejection(tmp_path, statement, rule):
    plugin = two_versions(tmp_path, HEADER + statement)

    findings = check_version(plugin, "1.1.0")

    assert (rule, 3, False) in [(f.rule, f.line, f.blocking) for f in findings]
    assert blocking(findings) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(HEADER + "ALTER TABLE quiz ADD COLUM hint text;\n", id="typo"),
        pytest.param(HEADER + "CREATE TABLE (;\n", id="unbalanced"),
    ],
)
def test_invalid_sql_is_rejected_at_its_line(tmp_path, text):
    plugin = two_versions(tmp_path, text)

    findings = check_version(plugin, "1.1.0")

    assert {(f.rule, f.line) for f in findings if f.blocking} == {("syntax-error", 3)}
    assert all(f.message.startswith("invalid SQL:") for f in findings if f.blocking)


def test_invalid_sql_in_the_first_version_is_rejected_too(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT + "SELEC 1;\n"})

    assert set(blocking(check_version(catalog / "quiz", "1.0.0"))) == {("syntax-error", 9)}


def test_breaking_statements_in_the_first_version_are_only_warnings(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT + "ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n"})

    findings = check_version(catalog / "quiz", "1.0.0")

    assert ("ban-drop-column", 9, False) in [(f.rule, f.line, f.blocking) for f in findings]
    assert blocking(findings) == []


def test_a_rewritten_migration_of_the_previous_version_is_rejected_at_the_changed_line(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT.replace("answer text NOT NULL", "answer text")})

    findings = check_version(catalog / "quiz", "1.1.0")

    assert blocking(findings) == [("migration-rewritten", 4)]
    assert findings[0].path == catalog / "quiz" / "1.1.0" / "migrations" / "001_init.sql"


def test_a_migration_of_the_previous_version_missing_from_the_new_one_is_rejected(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT, "002_hint.sql": "SELECT 1;\n"})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT})

    findings = check_version(catalog / "quiz", "1.1.0")

    assert blocking(findings) == [("migration-removed", 0)]
    assert findings[0].path.name == "002_hint.sql" and "1.0.0" in findings[0].message


def test_a_new_migration_that_sorts_before_an_applied_one_is_rejected(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT, "003_more.sql": "SELECT 1;\n"})
    release(
        catalog,
        "quiz",
        "1.1.0",
        {"001_init.sql": INIT, "003_more.sql": "SELECT 1;\n", "002_late.sql": "SELECT 2;\n"},
    )

    assert blocking(check_version(catalog / "quiz", "1.1.0")) == [("migration-out-of-order", 0)]


def test_a_migration_that_is_not_utf8_is_rejected(tmp_path):
    plugin = two_versions(tmp_path, b"-- caf\xe9\nSELECT 1;\n")

    assert blocking(check_version(plugin, "1.1.0")) == [("encoding", 1)]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("-- squawk-ignore ban-drop-column\nALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n", id="line"),
        pytest.param("-- squawk-ignore-file\nALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n", id="file"),
        pytest.param(
            "/* squawk-ignore-file ban-drop-column */\nALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n", id="block"
        ),
        pytest.param(
            "ALTER TABLE quiz DROP COLUMN IF EXISTS answer; -- squawk-ignore ban-drop-column\n", id="trailing"
        ),
    ],
)
def test_a_squawk_ignore_comment_does_not_lift_the_gate(tmp_path, text):
    plugin = two_versions(tmp_path, text)

    findings = [f for f in check_version(plugin, "1.1.0") if f.blocking]

    assert [f.rule for f in findings] == ["ban-drop-column"]
    assert "squawk-ignore comments do not lift this gate" in findings[0].message


def test_a_squawk_config_in_the_environments_repo_does_not_lift_the_gate(tmp_path, monkeypatch):
    # unique text, so that the in-process memo cannot answer for squawk
    plugin = two_versions(tmp_path, "ALTER TABLE quiz DROP COLUMN IF EXISTS answer; -- repo config\n")
    excluded = 'excluded_rules = ["ban-drop-column"]\n'
    (tmp_path / ".squawk.toml").write_text(excluded)
    (plugin / "1.1.0" / "migrations" / ".squawk.toml").write_text(excluded)
    monkeypatch.chdir(plugin / "1.1.0" / "migrations")

    assert blocking(check_version(plugin, "1.1.0")) == [("ban-drop-column", 1)]


def test_a_squawk_config_above_the_scratch_folder_does_not_lift_the_gate(tmp_path, monkeypatch):
    plugin = two_versions(tmp_path / "env", "ALTER TABLE quiz DROP COLUMN IF EXISTS answer; -- scratch config\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / ".squawk.toml").write_text('excluded_rules = ["ban-drop-column"]\n')
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    assert blocking(check_version(plugin, "1.1.0")) == [("ban-drop-column", 1)]


def test_the_previous_version_is_found_by_semver_not_by_name(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.2.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.9.0", {"001_init.sql": INIT})
    release(
        catalog,
        "quiz",
        "1.10.0",
        {"001_init.sql": INIT, "002_drop.sql": "ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n"},
    )
    release(catalog, "quiz", "2.0.0-rc.1", {"001_init.sql": INIT, "002_drop.sql": "SELECT 1;\n"})

    assert blocking(check_version(catalog / "quiz", "1.10.0")) == [("ban-drop-column", 1)]
    # 2.0.0-rc.1 comes after 1.10.0, whose 002_drop.sql it rewrites
    assert blocking(check_version(catalog / "quiz", "2.0.0-rc.1")) == [("migration-rewritten", 1)]


def bad_history(tmp_path: Path) -> Path:
    """1.0.0 fine, 1.1.0 drops a column, 1.2.0 adds a nullable column on top."""
    catalog = tmp_path / "catalog"
    drop = "ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n"
    add = "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS hint text;\n"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT, "002_drop.sql": drop})
    release(catalog, "quiz", "1.2.0", {"001_init.sql": INIT, "002_drop.sql": drop, "003_add.sql": add})
    release(catalog, "other", "0.1.0", {"001.sql": "CREATE TABLE IF NOT EXISTS other (id bigint PRIMARY KEY);\n"})
    return catalog


def test_only_the_asked_versions_and_their_history_are_checked(tmp_path):
    catalog = bad_history(tmp_path)
    dropped = catalog / "quiz" / "1.1.0" / "migrations" / "002_drop.sql"

    assert [f for f in check_catalog(catalog, [("quiz", "1.0.0")]) if f.blocking] == []
    for asked in ("1.1.0", "1.2.0"):
        found = [(f.path, f.rule) for f in check_catalog(catalog, [("quiz", asked), ("other", "0.1.0")]) if f.blocking]
        assert found == [(dropped, "ban-drop-column")], asked
    assert [(f.path, f.rule) for f in check_catalog(catalog) if f.blocking] == [(dropped, "ban-drop-column")]


def test_without_history_only_the_asked_step_is_checked(tmp_path):
    catalog = bad_history(tmp_path)

    assert [f for f in check_catalog(catalog, [("quiz", "1.2.0")], history=False) if f.blocking] == []


def test_a_pair_that_names_no_catalog_folder_gives_no_findings(tmp_path):
    catalog = bad_history(tmp_path)

    assert check_catalog(catalog, [("quiz", "9.9.9"), ("missing", "1.0.0"), ("quiz", "../quiz")]) == []


def test_ten_thousand_installs_of_one_version_run_squawk_once(tmp_path):
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS unique_to_this_test_1 text;\n")
    before = squawk_run_count()

    first = check_catalog(plugin.parent, [("quiz", "1.1.0")] * 10_000, history=False)
    for _ in range(100):
        assert check_version(plugin, "1.1.0") == first

    assert squawk_run_count() == before + 1


def test_changed_bytes_are_linted_again(tmp_path):
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN IF NOT EXISTS unique_to_this_test_2 text;\n")
    check_version(plugin, "1.1.0")
    before = squawk_run_count()
    (plugin / "1.1.0" / "migrations" / "002_change.sql").write_text("DROP TABLE IF EXISTS quiz;\n")

    assert blocking(check_version(plugin, "1.1.0")) == [("ban-drop-table", 1)]
    assert squawk_run_count() == before + 1


def test_blocking_findings_become_problems_relative_to_the_environments_repo(tmp_path):
    plugin = two_versions(tmp_path, HEADER + "ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n")

    problems = as_problems(check_version(plugin, "1.1.0"), tmp_path)

    assert [(p.path, p.line, p.field) for p in problems] == [
        ("catalog/quiz/1.1.0/migrations/002_change.sql", 3, "migrations: ban-drop-column")
    ]
    assert isinstance(problems[0], Finding)
    assert str(problems[0]).startswith("catalog/quiz/1.1.0/migrations/002_change.sql:3: migrations: ban-drop-column: ")


# --- the contract step (docs/migrations.md) ------------------------------------------------------

STOP_READING = "COMMENT ON COLUMN quiz.answer IS 'unused since 1.1.0';\n"
CONTRACT = (
    "-- contract-since: 1.1.0\n"
    "-- 1.1.0 and later neither read nor write quiz.answer\n"
    "ALTER TABLE quiz DROP COLUMN IF EXISTS answer;\n"
)


def expand_contract(tmp_path: Path, contract: str) -> Path:
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT, "002_stop.sql": STOP_READING})
    release(catalog, "quiz", "1.2.0", {"001_init.sql": INIT, "002_stop.sql": STOP_READING, "003_drop.sql": contract})
    return catalog / "quiz"


def test_a_contract_step_after_the_version_that_stopped_using_the_column_passes(tmp_path):
    plugin = expand_contract(tmp_path, CONTRACT)

    findings = check_version(plugin, "1.2.0")

    assert blocking(findings) == []
    (drop,) = [f for f in findings if f.rule == "ban-drop-column"]
    assert drop.line == 3 and "contract-since: 1.1.0" in drop.message


def test_a_contract_step_in_the_version_right_after_the_one_that_still_uses_the_column_is_rejected(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT, "003_drop.sql": CONTRACT})

    findings = check_version(catalog / "quiz", "1.1.0")

    assert blocking(findings) == [("contract-too-early", 1), ("ban-drop-column", 3)]


def test_a_malformed_contract_marker_is_rejected_and_waives_nothing(tmp_path):
    plugin = expand_contract(tmp_path, CONTRACT.replace("contract-since: 1.1.0", "contract-since: soon"))

    assert blocking(check_version(plugin, "1.2.0")) == [("contract-marker", 1), ("ban-drop-column", 3)]


def test_a_contract_marker_covers_only_its_own_file(tmp_path):
    catalog = tmp_path / "catalog"
    release(catalog, "quiz", "1.0.0", {"001_init.sql": INIT})
    release(catalog, "quiz", "1.1.0", {"001_init.sql": INIT, "002_stop.sql": STOP_READING})
    release(
        catalog,
        "quiz",
        "1.2.0",
        {
            "001_init.sql": INIT,
            "002_stop.sql": STOP_READING,
            "003_drop.sql": CONTRACT,
            "004_other.sql": "DROP TABLE IF EXISTS quiz;\n",
        },
    )

    findings = check_version(catalog / "quiz", "1.2.0")

    assert [(f.path.name, f.rule) for f in findings if f.blocking] == [("004_other.sql", "ban-drop-table")]


def test_the_rollback_floor_is_the_newest_contract_marker_in_the_history(tmp_path):
    plugin = expand_contract(tmp_path, CONTRACT)
    files = {"001_init.sql": INIT, "002_stop.sql": STOP_READING, "003_drop.sql": CONTRACT}
    release(plugin.parent, "quiz", "1.3.0", files)

    assert rollback_floor(plugin, "1.1.0") is None
    assert rollback_floor(plugin, "1.2.0") == "1.1.0"
    assert rollback_floor(plugin, "1.3.0") == "1.1.0"


# --- squawk itself -------------------------------------------------------------------------------


def test_squawk_is_found_next_to_the_running_python():
    assert squawk_path() == str(Path(sys.executable).parent / "squawk")


def test_a_missing_squawk_is_an_error_that_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(SquawkFailed) as err:
        squawk_path()
    assert "squawk-cli" in err.value.hint and err.value.exit_code == 70  # an installation problem of render


def test_every_blocking_rule_is_a_rule_this_squawk_knows(tmp_path):
    # squawk rejects unknown names given to --include: a renamed or removed rule would silently
    # never fire, so the list is checked against the installed binary.
    import subprocess

    (tmp_path / "x.sql").write_text("SELECT 1;\n")
    proc = subprocess.run(
        [squawk_path(), "--reporter", "json", "--include", ",".join(sorted(migrations.BLOCKING_RULES)), "x.sql"],
        cwd=tmp_path,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr.decode()
