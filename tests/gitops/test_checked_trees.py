"""Trees that passed the managed-repo check are recorded by tree id (gitops.checked): a head that
render committed is not walked again, and any other tree still is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renderer.gitops import checked as checked_mod
from renderer.gitops.checked import MAX_TREES, CheckedTrees
from tests.support.git import env_dir, git, render, signing_key  # noqa: F401  (fixtures are used by name)


def _tree_id(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD^{tree}").strip()


@pytest.fixture
def counted(monkeypatch) -> list:
    """Every tree the managed-repo check really walks (the check itself still runs)."""
    calls: list = []
    real = checked_mod.check_managed

    def spy(tree, g, display):
        calls.append(len(tree))
        return real(tree, g, display)

    monkeypatch.setattr(checked_mod, "check_managed", spy)
    return calls


def test_a_tree_render_committed_is_not_checked_again_by_the_next_run(render, env_dir, tmp_path, counted):
    repo, cache = tmp_path / "gitops", tmp_path / "cache"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline",
                  RENDER_CACHE_DIR=str(cache)).code == 0
    assert CheckedTrees(cache).knows(_tree_id(repo))
    before = _tree_id(repo)
    counted.clear()
    again = render("commit", str(env_dir), "--repo", str(repo), "--offline", RENDER_CACHE_DIR=str(cache))
    assert again.code == 0, again.err
    assert counted == [] and _tree_id(repo) == before


def test_a_tree_someone_else_committed_is_checked_and_refused(render, env_dir, tmp_path, counted):
    repo, cache = tmp_path / "gitops", tmp_path / "cache"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline",
                  RENDER_CACHE_DIR=str(cache)).code == 0
    (repo / "dev/plugins/stray.yaml").write_text("kind: ConfigMap\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "someone else's change")
    counted.clear()
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline", RENDER_CACHE_DIR=str(cache))
    assert run.code == 1 and "dev/plugins/stray.yaml" in run.err and "refusing to proceed" in run.err
    assert len(counted) == 1
    assert not CheckedTrees(cache).knows(_tree_id(repo))


def test_no_cache_records_nothing_and_checks_every_time(render, env_dir, tmp_path, counted):
    repo, cache = tmp_path / "gitops", tmp_path / "cache"
    for _ in range(2):
        assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--no-cache",
                      RENDER_CACHE_DIR=str(cache)).code == 0
    assert not (cache / "checked-trees").exists()
    assert [n > 0 for n in counted] == [False, True]  # an empty repo first, then the tree the first run wrote


def test_a_tree_recorded_under_other_rules_is_checked_again(tmp_path, monkeypatch):
    tree_id = "a" * 40
    CheckedTrees(tmp_path).add(tree_id)
    assert CheckedTrees(tmp_path).knows(tree_id)
    monkeypatch.setattr(checked_mod, "MANAGED_RULES", "r-next")
    assert not CheckedTrees(tmp_path).knows(tree_id)


@pytest.mark.parametrize("bad", [
    pytest.param("../../escape", id="a-path"),
    pytest.param("A" * 40, id="upper-case"),
    pytest.param("a" * 39, id="too-short"),
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
])
def test_only_a_tree_id_is_ever_recorded_or_looked_up(tmp_path, bad):
    memo = CheckedTrees(tmp_path)
    memo.add(bad)
    assert not memo.knows(bad)
    assert not list(tmp_path.rglob("*escape*")) and not (memo.root.exists() and any(memo.root.iterdir()))


def test_at_most_max_trees_are_kept_and_the_newest_stay(tmp_path):
    memo = CheckedTrees(tmp_path)
    ids = [f"{i:040x}" for i in range(MAX_TREES + 6)]
    for n, tree_id in enumerate(ids):
        memo.add(tree_id)
        os.utime(memo.root / tree_id, ns=(n * 10**9, n * 10**9))  # distinct ages on any file system
    memo.add(ids[-1])
    assert len(list(memo.root.iterdir())) == MAX_TREES
    assert memo.knows(ids[-1]) and not memo.knows(ids[0])


def test_an_unwritable_cache_only_costs_time(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would go")
    memo = CheckedTrees(blocker)
    memo.add("b" * 40)
    assert not memo.knows("b" * 40)
