"""Recorded migration verdicts (gates/migration_verdicts.py): the same findings as the gate, without
running it again, and never for a folder that changed, holds a link, or a record that does not
read back. Real squawk and pglast compute every verdict that is recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from renderer.gates import migration_verdicts, migrations, sqlscope
from renderer.gates.migrations import check_catalog
from tests.gates.test_migrations import HEADER, INIT, release, two_versions

REPO = Path(__file__).resolve().parents[2]


def records(cache: Path) -> list[Path]:
    return sorted((cache / "migration-verdicts" / "v1").glob("*.json"))


@pytest.fixture
def gate_gone(monkeypatch):
    """The gate's own checks fail loudly: only a recorded verdict can answer."""
    def gone(*_a, **_k):
        raise AssertionError("the gate ran")
    monkeypatch.setattr(sqlscope, "check_sql", gone)
    monkeypatch.setattr(migrations, "lint", gone)
    monkeypatch.setattr(migrations, "_memo", {})


CATALOGS = [
    pytest.param({"1.0.0": {"001_init.sql": INIT},
                  "1.1.0": {"001_init.sql": INIT, "002_change.sql": HEADER + "ALTER TABLE quiz DROP COLUMN answer;\n"}},
                 id="a-blocking-squawk-finding"),
    pytest.param({"1.0.0": {"001_init.sql": INIT},
                  "1.1.0": {"001_init.sql": INIT, "002_change.sql": "ALTER TABLE quiz ADD COLUMN note text;\n"}},
                 id="a-safe-change"),
    pytest.param({"1.0.0": {"001_init.sql": INIT}, "1.1.0": {"001_init.sql": INIT + "-- edited\n"}},
                 id="a-rewritten-migration"),
    pytest.param({"1.0.0": {"001_init.sql": INIT, "002_b.sql": "SELECT 1;\n"}, "1.1.0": {"001_init.sql": INIT}},
                 id="a-removed-migration"),
    pytest.param({"1.0.0": {"001_init.sql": INIT, "003_c.sql": "SELECT 1;\n"},
                  "1.1.0": {"001_init.sql": INIT, "003_c.sql": "SELECT 1;\n", "002_b.sql": "SELECT 2;\n"}},
                 id="a-migration-out-of-order"),
    pytest.param({"1.0.0": {"001_init.sql": INIT}, "1.1.0": {"001_init.sql": INIT, "002_x.sql": b"SELECT '\xff';\n"}},
                 id="a-migration-not-utf8"),
    pytest.param({"1.0.0": {"001_init.sql": INIT}, "1.1.0": {"001_init.sql": INIT, "002_x.sql": "SELEC 1;\n"}},
                 id="invalid-sql"),
    pytest.param({"1.0.0": {"001_init.sql": INIT + "GRANT ALL ON SCHEMA public TO PUBLIC;\n"}},
                 id="a-scope-escape-in-the-first-version"),
]


@pytest.mark.parametrize("versions", CATALOGS)
def test_a_recorded_verdict_gives_the_findings_the_gate_gave(tmp_path, monkeypatch, versions):
    catalog, cache = tmp_path / "catalog", tmp_path / "cache"
    for version, files in versions.items():
        release(catalog, "quiz", version, files)
    wanted = [("quiz", v) for v in versions]
    computed = check_catalog(catalog, wanted, cache_dir=cache)
    assert computed, "every case has a finding to keep"
    assert len(records(cache)) == len(versions)

    def gone(*_a, **_k):
        raise AssertionError("the gate ran")
    monkeypatch.setattr(sqlscope, "check_sql", gone)
    monkeypatch.setattr(migrations, "lint", gone)
    monkeypatch.setattr(migrations, "check_version", gone)

    assert check_catalog(catalog, wanted, cache_dir=cache) == computed


def test_without_a_cache_folder_nothing_is_recorded_and_the_gate_runs(tmp_path, gate_gone):
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN note text;\n")
    with pytest.raises(AssertionError, match="the gate ran"):
        check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=None)


def test_a_changed_migration_is_checked_again(tmp_path):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN note text;\n")
    assert not [f for f in check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache) if f.blocking]
    (plugin / "1.1.0" / "migrations" / "002_change.sql").write_text("DROP TABLE quiz;\n")

    found = check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)

    assert [(f.rule, f.path.name) for f in found if f.blocking] == [("ban-drop-table", "002_change.sql")]


def test_a_change_of_the_manifest_s_schema_is_checked_again(tmp_path):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, "CREATE TABLE quiz_v2.answers (id int);\n")
    first = check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)
    assert any(f.rule.startswith("scope-") for f in first), "another schema than the plugin's own"
    for version in ("1.0.0", "1.1.0"):
        (plugin / version / "plugin.yaml").write_text("spec:\n  database:\n    schema: quiz_v2\n")

    again = check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)

    assert not any(f.rule.startswith("scope-") for f in again)


def test_another_squawk_binary_starts_afresh(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN note text;\n")
    check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)
    other = tmp_path / "bin" / "squawk"
    other.parent.mkdir()
    shutil.copy2(migrations.squawk_path(), other)
    other.write_bytes(other.read_bytes() + b"\0")  # another build: other size
    monkeypatch.setattr(migrations, "squawk_path", lambda: str(other))
    before = migrations.squawk_run_count()
    monkeypatch.setattr(migrations, "_memo", {})

    check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)

    assert migrations.squawk_run_count() == before + 2, "both versions linted again"
    assert len(records(cache)) == 4, "two versions, each under both binaries"


@pytest.mark.parametrize("link", [
    pytest.param(lambda plugin: os.symlink("001_init.sql", plugin / "1.1.0" / "migrations" / "003_link.sql"),
                 id="a-link-among-the-migrations"),
    pytest.param(lambda plugin: os.symlink(plugin / "1.0.0", plugin / "1.2.0"), id="a-version-folder-that-is-a-link"),
    pytest.param(lambda plugin: os.mkfifo(plugin / "1.1.0" / "migrations" / "003_fifo.sql"), id="a-fifo"),
])
def test_a_plugin_folder_holding_anything_but_folders_and_files_is_never_recorded(tmp_path, link):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN note text;\n")
    link(plugin)

    check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)

    assert records(cache) == []


def test_a_plugin_folder_beyond_the_bounds_is_never_recorded(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, "ALTER TABLE quiz ADD COLUMN note text;\n")
    monkeypatch.setattr(migration_verdicts, "MAX_FILES", 2)  # the folder holds three

    check_catalog(plugin.parent, [("quiz", "1.1.0")], cache_dir=cache)

    assert records(cache) == []


DAMAGES = [
    pytest.param(lambda doc, raw: b"{not json", id="not-json"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "key": "0" * 64}).encode(), id="another-key"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": {}}).encode(), id="findings-not-a-list"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": [["1.1.0/x.sql", 1, "r", "m"]]}).encode(),
                 id="a-finding-of-four"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": [["../../etc/x.sql", 1, "r", "m", True]]}).encode(),
                 id="a-path-outside-the-plugin-folder"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": [["/etc/x.sql", 1, "r", "m", True]]}).encode(),
                 id="an-absolute-path"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": [["1.1.0/x.sql", "1", "r", "m", True]]}).encode(),
                 id="a-line-that-is-text"),
    pytest.param(lambda doc, raw: json.dumps({**doc, "findings": [["1.1.0/x.sql", 1, "r", "m", 1]]}).encode(),
                 id="blocking-not-a-boolean"),
    pytest.param(lambda doc, raw: raw + b" " * (migration_verdicts.MAX_RECORD_BYTES + 1), id="too-big"),
    pytest.param(lambda doc, raw: b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_record_that_does_not_read_back_is_a_miss_and_is_written_again(tmp_path, damage):
    cache = tmp_path / "cache"
    plugin = two_versions(tmp_path, HEADER + "ALTER TABLE quiz DROP COLUMN answer;\n")
    computed = check_catalog(plugin.parent, [("quiz", "1.1.0")], history=False, cache_dir=cache)
    (record,) = records(cache)
    good = record.read_bytes()
    record.write_bytes(damage(json.loads(good), good))

    assert check_catalog(plugin.parent, [("quiz", "1.1.0")], history=False, cache_dir=cache) == computed
    assert record.read_bytes() == good


def test_the_records_stay_bounded(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(migration_verdicts, "MAX_RECORDS", 2)
    catalog = tmp_path / "catalog"
    for i in range(4):
        release(catalog, f"p{i}", "1.0.0", {"001_init.sql": INIT + f"-- plugin {i}\n"})

    check_catalog(catalog, [(f"p{i}", "1.0.0") for i in range(4)], cache_dir=cache)

    assert len(records(cache)) == 2


def test_a_run_whose_verdicts_are_recorded_loads_no_sql_parser_and_runs_no_squawk(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    env = {**os.environ, "RENDER_CACHE_DIR": str(cache)}
    probe = ("import sys; from renderer.cli.main import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "from renderer.gates import squawk\n"
             "print('pglast' in sys.modules, squawk.squawk_run_count(), file=sys.stderr)\n")
    args = [sys.executable, "-c", probe, "build", str(REPO / "environments"), "--out", str(out), "--offline", "--quiet"]

    first = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    second = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO, timeout=300)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stderr.split()[-2:] == ["True", "3"], first.stderr  # the example catalog: three versions with migrations
    assert second.stderr.split()[-2:] == ["False", "0"], second.stderr
    assert records(cache)
