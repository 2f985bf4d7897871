"""The kept index (pipeline.keptindex): a bundle the target holds with exactly the files render
wrote and checked for the same plan is kept without rendering it; anything else is rendered.

The ids here are sha256 (a file's of its bytes, a folder's of its (name, file id) pairs;
``flows.commit`` gives git blob and tree ids: the pipeline does not care which). The target's files
are a dict, as a GitOps repo's tree would list them."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from renderer.pipeline.build import BuildRequest, build
from renderer.pipeline.holds import Held
from renderer.core.yamlio import parse_rendered
from renderer.gates.schemas import SchemaStore
from renderer.pipeline import keptindex
from renderer.pipeline.keptindex import KeptIndex
from renderer.pipeline.audit import bundle_facts, facts_from_json
from tests.conftest import EXAMPLE

BUNDLE = "dev/plugins/riverside-academy/grade-sync"


def _id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder(items: tuple) -> str:
    """A folder's id from its ((file name, id), ...) (``flows.commit`` gives git tree ids)."""
    return hashlib.sha256("".join(f"{name}\0{oid}\n" for name, oid in sorted(items)).encode()).hexdigest()


def _target(out: Path) -> dict[str, tuple]:
    """{bundle path: ((file name, id), ...)} of a build output, as a repo tree would give them."""
    ids: dict[str, list] = {}
    for f in sorted(out.glob("*/plugins/*/*/*")):
        ids.setdefault(f.parent.relative_to(out).as_posix(), []).append((f.name, _id(f.read_bytes())))
    return {path: tuple(sorted(items)) for path, items in ids.items()}


def _request(out: Path, cache: Path, target: dict, env_dir: Path = EXAMPLE, **kw) -> BuildRequest:
    return BuildRequest(env_dir=env_dir, out=out, offline=True, cache_dir=cache, jobs=1,
                        folder_ids=lambda plans: {p.path: _folder(target[p.path]) for p in plans if p.path in target},
                        folder_id=lambda files: _folder(tuple((name, _id(data)) for name, data in files)), **kw)


def _db(cache: Path) -> Path:
    return cache / "kept-bundles" / "v3" / "index.sqlite"


def _sql(cache: Path, statement: str, *args) -> list:
    """Runs one statement on the kept index's database (committed) and returns its rows."""
    with closing(sqlite3.connect(_db(cache), isolation_level=None)) as con:
        return con.execute(statement, args).fetchall()


def _rows(cache: Path) -> dict[str, tuple]:
    """bundle path -> (gates digest, key, document) of each entry."""
    return {json.loads(doc)["facts"]["bundle"]: (digest, key, doc)
            for digest, key, doc in _sql(cache, "SELECT digest, key, doc FROM entries")}


def _argocd(out: Path) -> dict[str, bytes]:
    return {f.relative_to(out).as_posix(): f.read_bytes() for f in sorted(out.glob("*/argocd/*"))}


@pytest.fixture
def first(tmp_path):
    """A first run (nothing at the target): renders everything and fills the kept index."""
    out, cache = tmp_path / "first", tmp_path / "cache"
    result = build(_request(out, cache, {}))
    return out, cache, result


def test_a_first_run_renders_every_bundle_and_records_each_in_the_kept_index(first):
    out, cache, result = first
    assert result.unchanged == {} and result.bundles == 9
    assert len(_rows(cache)) == 9
    assert not list((cache / "kept-bundles").rglob("*.json")), "no file per entry"


def test_a_target_holding_exactly_what_render_wrote_is_kept_without_rendering_and_gives_the_same_argocd_files(
        first, tmp_path):
    out, cache, _ = first
    target = _target(out)
    again = tmp_path / "again"
    result = build(_request(again, cache, target))
    assert sorted(result.unchanged) == sorted(target)
    assert result.unchanged[BUNDLE] == _folder(target[BUNDLE])
    assert result.bundles == 9 and result.objects == build(_request(tmp_path / "x", None, {})).objects
    assert not list(again.glob("*/plugins/*/*")), "kept bundles are not written again"
    assert len(result.unchanged_apps) == 9 and not any("/application-" in f for f in _argocd(again)), \
        "a kept bundle's Application is returned, not written"
    assert {**_argocd(again), **result.unchanged_apps} == _argocd(out), \
        "Applications and AppProject from the index equal the rendered ones"


def test_one_file_changed_at_the_target_makes_that_bundle_rendered_again_and_only_that_one(first, tmp_path):
    out, cache, _ = first
    target = _target(out)
    name, _ = target[BUNDLE][3]
    target[BUNDLE] = tuple((n, _id(b"tampered") if n == name else i) for n, i in target[BUNDLE])
    result = build(_request(tmp_path / "again", cache, target))
    assert BUNDLE not in result.unchanged and len(result.unchanged) == 8
    assert (tmp_path / "again" / BUNDLE / name).read_bytes() == (out / BUNDLE / name).read_bytes()


def test_an_extra_file_at_the_target_is_not_kept(first, tmp_path):
    out, cache, _ = first
    target = _target(out)
    target[BUNDLE] = tuple(sorted(target[BUNDLE] + (("configmap-extra.yaml", _id(b"x")),)))
    assert BUNDLE not in build(_request(tmp_path / "again", cache, target)).unchanged


def test_a_changed_install_is_rendered_again_though_its_old_files_are_in_the_index(first, tmp_path):
    out, cache, _ = first
    envs = _changed_install(tmp_path)
    result = build(_request(tmp_path / "again", cache, _target(out), env_dir=envs))
    assert BUNDLE not in result.unchanged and len(result.unchanged) == 8


def test_other_gates_do_not_trust_the_index_written_under_the_policies(first, tmp_path):
    out, cache, _ = first
    result = build(_request(tmp_path / "again", cache, _target(out), policy_gate=False))
    assert result.unchanged == {}


def test_a_held_bundle_is_never_kept_through_the_index(first, tmp_path):
    out, cache, _ = first
    files = tuple(sorted((f.name, f.read_bytes()) for f in (out / BUNDLE).iterdir()))
    held = _held_at(files)
    result = build(_request(tmp_path / "again", cache, _target(out), held=held))
    assert BUNDLE not in result.unchanged


def test_without_a_cache_folder_nothing_is_kept_through_the_index(first, tmp_path):
    out, _, _ = first
    assert build(_request(tmp_path / "again", None, _target(out))).unchanged == {}


@pytest.mark.parametrize("damage", [
    pytest.param(lambda doc, other: b"{not json", id="not-json"),
    pytest.param(lambda doc, other: json.dumps({**doc, "facts": {"bundle": BUNDLE}}).encode(),
                 id="facts-of-another-shape"),
    pytest.param(lambda doc, other: json.dumps({**doc, "application": ["../../escape.yaml", "x"]}).encode(),
                 id="application-file-elsewhere"),
    pytest.param(lambda doc, other: json.dumps({**doc, "input": "sha256:" + "1" * 64}).encode(), id="other-inputs"),
    pytest.param(lambda doc, other: json.dumps({**doc, "objects": 0}).encode(), id="no-objects"),
    pytest.param(lambda doc, other: json.dumps(doc).encode() + b" " * (300 << 10), id="too-big"),
    pytest.param(lambda doc, other: other, id="another-bundles-row"),
    pytest.param(lambda doc, other: json.dumps(doc), id="text-not-bytes"),
    pytest.param(lambda doc, other: 7, id="a-number"),
    pytest.param(lambda doc, other: b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
])
def test_an_index_entry_that_does_not_read_back_is_a_miss_and_is_written_again(first, tmp_path, damage):
    out, cache, _ = first
    target = _target(out)
    rows = _rows(cache)
    _, key, good = rows[BUNDLE]
    other = next(doc for path, (_, _, doc) in rows.items() if path != BUNDLE)
    _sql(cache, "UPDATE entries SET doc = ? WHERE key = ?", damage(json.loads(good), other), key)
    result = build(_request(tmp_path / "again", cache, target))
    assert BUNDLE not in result.unchanged and len(result.unchanged) == 8
    assert _sql(cache, "SELECT doc FROM entries WHERE key = ?", key) == [(good,)], \
        "the rendered bundle's entry is written again"


def _not_a_database(db: Path) -> None:
    db.unlink()
    db.write_bytes(b"SQLite format 2\0" + b"x" * 4096)


def _other_tables(db: Path) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as con:
        con.execute("DROP TABLE entries")
        con.execute("CREATE TABLE entries (digest TEXT, key TEXT, doc TEXT)")


def _no_tables(db: Path) -> None:
    db.unlink()
    db.write_bytes(b"")


@pytest.mark.parametrize("damage", [
    pytest.param(_not_a_database, id="not-a-database"),
    pytest.param(_other_tables, id="tables-of-another-shape"),
    pytest.param(_no_tables, id="an-empty-file"),
])
def test_an_index_file_that_is_not_the_index_is_a_miss_for_every_bundle_and_replaced_by_the_next_run(
        first, tmp_path, damage):
    out, cache, _ = first
    target = _target(out)
    for suffix in ("-wal", "-shm"):
        Path(f"{_db(cache)}{suffix}").unlink(missing_ok=True)
    damage(_db(cache))
    result = build(_request(tmp_path / "again", cache, target))
    assert result.unchanged == {} and result.bundles == 9
    assert len(_rows(cache)) == 9, "the next put replaced it with the index"
    assert len(build(_request(tmp_path / "third", cache, target)).unchanged) == 9


@pytest.mark.parametrize("block", [
    pytest.param(lambda cache: cache.joinpath("kept-bundles").mkdir(parents=True) or
                 cache.joinpath("kept-bundles", "v3").write_text("a file"), id="its-folder-is-a-file"),
    pytest.param(lambda cache: _db(cache).mkdir(parents=True), id="the-database-is-a-folder"),
])
def test_an_index_that_cannot_be_written_costs_a_render_and_never_an_error(tmp_path, block):
    cache = tmp_path / "cache"
    block(cache)
    result = build(_request(tmp_path / "first", cache, {}))
    assert result.bundles == 9 and result.unchanged == {}
    target = _target(tmp_path / "first")
    assert build(_request(tmp_path / "again", cache, target)).unchanged == {}, "nothing was recorded"


def test_a_database_locked_by_another_run_costs_time_and_records_nothing(first, tmp_path, monkeypatch):
    out, cache, _ = first
    target = _target(out)
    monkeypatch.setattr(keptindex, "BUSY_SECONDS", 0.2)
    before = _sql(cache, "SELECT key, run FROM entries ORDER BY key")
    with closing(sqlite3.connect(_db(cache), isolation_level=None)) as other:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")  # readers wait too
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE digests SET used = used")
        result = build(_request(tmp_path / "again", cache, target))
        assert result.unchanged == {} and result.bundles == 9
    assert _sql(cache, "SELECT key, run FROM entries ORDER BY key") == before, "nothing recorded, nothing lost"


def test_a_run_keeps_its_bundles_while_another_run_writes_and_records_nothing_when_it_waited_too_long(
        first, tmp_path, monkeypatch):
    out, cache, _ = first
    target = _target(out)
    monkeypatch.setattr(keptindex, "BUSY_SECONDS", 0.2)
    envs = _changed_install(tmp_path)
    with closing(sqlite3.connect(_db(cache), isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # a writer: WAL readers are not blocked
        other.execute("UPDATE digests SET used = used")
        result = build(_request(tmp_path / "again", cache, target, env_dir=envs))
        assert len(result.unchanged) == 8 and BUNDLE not in result.unchanged
    assert len(_rows(cache)) == 9, "the changed bundle's entry was not recorded"


def _builds(out: Path, cache: Path, runs: int) -> None:
    for i in range(runs):
        build(_request(out / str(i), cache, {}))


def test_two_runs_writing_the_index_at_once_neither_fail_nor_corrupt_it(tmp_path):
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("fork")
    runs = [ctx.Process(target=_builds, args=(tmp_path / name, cache, 3)) for name in ("a", "b")]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert [run.exitcode for run in runs] == [0, 0]
    assert _sql(cache, "PRAGMA integrity_check") == [("ok",)]
    assert _sql(cache, "PRAGMA journal_mode") == [("wal",)]
    assert len(_rows(cache)) == 9
    assert len(build(_request(tmp_path / "again", cache, _target(tmp_path / "a" / "0"))).unchanged) == 9


@pytest.mark.parametrize("chunk", [pytest.param(500, id="one-chunk"), pytest.param(2, id="chunks-of-two")])
def test_the_bundles_of_a_target_are_looked_up_in_one_query_per_gates_digest_and_chunk(
        first, tmp_path, monkeypatch, chunk):
    out, cache, _ = first
    monkeypatch.setattr(keptindex, "CHUNK", chunk)
    statements: list[str] = []
    connect = keptindex._connect

    def traced(path):  # the real connection, its statements recorded
        con = connect(path)
        con.set_trace_callback(statements.append)
        return con

    monkeypatch.setattr(keptindex, "_connect", traced)
    result = build(_request(tmp_path / "again", cache, _target(out)))
    assert len(result.unchanged) == 9
    per_digest = [n for (n,) in _sql(cache, "SELECT count(*) FROM entries GROUP BY digest")]
    lookups = [s for s in statements if s.startswith("SELECT key,")]
    assert len(lookups) == sum(-(-n // chunk) for n in per_digest), \
        "one query per gates digest (and chunk), none per bundle, none again after verification"


def test_facts_read_back_from_the_index_are_the_facts_computed_from_the_files(first):
    out, cache, _ = first
    assert KeptIndex(cache).root == cache / "kept-bundles" / "v3"
    docs = [json.loads(doc) for _, _, doc in _rows(cache).values()]
    assert len(docs) == 9
    for doc in docs:
        folder = out / doc["facts"]["bundle"]
        objects = [(f.name, parse_rendered(f.read_text())[0]) for f in sorted(folder.glob("*.yaml"))
                   if f.name != "kustomization.yaml"]
        assert facts_from_json(doc["facts"]) == bundle_facts(doc["facts"]["bundle"], objects)


def test_a_schema_that_changes_changes_the_gates_digest(tmp_path):
    kinds = [("kyverno.io/v1", "Policy"), ("v1", "Namespace")]
    base = SchemaStore("1.33").digest(kinds)
    shipped = Path(SchemaStore("1.33").schema_source("kyverno.io/v1", "Policy"))
    loc = tmp_path / "schemas"
    (loc / "kyverno.io").mkdir(parents=True)
    doc = json.loads(shipped.read_text())
    doc["description"] = "changed"
    (loc / "kyverno.io" / shipped.name).write_text(json.dumps(doc))
    template = str(loc) + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    assert SchemaStore("1.33").digest(kinds) == base, "the same schemas give the same digest"
    assert SchemaStore("1.33", [template]).digest(kinds) != base
    assert SchemaStore("1.33", ignore_missing=True).digest(kinds) != base


def _held_at(files: tuple) -> dict:
    """BUNDLE held (a rollback) at ``files``, for the example's own grade-sync install."""
    install = (EXAMPLE / "dev/tenants/riverside-academy/plugins/grade-sync.yaml").read_bytes()
    return {BUNDLE: Held(files, "sha256:" + hashlib.sha256(install).hexdigest(), "", "0" * 40, "rollback")}


def _changed_install(tmp_path: Path) -> Path:
    envs = tmp_path / "environments"
    shutil.copytree(EXAMPLE, envs)
    install = envs / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    return envs


def test_the_index_stays_bounded_keeping_the_entries_of_the_run_that_overflowed_it(first, tmp_path, monkeypatch):
    out, cache, _ = first
    monkeypatch.setattr(keptindex, "MAX_ENTRIES", 12)
    digest = _rows(cache)[BUNDLE][0]
    for i in range(5):  # entries of bundles seen before (older versions)
        _sql(cache, "INSERT INTO entries VALUES (?, ?, 0, ?)", digest, f"{i:064x}", b"{}")
    build(_request(tmp_path / "again", cache, _target(out), env_dir=_changed_install(tmp_path)))
    left = _sql(cache, "SELECT doc FROM entries WHERE digest = ?", digest)
    assert len(left) == 1, "over the bound: only the entry this run wrote stays"
    assert json.loads(left[0][0])["facts"]["bundle"] == BUNDLE


def test_at_most_eight_gates_digests_are_kept_the_least_recently_used_others_deleted(first, tmp_path):
    out, cache, _ = first
    mine = {digest for digest, _, _ in _rows(cache).values()}
    _sql(cache, "UPDATE digests SET used = 100")
    olds = [f"{i:064x}" for i in range(1, 11)]
    for i, old in enumerate(olds):  # used at 1 .. 10: the oldest go first
        _sql(cache, "INSERT INTO digests VALUES (?, ?)", old, i + 1)
        _sql(cache, "INSERT INTO entries VALUES (?, ?, 0, ?)", old, "0" * 64, b"{}")
    build(_request(tmp_path / "again", cache, _target(out), env_dir=_changed_install(tmp_path)))
    kept = {digest for (digest,) in _sql(cache, "SELECT digest FROM digests")}
    assert len(kept) == keptindex.MAX_FOLDERS == 8
    assert mine <= kept and kept - mine == set(olds[-(8 - len(mine)):])
    assert {digest for (digest,) in _sql(cache, "SELECT DISTINCT digest FROM entries")} == kept


def test_a_gates_digest_whose_bundles_are_kept_is_marked_used(first, tmp_path):
    out, cache, _ = first
    _sql(cache, "UPDATE digests SET used = 1")
    assert len(build(_request(tmp_path / "again", cache, _target(out))).unchanged) == 9
    assert all(used > 1 for (used,) in _sql(cache, "SELECT used FROM digests"))


@pytest.mark.parametrize("version, leftover", [
    pytest.param("v1", ("a" * 64, "00", f"{'0' * 64}.json"), id="the-file-per-entry-index"),
    pytest.param("v2", ("index.sqlite",), id="the-index-keyed-by-each-files-id"),
])
def test_an_index_of_an_earlier_version_is_removed_when_the_index_is_written(tmp_path, version, leftover):
    cache = tmp_path / "cache"
    old = cache.joinpath("kept-bundles", version, *leftover)
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    build(_request(tmp_path / "first", cache, {}))
    assert not (cache / "kept-bundles" / version).exists() and len(_rows(cache)) == 9


def test_the_gates_digest_does_not_depend_on_where_the_schemas_are_installed(tmp_path):
    kinds = [("kyverno.io/v1", "Policy")]
    shipped = Path(SchemaStore("1.33").schema_source(*kinds[0]))
    loc = tmp_path / "elsewhere"
    (loc / "kyverno.io").mkdir(parents=True)
    shutil.copy(shipped, loc / "kyverno.io" / shipped.name)
    template = str(loc) + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    elsewhere = SchemaStore("1.33", [template])
    assert elsewhere.schema_source(*kinds[0]) != str(shipped)
    assert elsewhere.digest(kinds) == SchemaStore("1.33").digest(kinds)
