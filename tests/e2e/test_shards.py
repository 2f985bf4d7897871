"""Scale-out by shards: `render build --shard I/N` renders whole tenants by a stable hash and leaves
a facts file; `render build|commit --from-shards DIR...` joins N shards, checks them as one
environment and writes or commits once. Everything runs the real CLI on real files and a real
git repository; nothing is mocked."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
from collections import defaultdict
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO, tree_digest
from renderer import cli
from renderer.core import layout
from renderer.core.yamlio import parse_rendered
from renderer.pipeline.shards import FACTS_FILE, Shard, shard_of
from renderer.pipeline.audit import bundle_facts

N = 3
GENERATED = 30  # bundles of the generated `bench` environment: 10 tenants x 3 plugins


def _generate(dest: Path, bundles: int) -> Path:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(dest, bundles)


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three environments (the examples' dev and prod, and a generated one of 10 tenants), one
    unsharded build, N shard builds, and a GitOps repo committed from the unsharded run."""
    tmp = tmp_path_factory.mktemp("shards")
    envs = _generate(tmp / "environments", GENERATED)
    for env in ("dev", "prod"):
        shutil.copytree(EXAMPLE / env, envs / env)
    code, _, err = run("build", envs, "--out", tmp / "full", "--offline", "-q")
    assert code == 0, err
    for i in range(1, N + 1):
        code, _, err = run("build", envs, "--out", tmp / f"shard-{i}", "--shard", f"{i}/{N}", "--offline", "-q")
        assert code == 0, err
    code, _, err = run("commit", envs, "--repo", tmp / "repo", "--init", "--offline", "-q")
    assert code == 0, err
    return tmp


def shards(world: Path, *indexes: int) -> list[Path]:
    return [world / f"shard-{i}" for i in (indexes or range(1, N + 1))]


def facts(shard: Path) -> dict:
    return json.loads((shard / FACTS_FILE).read_text())


def copy_shards(world: Path, tmp_path: Path) -> list[Path]:
    out = []
    for src in shards(world):
        shutil.copytree(src, tmp_path / src.name)
        out.append(tmp_path / src.name)
    return out


class TestAssignment:
    def test_a_tenant_goes_to_the_shard_its_env_and_id_hash_to_and_nowhere_else(self):
        assert shard_of("dev", "riverside-academy", 4) == shard_of("dev", "riverside-academy", 4)
        assert {shard_of("dev", f"t{i}", 4) for i in range(200)} == {1, 2, 3, 4}
        # the same tenant id in another environment is another tenant: the pair is hashed
        assert [shard_of("dev", f"t{i}", 8) for i in range(40)] != [shard_of("prod", f"t{i}", 8) for i in range(40)]

    def test_adding_tenants_moves_no_existing_tenant_to_another_shard(self):
        before = {f"t{i}": shard_of("bench", f"t{i}", 4) for i in range(100)}
        after = {f"t{i}": shard_of("bench", f"t{i}", 4) for i in range(150)}
        assert all(after[t] == s for t, s in before.items())

    @pytest.mark.parametrize("text", [
        pytest.param("0/4", id="index-zero"),
        pytest.param("5/4", id="index-past-n"),
        pytest.param("1/0", id="n-zero"),
        pytest.param("two/4", id="not-a-number"),
        pytest.param("1-4", id="no-slash"),
    ])
    def test_a_shard_that_is_not_i_of_n_is_a_usage_error(self, text, tmp_path):
        code, out, err = run("build", EXAMPLE, "--out", tmp_path / "out", "--shard", text, "--offline")
        assert code == 2 and "--shard" in err and repr(text) in err and out == ""
        assert not (tmp_path / "out").exists()
        with pytest.raises(ValueError):
            Shard.parse(text)

    def test_each_shard_renders_whole_tenants_and_the_shards_together_render_each_bundle_once(self, world):
        owner: dict[str, int] = {}
        tenants: dict[tuple, set] = defaultdict(set)
        for i, shard in enumerate(shards(world), start=1):
            doc = facts(shard)
            assert (doc["index"], doc["count"], doc["shard"]) == (i, N, f"{i}/{N}")
            on_disk = {p.relative_to(shard).as_posix() for p in shard.glob("*/plugins/*/*")}
            assert on_disk == set(doc["bundles"])
            for path in doc["bundles"]:
                key = layout.parse_bundle(path)
                assert path not in owner and shard_of(key.env, key.tenant, N) == i
                owner[path] = i
                tenants[(key.env, key.tenant)].add(i)
        full = {p.relative_to(world / "full").as_posix() for p in (world / "full").glob("*/plugins/*/*")}
        assert set(owner) == full and len(full) == GENERATED + 9
        assert all(len(s) == 1 for s in tenants.values())
        assert len(set(owner.values())) == N  # the generated tenants spread over every shard

    def test_a_shard_holds_its_bundles_applications_and_facts_but_no_appproject_or_root(self, world):
        for shard in shards(world):
            doc = facts(shard)
            assert not list(shard.glob("*/bootstrap")) and not list(shard.glob("*/argocd/appproject-*"))
            apps = {p.relative_to(shard).as_posix() for p in shard.glob("*/argocd/*")}
            assert apps == {f"{p.split('/')[0]}/argocd/{e['application']}" for p, e in doc["bundles"].items()}
            for path, entry in doc["bundles"].items():
                objects = [(f.name, parse_rendered(f.read_text())[0]) for f in sorted((shard / path).glob("*.yaml"))
                           if f.name != "kustomization.yaml"]
                assert entry["facts"] == json.loads(json.dumps(bundle_facts(path, objects)))
            assert doc["environments"] == ["bench", "dev", "prod"]
            assert doc["inputsDigest"] == facts(shards(world)[0])["inputsDigest"]


class TestJoin:
    def test_the_joined_shards_are_byte_for_byte_the_unsharded_build(self, world, tmp_path):
        code, out, err = run("build", world / "environments", "--from-shards", *shards(world), "--out",
                             tmp_path / "joined", "--offline", "--format", "json")
        assert code == 0, err
        assert json.loads(out)["bundles"] == GENERATED + 9
        assert tree_digest(tmp_path / "joined") == tree_digest(world / "full")
        assert list((tmp_path / "joined").glob("*/argocd/appproject-*"))  # written by the join

    def test_a_commit_from_shards_is_the_same_tree_as_a_rendered_commit_and_then_unchanged(self, world, tmp_path):
        repo = tmp_path / "repo"
        code, _, err = run("commit", world / "environments", "--repo", repo, "--init", "--from-shards",
                           *shards(world), "--offline", "-q")
        assert code == 0, err
        assert git(repo, "rev-parse", "HEAD^{tree}") == git(world / "repo", "rev-parse", "HEAD^{tree}")
        head = git(repo, "rev-parse", "HEAD")
        code, out, err = run("commit", world / "environments", "--repo", repo, "--from-shards", *shards(world),
                             "--offline", "--format", "json")
        assert code == 0 and json.loads(out)["unchanged"] is True, err
        assert git(repo, "rev-parse", "HEAD") == head

    def test_the_shards_can_be_given_in_any_order(self, world, tmp_path):
        code, _, err = run("build", world / "environments", "--from-shards", *reversed(shards(world)), "--out",
                           tmp_path / "joined", "--offline", "-q")
        assert code == 0, err
        assert tree_digest(tmp_path / "joined") == tree_digest(world / "full")


def _drop_shard(world, dirs, envs):
    return dirs[:-1], f"shard {N}/{N} missing: give all {N} shard outputs"


def _duplicate_shard(world, dirs, envs):
    return [dirs[0], dirs[0], dirs[1]], f"shard 1/{N} is given twice"


def _other_n(world, dirs, envs):
    other = dirs[0].parent / "two-1"
    code, _, err = run("build", envs, "--out", other, "--shard", "1/2", "--offline", "-q")
    assert code == 0, err
    return [other, *dirs[1:]], "all shards must be of one N"


def _other_inputs(world, dirs, envs):
    install = envs / "dev" / "tenants" / "riverside-academy" / "plugins" / "grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    return dirs, "planned from other inputs than ENV_DIR"


def _a_bundle(dirs) -> tuple[Path, str]:
    for d in dirs:
        doc = facts(d)
        for path in doc["bundles"]:
            if path.startswith("bench/"):
                return d, path
    raise AssertionError("no bench bundle")


def _tampered_file(world, dirs, envs):
    d, path = _a_bundle(dirs)
    f = next((d / path).glob("deployment-*.yaml"))
    f.write_text(f.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))
    return dirs, "do not match bundle.json's filesDigest"


def _tampered_file_and_digest(world, dirs, envs):
    """A careful forger rewrites filesDigest too: the policy gate (no cached verdict for these
    bytes) still sees the object."""
    from renderer.pipeline.render import files_digest
    d, path = _a_bundle(dirs)
    f = next((d / path).glob("deployment-*.yaml"))
    f.write_text(f.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))
    meta_path = d / path / "bundle.json"
    files = [(p.name, p.read_bytes()) for p in (d / path).iterdir()]
    meta = json.loads(meta_path.read_text())
    meta["filesDigest"] = files_digest(files)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return dirs, "runAsNonRoot"


def _tampered_facts(world, dirs, envs):
    d, path = _a_bundle(dirs)
    doc = facts(d)
    doc["bundles"][path]["facts"]["claims"] = []
    (d / FACTS_FILE).write_text(json.dumps(doc))
    return dirs, "records other isolation facts than its files show"


def _wrong_shard(world, dirs, envs):
    d, path = _a_bundle(dirs)
    other = next(x for x in dirs if x != d)
    shutil.move(str(d / path), str(other / path))
    doc, odoc = facts(d), facts(other)
    odoc["bundles"][path] = doc["bundles"].pop(path)
    (d / FACTS_FILE).write_text(json.dumps(doc))
    (other / FACTS_FILE).write_text(json.dumps(odoc))
    return dirs, f"belongs to shard {facts(d)['shard']}, not {odoc['shard']}"


def _appproject_in_shard(world, dirs, envs):
    shutil.copy(next((world / "full").glob("bench/argocd/appproject-*")), dirs[0] / "bench" / "argocd")
    return dirs, "the AppProject and the audit belong to the join"


def _unlisted_bundle(world, dirs, envs):
    d, path = _a_bundle(dirs)
    doc = facts(d)
    del doc["bundles"][path]
    (d / FACTS_FILE).write_text(json.dumps(doc))
    return dirs, f"not a bundle listed in {FACTS_FILE}"


def _stray_file(world, dirs, envs):
    d, path = _a_bundle(dirs)
    (d / path.split("/")[0] / "plugins" / "notes.txt").write_text("hello\n")
    return dirs, "not a tenant folder of bundles"


def _not_json(world, dirs, envs):
    (dirs[1] / FACTS_FILE).write_text("{not json")
    return dirs, f"{dirs[1] / FACTS_FILE}:1: -: not JSON"


def _not_a_shard(world, dirs, envs):
    return [world / "full", *dirs[1:]], f"{world / 'full' / FACTS_FILE}: -: missing: not a shard output"


REFUSALS = [
    pytest.param(_drop_shard, id="a-missing-shard"),
    pytest.param(_duplicate_shard, id="a-duplicated-shard"),
    pytest.param(_other_n, id="shards-of-different-n"),
    pytest.param(_other_inputs, id="shards-of-other-inputs"),
    pytest.param(_tampered_file, id="a-tampered-bundle-file"),
    pytest.param(_tampered_file_and_digest, id="a-tampered-bundle-with-a-forged-files-digest"),
    pytest.param(_tampered_facts, id="a-facts-file-that-lies"),
    pytest.param(_wrong_shard, id="a-bundle-in-the-wrong-shard"),
    pytest.param(_appproject_in_shard, id="an-appproject-inside-a-shard"),
    pytest.param(_unlisted_bundle, id="a-bundle-the-facts-file-does-not-list"),
    pytest.param(_stray_file, id="a-stray-file-among-the-tenants"),
    pytest.param(_not_json, id="a-facts-file-that-is-not-json"),
    pytest.param(_not_a_shard, id="a-folder-that-is-not-a-shard"),
]


class TestRefusals:
    @pytest.mark.parametrize("spoil", REFUSALS)
    def test_a_spoiled_set_of_shards_is_refused_and_nothing_is_committed(self, spoil, world, tmp_path):
        envs = tmp_path / "environments"
        shutil.copytree(world / "environments", envs)
        repo = tmp_path / "repo"
        shutil.copytree(world / "repo", repo)
        head = git(repo, "rev-parse", "HEAD")
        dirs, message = spoil(world, copy_shards(world, tmp_path), envs)
        code, out, err = run("commit", envs, "--repo", repo, "--from-shards", *dirs, "--offline")
        assert code == 1, err
        assert message in err and "Traceback" not in err and out == ""
        assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""

    @pytest.mark.parametrize("spoil", [REFUSALS[0], REFUSALS[4], REFUSALS[6]])
    def test_a_spoiled_set_of_shards_writes_no_output_folder(self, spoil, world, tmp_path):
        envs = tmp_path / "environments"
        shutil.copytree(world / "environments", envs)
        dirs, message = spoil(world, copy_shards(world, tmp_path), envs)
        code, out, err = run("build", envs, "--from-shards", *dirs, "--out", tmp_path / "joined", "--offline",
                             "--format", "json")
        doc = json.loads(out)
        assert code == 1 and doc["exit"] == 1 and any(message in json.dumps(f) for f in doc["findings"])
        assert not (tmp_path / "joined").exists() and err == ""

    @pytest.mark.parametrize("argv", [
        pytest.param(["--shard", "1/2", "--from-shards", "x"], id="shard-and-from-shards"),
        pytest.param(["--shard", "1/2", "--only", "riverside-academy/grade-sync"], id="shard-and-only"),
        pytest.param(["--from-shards", "x", "--only", "riverside-academy/grade-sync"], id="from-shards-and-only"),
    ])
    def test_flags_that_contradict_a_shard_are_a_usage_error(self, argv, tmp_path):
        code, _, err = run("build", EXAMPLE, "--out", tmp_path / "out", "--offline", *argv)
        assert code == 2 and "--" in err and not (tmp_path / "out").exists()
