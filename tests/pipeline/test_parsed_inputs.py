"""Parsed inputs (``pipeline.parsedinputs``): a file whose bytes parsed and validated in an earlier
run is not composed again, and gives exactly the inputs, models and line numbers a parse gives; a
file with a problem is never recorded; a row that does not read back, a database that is not one,
and rows of other code are misses (the file is parsed), replaced when the run records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from renderer.core import codeid
from renderer.core.errors import InputError
from renderer.pipeline import load as load_module
from renderer.pipeline import parsedinputs
from renderer.pipeline.load import load
from renderer.pipeline.parsedinputs import ParsedInputs, _plain
from renderer.pipeline.plan import plan

TENANT = "dev/tenants/riverside-academy/tenant.yaml"


@pytest.fixture
def composed(monkeypatch) -> list:
    """The files composed by LibYAML (``load_document`` calls), in order."""
    calls: list = []
    real = load_module.load_document
    monkeypatch.setattr(load_module, "load_document", lambda raw: (calls.append(raw), real(raw))[1])
    return calls


def _rows(cache: Path) -> list[tuple]:
    con = sqlite3.connect(cache / "parsed-inputs" / parsedinputs.VERSION / parsedinputs.DATABASE)
    try:
        return con.execute("SELECT code, model, sha, doc FROM docs ORDER BY model, sha").fetchall()
    finally:
        con.close()


def _write(cache: Path, statement: str, *args) -> None:
    con = sqlite3.connect(cache / "parsed-inputs" / parsedinputs.VERSION / parsedinputs.DATABASE)
    try:
        con.execute(statement, args)
        con.commit()
    finally:
        con.close()


def test_a_second_run_composes_no_recorded_file_and_loads_exactly_the_same_inputs(envs, tmp_path, composed):
    plain = load(envs)
    first = load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    assert first == plain and composed
    composed.clear()
    second = load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    assert composed == []
    assert second == plain  # models, documents (data and every field's line) and hashes
    assert {m for _, m, _, _ in _rows(tmp_path / "cache")} >= {"Tenant", "PluginInstall", "Platform", "Plugin", "Publisher"}


def test_a_problem_found_after_loading_names_the_same_line_from_a_recorded_file(envs, tmp_path):
    path = envs / TENANT
    path.write_text(path.read_text().replace("cpu: ", "cpu: 1m\n    # was: ", 1))
    problems = []
    for _ in range(2):  # recorded, then read back
        with pytest.raises(InputError) as caught:
            plan(load(envs, parsed=ParsedInputs(tmp_path / "cache")), "0" * 64)
        problems.append([(p.path, p.line, p.field) for p in caught.value.problems])
    with pytest.raises(InputError) as caught:
        plan(load(envs), "0" * 64)
    assert problems[0] == problems[1] == [(p.path, p.line, p.field) for p in caught.value.problems]
    assert any(p[0] == TENANT and p[1] > 1 for p in problems[1])


def test_a_file_with_a_problem_is_never_recorded_and_says_the_same_each_run(envs, tmp_path, composed):
    path = envs / TENANT
    path.write_text(path.read_text().replace("tier:", "tier: [", 1))
    found = []
    for _ in range(2):
        inputs = load(envs, parsed=ParsedInputs(tmp_path / "cache"))
        found.append([p for p in inputs.problems if p.path == TENANT])
    assert found[0] == found[1] and found[0]
    assert composed.count(path.read_bytes()) == 2


@pytest.mark.parametrize("damage", [
    pytest.param("not json", id="not-json"),
    pytest.param('{"data": 1}', id="another-shape"),
    pytest.param('[{"apiVersion": "plugins.adapstory.io/v1"}, []]', id="data-the-model-refuses"),
    pytest.param('[{}, [[["spec"], "7"]]]', id="a-line-not-a-number"),
    pytest.param('[{}, [[[["spec"]], 7]]]', id="a-path-of-lists"),
])
def test_a_row_that_does_not_read_back_is_a_miss_the_file_is_parsed_and_the_row_written_again(
        envs, tmp_path, composed, damage):
    load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    _write(tmp_path / "cache", "UPDATE docs SET doc = ? WHERE model = 'Tenant'", damage.encode())
    composed.clear()
    again = load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    tenants = [raw for raw in composed if b"kind: Tenant" in raw]
    assert again == load(envs)
    assert tenants and len(tenants) == len({t.tenant.sha256 for e in again.environments for t in e.tenants})
    assert all(doc != damage.encode() for _, model, _, doc in _rows(tmp_path / "cache") if model == "Tenant")


def test_a_file_that_is_not_the_database_is_a_miss_and_replaced(envs, tmp_path, composed):
    db = tmp_path / "cache" / "parsed-inputs" / parsedinputs.VERSION / parsedinputs.DATABASE
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database at all" * 100)
    assert load(envs, parsed=ParsedInputs(tmp_path / "cache")) == load(envs)
    assert _rows(tmp_path / "cache")
    composed.clear()
    load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    assert composed == []


def test_rows_of_other_code_are_not_read_and_are_removed_when_a_run_records(envs, tmp_path, composed, monkeypatch):
    load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    monkeypatch.setattr(parsedinputs, "code_digest", lambda: "f" * 64)
    composed.clear()
    load(envs, parsed=ParsedInputs(tmp_path / "cache"))
    assert composed  # the other code's rows were not used
    assert {code for code, _, _, _ in _rows(tmp_path / "cache")} == {"f" * 64}


def test_the_code_digest_changes_with_any_module_of_the_renderer(tmp_path, monkeypatch):
    package = tmp_path / "renderer"
    (package / "core").mkdir(parents=True)
    (package / "core" / "yamlio.py").write_text("x = 1\n")
    monkeypatch.setattr(codeid, "_PACKAGE", package)
    before = parsedinputs.code_digest()
    (package / "core" / "yamlio.py").write_text("x = 2\n")
    assert parsedinputs.code_digest() != before


@pytest.mark.parametrize("value, plain", [
    pytest.param({"a": [1, 2.5, "x", True, None]}, True, id="json-values"),
    pytest.param({"a": float("nan")}, False, id="nan"),
    pytest.param({"a": float("inf")}, False, id="infinity"),
    pytest.param({1: "x"}, False, id="a-number-key"),
    pytest.param({"a": (1, 2)}, False, id="a-tuple"),
    pytest.param({"when": __import__("datetime").date(2024, 1, 1)}, False, id="a-date"),
    pytest.param({"a": b"bytes"}, False, id="bytes"),
])
def test_only_data_json_gives_back_exactly_is_recorded(value, plain):
    assert _plain(value, 0) is plain


def test_a_build_without_the_kept_index_records_nothing(envs, tmp_path, render, monkeypatch):
    monkeypatch.setenv("RENDER_CACHE_DIR", str(tmp_path / "cache"))
    assert render("build", envs, "--out", tmp_path / "out", "--offline").code == 0
    assert not (tmp_path / "cache" / "parsed-inputs").exists()
