"""The kept index (pipeline.keptindex): a bundle the target holds with exactly the files render
wrote and checked for the same plan is kept without rendering it; anything else is rendered.

The content ids here are sha256 of the bytes (``flows.commit`` gives git blob ids; the pipeline
does not care which). The target's files are a dict, as a GitOps repo's tree would list them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from renderer.pipeline.build import BuildRequest, build
from renderer.pipeline.holds import Held
from renderer.core.yamlio import parse_rendered
from renderer.gates.schemas import SchemaStore
from renderer.pipeline.keptindex import KeptIndex
from renderer.pipeline.validate import bundle_facts, facts_from_json
from tests.conftest import EXAMPLE

BUNDLE = "dev/plugins/riverside-academy/grade-sync"


def _id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _target(out: Path) -> dict[str, tuple]:
    """{bundle path: ((file name, id), ...)} of a build output, as a repo tree would give them."""
    ids: dict[str, list] = {}
    for f in sorted(out.glob("*/plugins/*/*/*")):
        ids.setdefault(f.parent.relative_to(out).as_posix(), []).append((f.name, _id(f.read_bytes())))
    return {path: tuple(sorted(items)) for path, items in ids.items()}


def _request(out: Path, cache: Path, target: dict, env_dir: Path = EXAMPLE, **kw) -> BuildRequest:
    return BuildRequest(env_dir=env_dir, out=out, offline=True, cache_dir=cache, jobs=1,
                        content_ids=lambda plans: {p.path: target[p.path] for p in plans if p.path in target},
                        content_id=_id, **kw)


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
    assert len(list((cache / "kept-bundles").rglob("*.json"))) == 9


def test_a_target_holding_exactly_what_render_wrote_is_kept_without_rendering_and_gives_the_same_argocd_files(
        first, tmp_path):
    out, cache, _ = first
    target = _target(out)
    again = tmp_path / "again"
    result = build(_request(again, cache, target))
    assert sorted(result.unchanged) == sorted(target)
    assert result.unchanged[BUNDLE] == target[BUNDLE]
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
    envs = tmp_path / "environments"
    shutil.copytree(EXAMPLE, envs)
    install = envs / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    result = build(_request(tmp_path / "again", cache, _target(out), env_dir=envs))
    assert BUNDLE not in result.unchanged and len(result.unchanged) == 8


def test_other_gates_do_not_trust_the_index_written_under_the_policies(first, tmp_path):
    out, cache, _ = first
    result = build(_request(tmp_path / "again", cache, _target(out), policy_gate=False))
    assert result.unchanged == {}


def test_a_held_bundle_is_never_kept_through_the_index(first, tmp_path):
    out, cache, _ = first
    files = tuple(sorted((f.name, f.read_bytes()) for f in (out / BUNDLE).iterdir()))
    install = (EXAMPLE / "dev/tenants/riverside-academy/plugins/grade-sync.yaml").read_bytes()
    held = {BUNDLE: Held(files, "sha256:" + hashlib.sha256(install).hexdigest(), "", "0" * 40, "rollback")}
    result = build(_request(tmp_path / "again", cache, _target(out), held=held))
    assert BUNDLE not in result.unchanged


def test_without_a_cache_folder_nothing_is_kept_through_the_index(first, tmp_path):
    out, _, _ = first
    assert build(_request(tmp_path / "again", None, _target(out))).unchanged == {}


@pytest.mark.parametrize("damage", [
    pytest.param(lambda doc: b"{not json", id="not-json"),
    pytest.param(lambda doc: json.dumps({**doc, "facts": {"bundle": BUNDLE}}).encode(), id="facts-of-another-shape"),
    pytest.param(lambda doc: json.dumps({**doc, "application": ["../../escape.yaml", "x"]}).encode(),
                 id="application-file-elsewhere"),
    pytest.param(lambda doc: json.dumps({**doc, "input": "sha256:" + "1" * 64}).encode(), id="other-inputs"),
    pytest.param(lambda doc: json.dumps({**doc, "objects": 0}).encode(), id="no-objects"),
    pytest.param(lambda doc: b" " * (300 << 10), id="too-big"),
])
def test_an_index_entry_that_does_not_read_back_is_a_miss_and_is_written_again(first, tmp_path, damage):
    out, cache, _ = first
    target = _target(out)
    entries = {json.loads(p.read_bytes())["facts"]["bundle"]: p for p in (cache / "kept-bundles").rglob("*.json")}
    entry = entries[BUNDLE]
    good = entry.read_bytes()
    entry.write_bytes(damage(json.loads(good)))
    result = build(_request(tmp_path / "again", cache, target))
    assert BUNDLE not in result.unchanged and len(result.unchanged) == 8
    assert entry.read_bytes() == good, "the rendered bundle's entry is written again"


def test_facts_read_back_from_the_index_are_the_facts_computed_from_the_files(first):
    out, cache, _ = first
    assert KeptIndex(cache).root == cache / "kept-bundles" / "v1"
    docs = [json.loads(p.read_bytes()) for p in (cache / "kept-bundles").rglob("*.json")]
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


def test_the_index_stays_bounded_keeping_the_entries_of_the_run_that_overflowed_it(first, tmp_path, monkeypatch):
    out, cache, _ = first
    from renderer.pipeline import keptindex
    monkeypatch.setattr(keptindex, "MAX_ENTRIES", 12)
    folder = next((cache / "kept-bundles" / "v1").iterdir())
    for i in range(5):  # entries of bundles seen before (older versions)
        (folder / "00").mkdir(exist_ok=True)
        (folder / "00" / f"{i:064x}.json").write_text("{}")
    envs = tmp_path / "environments"
    shutil.copytree(EXAMPLE, envs)
    install = envs / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    build(_request(tmp_path / "again", cache, _target(out), env_dir=envs))
    left = list(folder.rglob("*.json"))
    assert len(left) == 1, "over the bound: only the entry this run wrote stays"
    assert json.loads(left[0].read_bytes())["facts"]["bundle"] == BUNDLE


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
