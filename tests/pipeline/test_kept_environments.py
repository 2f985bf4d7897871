"""Kept environments (pipeline.keptenv): an environment whose bundles, plans and files are the ones
of a run that passed every gate takes its AppProject and root Application from that run's record,
without auditing or rendering them again; any other run computes them (and records them).

The target is a dict of content ids, as in test_kept_index (sha256 of the bytes here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from renderer.pipeline import keptenv
from renderer.pipeline.build import build
from renderer.pipeline.keptenv import KeptEnvironments
from tests.pipeline.test_kept_index import BUNDLE, _changed_install, _held_at, _request, _target, first  # noqa: F401  (fixtures are used by name)


def _env_files(out: Path) -> dict[str, bytes]:
    return {f.relative_to(out).as_posix(): f.read_bytes() for pattern in ("*/argocd/*", "*/bootstrap/*")
            for f in sorted(out.glob(pattern))}


def _records(cache: Path) -> list[Path]:
    folder = cache / "kept-environments" / keptenv.VERSION
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def test_a_first_run_computes_the_environment_files_and_records_them(first):
    out, cache, result = first
    assert result.kept_environments == []
    assert len(_records(cache)) == len({p.split("/")[0] for p in _target(out)}) >= 1


def test_a_run_whose_bundles_are_all_kept_takes_the_environment_files_from_the_record_and_they_are_the_same(
        first, tmp_path):
    out, cache, _ = first
    again = tmp_path / "again"
    result = build(_request(again, cache, _target(out)))
    envs = sorted({p.split("/")[0] for p in _target(out)})
    assert result.kept_environments == envs
    assert {**_env_files(again), **result.unchanged_apps} == _env_files(out)


def test_a_run_that_renders_a_bundle_with_the_same_files_again_still_takes_the_record(first, tmp_path):
    out, cache, _ = first
    shutil.rmtree(cache / "kept-bundles")  # the kept index lost: every bundle is rendered, to the same files
    again = tmp_path / "again"
    result = build(_request(again, cache, _target(out)))
    assert result.unchanged == {} and result.kept_environments != []
    assert _env_files(again) == _env_files(out)


def test_a_changed_install_makes_its_environment_files_computed_again(first, tmp_path):
    out, cache, _ = first
    envs = _changed_install(tmp_path)
    again = tmp_path / "again"
    result = build(_request(again, cache, _target(out), env_dir=envs))
    assert "dev" not in result.kept_environments
    fresh = tmp_path / "fresh"
    build(_request(fresh, None, {}, env_dir=envs))
    assert {**_env_files(again), **result.unchanged_apps} == _env_files(fresh)


def test_a_file_changed_at_the_target_is_rendered_again_to_the_bundle_the_record_was_made_with(first, tmp_path):
    out, cache, _ = first
    target = _target(out)
    name, _ = target[BUNDLE][0]
    target[BUNDLE] = tuple((n, "0" * 64 if n == name else i) for n, i in target[BUNDLE])
    again = tmp_path / "again"
    result = build(_request(again, cache, target))
    assert BUNDLE not in result.unchanged and "dev" in result.kept_environments
    assert (again / BUNDLE / name).read_bytes() == (out / BUNDLE / name).read_bytes()
    assert {**_env_files(again), **result.unchanged_apps} == _env_files(out)


def test_a_bundle_held_at_other_files_makes_its_environment_files_computed_again(first, tmp_path):
    out, cache, _ = first
    earlier = _changed_install(tmp_path)  # the bundle as render wrote it for another install (held there)
    build(_request(tmp_path / "earlier", None, {}, env_dir=earlier))
    files = tuple(sorted((f.name, f.read_bytes()) for f in (tmp_path / "earlier" / BUNDLE).iterdir()))
    held = _held_at(files)
    result = build(_request(tmp_path / "again", cache, _target(out), held=held))
    assert BUNDLE in result.held and "dev" not in result.kept_environments


def test_other_gates_do_not_use_the_records_written_under_the_policies(first, tmp_path):
    out, cache, _ = first
    assert build(_request(tmp_path / "again", cache, _target(out), policy_gate=False)).kept_environments == []


def test_without_a_cache_folder_no_record_is_read_or_written(first, tmp_path):
    out, _, _ = first
    result = build(_request(tmp_path / "again", None, _target(out)))
    assert result.kept_environments == []


def test_an_only_run_neither_reads_nor_writes_records(tmp_path):
    cache = tmp_path / "cache"
    result = build(_request(tmp_path / "out", cache, {}, only="riverside-academy/grade-sync"))
    assert result.kept_environments == [] and _records(cache) == []


@pytest.mark.parametrize("damage", [
    pytest.param(lambda doc: b"not json", id="not-json"),
    pytest.param(lambda doc: b"[]", id="not-an-object"),
    pytest.param(lambda doc: doc.replace(b'"dev/bootstrap"', b'"dev/elsewhere"'), id="another-folder"),
    pytest.param(lambda doc: doc.replace(b'"appproject-', b'"../appproject-'), id="a-path-for-a-name"),
    pytest.param(lambda doc: doc.replace(b'"appproject-', b'"configmap-'), id="a-name-render-does-not-write-there"),
    pytest.param(lambda doc: doc[: len(doc) // 2], id="cut-short"),
])
def test_a_record_that_does_not_read_back_is_a_miss_and_is_written_again(first, tmp_path, damage):
    out, cache, _ = first
    record = next(p for p in _records(cache) if b'"dev/argocd"' in p.read_bytes())
    record.write_bytes(damage(record.read_bytes()))
    again = tmp_path / "again"
    result = build(_request(again, cache, _target(out)))
    assert "dev" not in result.kept_environments
    assert {**_env_files(again), **result.unchanged_apps} == _env_files(out)
    assert "dev" in build(_request(tmp_path / "third", cache, _target(out))).kept_environments, "written again"


def test_a_record_is_only_taken_for_its_own_environment(tmp_path):
    records = KeptEnvironments(tmp_path)
    key = "a" * 64
    records.put(key, {"dev/argocd": [("appproject-plugins.yaml", b"x: 1\n")],
                      "dev/bootstrap": [("application-root.yaml", b"y: 2\n")]})
    assert records.get(key, "dev") == {"dev/argocd": [("appproject-plugins.yaml", b"x: 1\n")],
                                       "dev/bootstrap": [("application-root.yaml", b"y: 2\n")]}
    assert records.get(key, "prod") is None


def test_at_most_max_records_are_kept_the_least_recently_written_others_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(keptenv, "MAX_RECORDS", 2)
    records = KeptEnvironments(tmp_path)
    files = {"dev/argocd": [("appproject-plugins.yaml", b"x\n")], "dev/bootstrap": [("application-root.yaml", b"y\n")]}
    for i, key in enumerate(("a" * 64, "b" * 64, "c" * 64)):
        records.put(key, files)
        os.utime(records.root / key, ns=(i * 10**9, i * 10**9))
    assert sorted(p.name for p in records.root.iterdir()) == ["b" * 64, "c" * 64]
