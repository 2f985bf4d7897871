"""render's git runs no one else's code: a hostile ~/.gitconfig (a smudge filter the GitOps repo's
.gitattributes activates, a core.hooksPath full of hooks, an fsmonitor command), a system config,
and the caller's GIT_* variables (GIT_DIR pointing at another repository) change nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.git import cli_env, edit_install, env_dir, git, render_process, signing_key  # noqa: F401


def _script(path: Path, marker: Path) -> str:
    path.write_text(f"#!/bin/sh\necho ran >> {marker}\ncat\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def hostile(tmp_path) -> tuple[dict, Path]:
    """An environment whose HOME and GIT_* variables try to make render's git run programs."""
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    home.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-commit", "post-checkout", "reference-transaction", "pre-push", "post-index-change"):
        _script(hooks / hook, marker)
    smudge = _script(tmp_path / "smudge.sh", marker)
    fsmonitor = _script(tmp_path / "fsmonitor.sh", marker)
    (home / ".gitconfig").write_text(
        f"[filter \"evil\"]\n\tsmudge = {smudge}\n\tclean = {smudge}\n\trequired = true\n"
        f"[core]\n\thooksPath = {hooks}\n\tfsmonitor = {fsmonitor}\n"
        "[user]\n\tname = Not Render\n\temail = user@example.invalid\n")
    other = tmp_path / "other-repo"
    git(tmp_path, "init", "-q", str(other))
    env = cli_env(tmp_path, HOME=str(home), GIT_DIR=str(other / ".git"), GIT_WORK_TREE=str(other),
                  GIT_INDEX_FILE=str(tmp_path / "stolen-index"), GIT_CONFIG_PARAMETERS="'core.hookspath'='" +
                  str(hooks) + "'")
    env.pop("GIT_CONFIG_NOSYSTEM", None)
    return env, marker


def test_a_hostile_git_config_and_environment_run_nothing_and_redirect_nothing(env_dir, tmp_path, hostile):
    env, marker = hostile
    repo = tmp_path / "gitops"
    first = render_process(tmp_path, "commit", "--init", str(env_dir), "--repo", str(repo), "--offline", env=env)
    assert first.code == 0, first.err
    (repo / ".gitattributes").write_text("* filter=evil\n")  # someone with push access activates the filter
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    edit_install(env_dir, "dev", "riverside-academy", "grade-sync", requests_per_second=3)

    second = render_process(tmp_path, "commit", str(env_dir), "--repo", str(repo), "--offline", env=env)
    assert second.code == 0, second.err
    assert not marker.exists(), marker.read_text()
    assert not (tmp_path / "stolen-index").exists()
    assert git(tmp_path / "other-repo", "rev-list", "--all") == ""  # GIT_DIR was never used
    author = git(repo, "log", "-1", "--format=%an <%ae>")
    assert author.strip() == "plugin-bundle-renderer <render@adapstory.invalid>"
    assert "requestsPerSecond: '3'" in (repo / "dev/plugins/riverside-academy/grade-sync/configmap-plugin-budget.yaml"
                                        ).read_text()
