"""Moving a checked-out branch of a local repository and its working tree (``Workspace.publish``),
against real git repositories: one whole-tree pass fewer when the index is fresh, the same result
and the same refusals when it is not (a copied or touched tree, a file edited under the run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from renderer.core.errors import RefusingToProceed
from renderer.gitops import JOURNAL
from renderer.gitops import worktree
from renderer.gitops.git import GitFailed
from renderer.gitops.workspace import workspace
from tests.support.git import git

OLD = {"README.md": "hello\n", "dev/plugins/t/a/kustomization.yaml": "a: 1\n", "dev/plugins/t/a/gone.yaml": "x\n",
       "dev/plugins/t/b/kustomization.yaml": "b: 1\n", "prod/argocd/app.yaml": "app\n"}
NEW = {"README.md": "hello\n", "dev/plugins/t/a/kustomization.yaml": "a: 2\n",
       "dev/plugins/t/b/kustomization.yaml": "b: 1\n", "dev/plugins/t/c/new.yaml": "c: 1\n",
       "prod/argocd/app.yaml": "app\n"}


def files_of(repo: Path) -> dict[str, str]:
    return {p.relative_to(repo).as_posix(): p.read_text() for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts}


@pytest.fixture
def seed(tmp_path) -> tuple[Path, str, str]:
    """A repository whose main (checked out) is at OLD, and a commit NEW on top of it not yet on any branch."""
    repo = tmp_path / "seed"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    for path, text in OLD.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    old = git(repo, "rev-parse", "HEAD").strip()
    scratch = tmp_path / "scratch"
    shutil.copytree(repo, scratch)
    shutil.rmtree(scratch / "dev")
    for path, text in NEW.items():
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / path).write_text(text)
    git(scratch, "add", "-A")
    git(scratch, "commit", "-q", "-m", "new")
    git(repo, "fetch", "-q", str(scratch), "main")
    new = git(repo, "rev-parse", "FETCH_HEAD").strip()
    return repo, old, new


def publish(repo: Path, old: str, new: str, *, check_clean: bool = True) -> list[tuple[str, ...]]:
    """``require_clean`` then ``publish`` as ``render commit`` runs them; the git commands run."""
    with workspace(str(repo), "main", remote=False, write=True) as ws:
        calls: list[tuple[str, ...]] = []
        real = ws.g.run
        ws.g.run = lambda *args, **kw: (calls.append(args), real(*args, **kw))[1]
        if check_clean:
            ws.require_clean()
        assert ws.publish("main", new, old, "test: main")
        return calls


def moved_cleanly(repo: Path, new: str) -> bool:
    return (git(repo, "rev-parse", "main").strip() == new and files_of(repo) == NEW
            and git(repo, "status", "--porcelain", "--untracked-files=all") == ""
            and not (repo / ".git" / JOURNAL).exists())


WHOLE_TREE = ("update-index", "read-tree")  # the whole-tree refresh and merge


def subcommand(args: tuple[str, ...]) -> str:
    """The git subcommand of a ``Git.run`` call (past its own ``-c name=value`` settings)."""
    i = 0
    while i < len(args) and args[i] == "-c":
        i += 2
    return args[i]


def test_a_fresh_index_moves_only_the_changed_paths_with_no_whole_tree_pass(seed):
    repo, old, new = seed
    calls = publish(repo, old, new)
    assert moved_cleanly(repo, new)
    assert [subcommand(c) for c in calls if subcommand(c) in ("status", "restore", *WHOLE_TREE)] == ["status", "restore"]


def _copied(repo: Path) -> Path:
    copy = repo.parent / "copy"
    shutil.copytree(repo, copy, symlinks=True)  # new inodes and change times: every entry's stat data is stale
    return copy


def _touched(repo: Path) -> Path:
    for path in ("dev/plugins/t/a/kustomization.yaml", "dev/plugins/t/a/gone.yaml"):  # changed and removed by NEW
        os.utime(repo / path, (1_000_000_000, 1_000_000_000))
    return repo


@pytest.mark.parametrize("make_stale", [pytest.param(_copied, id="a-copied-tree"),
                                        pytest.param(_touched, id="touched-files-the-commit-replaces")])
def test_stale_stat_data_is_no_change_and_the_tree_still_moves_by_path(seed, make_stale):
    repo, old, new = seed
    repo = make_stale(repo)
    calls = publish(repo, old, new)
    assert moved_cleanly(repo, new)
    # the changed paths were compared by content with the old tree: no whole-tree refresh or merge
    assert [c[0] for c in calls if c[0] in ("restore", *WHOLE_TREE)] == ["restore"]


@pytest.mark.parametrize("make_stale", [pytest.param(_copied, id="a-copied-tree"),
                                        pytest.param(_touched, id="touched-files-the-commit-replaces")])
def test_a_change_beyond_the_path_limit_is_merged_refreshing_stale_stat_data_as_before(seed, make_stale, monkeypatch):
    monkeypatch.setattr(worktree, "SCOPED_PATHS", 2)  # the seed's commit changes 3 paths
    repo, old, new = seed
    repo = make_stale(repo)
    calls = publish(repo, old, new)
    assert moved_cleanly(repo, new)
    # the merge refused the stale entries without writing anything; refreshed, it went through
    assert [c[:2] for c in calls if c[0] in ("restore", *WHOLE_TREE)] == [
        ("read-tree", "-m"), ("update-index", "-q"), ("read-tree", "-m")]


def test_a_file_edited_after_the_check_is_never_overwritten(seed):
    """The edit lands between ``require_clean`` and the working-tree update: the merge refuses
    with and without a refresh, the file keeps the edit, and the journal stays for the next run."""
    repo, old, new = seed
    (repo / "dev/plugins/t/a/kustomization.yaml").write_text("edited by hand\n")
    with pytest.raises(GitFailed, match="not uptodate"):
        publish(repo, old, new, check_clean=False)
    assert (repo / "dev/plugins/t/a/kustomization.yaml").read_text() == "edited by hand\n"
    assert (repo / "dev/plugins/t/a/gone.yaml").exists()
    assert (repo / ".git" / JOURNAL).exists()


def test_a_touched_but_unchanged_file_is_not_dirty_and_an_edited_one_is_named(seed):
    repo, old, new = seed
    _touched(repo)
    with workspace(str(repo), "main", remote=False, write=True) as ws:
        ws.require_clean()
        (repo / "dev/plugins/t/b/kustomization.yaml").write_text("b: 9\n")
        with pytest.raises(RefusingToProceed, match=r"uncommitted changes \(dev/plugins/t/b/kustomization.yaml\)"):
            ws.require_clean()


def test_an_untracked_file_where_the_commit_creates_one_is_never_overwritten(seed):
    repo, old, new = seed
    (repo / "dev/plugins/t/c").mkdir(parents=True)
    (repo / "dev/plugins/t/c/new.yaml").write_text("mine\n")
    with pytest.raises(GitFailed, match="would be overwritten"):
        publish(repo, old, new, check_clean=False)
    assert (repo / "dev/plugins/t/c/new.yaml").read_text() == "mine\n"
    assert (repo / ".git" / JOURNAL).exists()


def test_a_change_staged_under_the_run_is_never_overwritten(seed):
    """The index entry of a path the commit replaces is not the old tree's (staged, the file put back)."""
    repo, old, new = seed
    path = repo / "dev/plugins/t/a/kustomization.yaml"
    path.write_text("staged by hand\n")
    git(repo, "add", "dev/plugins/t/a/kustomization.yaml")
    path.write_text("a: 1\n")
    with pytest.raises(GitFailed, match="would be overwritten by merge"):
        publish(repo, old, new, check_clean=False)
    assert "staged by hand" in git(repo, "show", ":dev/plugins/t/a/kustomization.yaml")
    assert (repo / "dev/plugins/t/a/gone.yaml").exists()


def test_a_link_on_the_way_to_a_new_file_is_left_to_the_merge_and_nothing_is_written_through_it(seed, tmp_path):
    repo, old, new = seed
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "dev/plugins/t/c").symlink_to(outside)
    calls = []
    try:
        calls = publish(repo, old, new, check_clean=False)
    except GitFailed:
        pass
    assert list(outside.iterdir()) == []
    assert not any(c[0] == "restore" for c in calls)


def test_a_removed_bundle_folder_leaves_no_empty_folder_behind(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    for path in ("dev/plugins/t/a/kustomization.yaml", "dev/plugins/t/a/x.yaml", "dev/plugins/t/b/kustomization.yaml"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(path + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    old = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "-r", "dev/plugins/t/a")
    git(repo, "commit", "-q", "-m", "new")
    new = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "reset", "-q", "--hard", old)
    calls = publish(repo, old, new)
    assert [c[0] for c in calls if c[0] in ("restore", *WHOLE_TREE)] == ["restore"]
    assert not (repo / "dev/plugins/t/a").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "rev-parse", "main").strip() == new


@pytest.mark.parametrize("path, made, expected", [
    pytest.param("a/b/new.yaml", (), True, id="nothing-there-yet"),
    pytest.param("a/b/new.yaml", ("dir:a",), True, id="a-real-folder-on-the-way"),
    pytest.param("a/b/new.yaml", ("file:a/b/new.yaml",), False, id="a-file-there"),
    pytest.param("a/b/new.yaml", ("file:a",), False, id="a-file-on-the-way"),
    pytest.param("a/b/new.yaml", ("link:a",), False, id="a-link-on-the-way"),
    pytest.param("a/b/new.yaml", ("dir:a/b/new.yaml",), False, id="a-folder-there"),
])
def test_a_path_is_free_only_when_nothing_is_there_and_no_file_or_link_is_on_the_way(tmp_path, path, made, expected):
    for item in made:
        kind, rel = item.split(":")
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            target.mkdir()
        elif kind == "file":
            target.write_text("x\n")
        else:
            target.symlink_to(tmp_path.parent)
    assert worktree.free(tmp_path, path) is expected
