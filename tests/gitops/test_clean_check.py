"""The working-tree check of ``render commit`` runs while the commit is built (``Workspace.clean_later``)
and is awaited before anything is published: a dirty checkout is still refused, first, with the
branch and the working tree left as they were. Real git repositories throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer.core.errors import EXIT_REJECTED, RefusingToProceed
from renderer.gitops import workspace
from renderer.gitops.workspace import Workspace
from renderer.gitops.publish import CommitOptions, open_repo
from tests.support.git import (  # noqa: F401  (fixtures are used by name)
    edit_install,
    env_dir,
    git,
    remove_install,
    render,
    signing_key,
)

PROD_QUIZ = ("prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator")
DEV_GRADES = ("dev", "riverside-academy", "grade-sync")


def _head(repo: Path) -> str:
    return git(repo, "rev-parse", "main").strip()


@pytest.fixture
def repo(render, env_dir, tmp_path) -> Path:
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    return repo


def test_the_check_started_in_the_background_raises_only_when_awaited_and_names_the_file(repo):
    with workspace(str(repo), "main", remote=False, write=True) as ws:
        assert ws.clean_later()() is None
        (repo / "README.md").write_text("edited\n")
        wait = ws.clean_later()
        with pytest.raises(RefusingToProceed, match=r"uncommitted changes \(README.md\)"):
            wait()
        with pytest.raises(RefusingToProceed, match="uncommitted changes"):
            wait()  # awaited again (a commit that is retried): the same answer


def test_a_bare_repository_has_no_working_tree_to_check(repo, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    with workspace(str(bare), "main", remote=False, write=True) as ws:
        assert ws.clean_later()() is None


def test_a_dirty_checkout_is_refused_before_the_branch_moves_though_the_commit_was_built(
        render, env_dir, repo):
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    (repo / "notes.txt").write_text("mine\n")
    before, status = _head(repo), git(repo, "status", "--porcelain")
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == EXIT_REJECTED and "uncommitted changes (notes.txt)" in run.err, run.err
    assert _head(repo) == before and git(repo, "status", "--porcelain") == status
    assert (repo / "notes.txt").read_text() == "mine\n"


def test_a_dirty_checkout_is_reported_before_a_mass_delete(render, env_dir, repo):
    remove_install(env_dir, *DEV_GRADES)  # 1 of 4 dev bundles: refused as a mass delete too
    (repo / "README.md").write_text("edited\n")
    before = _head(repo)
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == EXIT_REJECTED and "uncommitted changes (README.md)" in run.err, run.err
    assert "--allow-mass-delete" not in run.err
    assert _head(repo) == before


# ------------------------------------------------------------------------------------ started with the snapshot


def test_the_check_starts_with_the_snapshot_and_a_commit_awaits_that_one(render, env_dir, repo, monkeypatch):
    started: list[str] = []
    real = Workspace.clean_later

    def counted(self):
        started.append(_head(repo))
        return real(self)

    monkeypatch.setattr(Workspace, "clean_later", counted)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    before = _head(repo)
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0, run.err
    assert started == [before] and _head(repo) != before, "one check, started before the render, for the commit"


def test_an_unchanged_run_waits_for_the_check_it_started_and_refuses_nothing(render, env_dir, repo):
    (repo / "notes.txt").write_text("mine\n")
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0 and run.out.startswith("unchanged"), run.err


@pytest.mark.parametrize("moved, recovered, reused", [
    pytest.param(False, False, True, id="the-head-as-the-snapshot-found-it"),
    pytest.param(True, False, False, id="the-head-moved-since"),
    pytest.param(False, True, False, id="the-lock-finished-a-killed-runs-work"),
])
def test_the_commit_checks_again_unless_the_head_and_the_tree_are_as_the_snapshot_found_them(
        repo, tmp_path, moved, recovered, reused):
    with open_repo(CommitOptions(repo=str(repo), cache_dir=tmp_path / "cache"), write=True) as opened:
        snap = opened.snapshot()
        early = opened._early[1]
        opened.ws.recovered = recovered
        check = opened._clean_check("0" * 40 if moved else snap.base)
        assert (check is early) is reused
        assert check() is None
