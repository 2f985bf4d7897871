"""``render commit``, ``mark-good`` and ``rollback`` against real git repositories and a real
``git daemon`` on 127.0.0.1 (pushes go over the network, git://).

Covers ``renderer.gitops`` and ``renderer.gitops_cli``: commits and their trailers, the refusals
(dirty tree, files render did not write, mass deletes), concurrent runs on one remote, a run
killed at random points, the known-good ledger and rollbacks that hold.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from tests.support.git import (  # noqa: F401  (fixtures are used by name)
    add_catalog_version,
    cli_env,
    edit_install,
    env_dir,
    git,
    git_daemon,
    remove_install,
    render,
    render_argv,
    signing_key,
)
from renderer import __version__
from renderer import gitops
from renderer.core import layout
from renderer.core.errors import EXIT_REJECTED

PROD_QUIZ = ("prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator")  # 1.2.0 in the example
PROD_GRADES = ("prod", "riverside-academy", "grade-sync")
DEV_GRADES = ("dev", "riverside-academy", "grade-sync")


def bundle(env: str, tenant: str, plugin: str) -> str:
    return f"{env}/plugins/{tenant}/{plugin}"


def head(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def tree_id(repo: Path, spec: str) -> str:
    return git(repo, "rev-parse", spec).strip()


def commits(repo: Path, ref: str = "main") -> list[str]:
    return git(repo, "rev-list", ref).split()


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def build(env: Path, out: Path) -> dict[str, bytes]:
    """What `render build` writes for ``env``: the reference a commit must equal."""
    from renderer.cli.main import main

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["build", str(env), "--out", str(out), "--offline"]) == 0
    return {k: v for k, v in files_of(out).items() if k != ".render-output"}


def rendered_part(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if "/plugins/" in k or "/argocd/" in k or "/bootstrap/" in k}


def clone(url_or_path: str, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", url_or_path, str(dest))
    return dest


# ------------------------------------------------------------------------------------ commit


def test_a_first_commit_writes_exactly_what_build_renders_with_readme_attributes_and_trailers(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", RENDER_SOURCE_COMMIT="abc123")
    assert run.code == 0, run.err
    assert "committed" in run.out and "9 added" in run.out

    expected = build(env_dir, tmp_path / "reference")
    assert rendered_part(files_of(repo)) == expected
    assert git(repo, "status", "--porcelain") == ""
    attributes = (repo / ".gitattributes").read_text()
    assert "*/plugins/** linguist-generated=true" in attributes
    assert "render build ENV_DIR --out DIR" in (repo / "README.md").read_text()

    log = git(repo, "log", "-1", "--format=%an <%ae>%n%(trailers:key=Source-Commit,key=Renderer-Version,valueonly)")
    assert log.splitlines()[:3] == ["plugin-bundle-renderer <render@adapstory.invalid>", "abc123", __version__]
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Bundle,valueonly)").split("\n")
    named = sorted(t.split()[0] for t in trailers if t.strip())
    assert named == sorted({k.rsplit("/", 1)[0] for k in expected if "/plugins/" in k})
    assert all(" added install=sha256:" in t for t in trailers if t.strip())


def test_an_unchanged_input_makes_no_commit_and_says_so(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    before = commits(repo)
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0, run.err
    assert run.out.startswith("unchanged:") and "no commit made" in run.out
    assert commits(repo) == before


def test_unchanged_bundles_are_recognised_by_input_digest_without_rendering_them(render, env_dir, tmp_path, monkeypatch):
    from renderer.pipeline.render import Renderer

    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    rendered: list[str] = []
    original = Renderer.render_bundle
    monkeypatch.setattr(Renderer, "render_bundle", lambda self, plan: rendered.append(plan.path) or original(self, plan))
    install = env_dir / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    env: {SYNC_INTERVAL: 5m}\n")
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--jobs", "1")
    assert run.code == 0, run.err
    assert rendered == ["dev/plugins/riverside-academy/grade-sync"], "only the changed install is rendered"
    assert "SYNC_INTERVAL" in git(repo, "show", "HEAD:dev/plugins/riverside-academy/grade-sync/deployment-grade-sync.yaml")
    rendered.clear()
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--jobs", "1").out.startswith("unchanged:")
    assert rendered == []


def test_a_kept_bundle_edited_by_hand_is_rendered_afresh(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    path = repo / "dev/plugins/riverside-academy/grade-sync/deployment-grade-sync.yaml"
    good = path.read_text()
    path.write_text(good.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"))
    git(repo, "commit", "-qam", "hand edit")
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--jobs", "1")
    assert run.code == 0, run.err
    assert path.read_text() == good


def test_the_identity_is_the_renderers_own_or_the_one_given_never_the_users(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    (tmp_path / "home" / ".gitconfig").write_text("[user]\n\tname = Somebody Else\n\temail = else@example.invalid\n")
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline",
                  RENDER_GIT_AUTHOR_NAME="CI Bot", RENDER_GIT_AUTHOR_EMAIL="ci@example.invalid").code == 0
    assert git(repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>").strip() == \
        "CI Bot <ci@example.invalid> / CI Bot <ci@example.invalid>"


def test_a_changed_and_a_removed_install_are_named_in_the_message_and_only_they_change(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    first = head(repo)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    remove_install(env_dir, *PROD_GRADES)  # 1 of 5 prod bundles: 20%, the most allowed by default

    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--format", "json")
    assert run.code == 0, run.err
    out = run.json()
    assert {(b["path"], b["change"]) for b in out["bundles"]} == {
        (bundle(*PROD_QUIZ), "changed"), (bundle(*PROD_GRADES), "removed")}
    message = git(repo, "log", "-1", "--format=%B")
    assert f"changed  {bundle(*PROD_QUIZ)} (1.2.0 -> 1.3.0)" in message
    assert f"removed  {bundle(*PROD_GRADES)}" in message
    assert f"Bundle: {bundle(*PROD_GRADES)} removed" in message
    changed = set(git(repo, "diff", "--name-only", first, "HEAD").split())
    assert {p.rsplit("/", 1)[0] for p in changed if "/plugins/" in p} == {bundle(*PROD_QUIZ), bundle(*PROD_GRADES)}
    assert not (repo / bundle(*PROD_GRADES)).exists()
    assert "prod/argocd/application-plugin-riverside-academy-grade-sync.yaml" in changed
    assert rendered_part(files_of(repo)) == build(env_dir, tmp_path / "reference")


@pytest.mark.parametrize("flags, code", [
    pytest.param([], EXIT_REJECTED, id="refused-by-default"),
    pytest.param(["--allow-mass-delete"], 0, id="allowed-with-the-flag"),
    pytest.param(["--max-delete-share", "0.5"], 0, id="allowed-by-a-larger-share"),
])
def test_a_commit_deleting_more_than_a_fifth_of_an_environments_bundles_is_refused_unless_allowed(
        render, env_dir, tmp_path, flags, code):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    before = head(repo)
    remove_install(env_dir, *DEV_GRADES)  # 1 of 4 dev bundles: 25%
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", *flags)
    assert run.code == code, run.err
    if code:
        assert "delete 1 of 4 bundles of environment dev" in run.err and "--allow-mass-delete" in run.err
        assert head(repo) == before and (repo / bundle(*DEV_GRADES)).is_dir()
    else:
        assert head(repo) != before and not (repo / bundle(*DEV_GRADES)).exists()


@pytest.mark.parametrize("make_dirty", [
    pytest.param(lambda repo: (repo / "notes.txt").write_text("mine\n"), id="an-untracked-file"),
    pytest.param(lambda repo: (repo / "README.md").write_text("edited\n"), id="an-edited-file"),
    pytest.param(lambda repo: git(repo, "rm", "-q", "--cached", ".gitattributes"), id="a-staged-change"),
])
def test_a_dirty_working_tree_is_refused_and_left_as_it_is(render, env_dir, tmp_path, make_dirty):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    make_dirty(repo)
    status, before = git(repo, "status", "--porcelain"), head(repo)
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == EXIT_REJECTED
    assert "uncommitted changes" in run.err and "Traceback" not in run.err
    assert head(repo) == before and git(repo, "status", "--porcelain") == status


@pytest.mark.parametrize("intrude, says", [
    pytest.param(lambda repo: (repo / "dev/plugins/stray.yaml").write_text("kind: ConfigMap\n"),
                 "dev/plugins/stray.yaml", id="a-file-beside-the-bundles"),
    pytest.param(lambda repo: (repo / "dev/plugins/riverside-academy/grade-sync/extra.yaml").write_text("x: 1\n"),
                 "grade-sync/extra.yaml", id="a-file-its-kustomization-does-not-list"),
    pytest.param(lambda repo: (repo / "prod/argocd/notes.md").write_text("x\n"),
                 "prod/argocd/notes.md", id="a-file-in-argocd"),
    pytest.param(lambda repo: (repo / ".render/managed").unlink(), "not written by render", id="no-marker"),
])
def test_a_repository_with_files_render_did_not_write_is_refused(render, env_dir, tmp_path, intrude, says):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    intrude(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "someone else's change")
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    before = head(repo)
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == EXIT_REJECTED, run.out
    assert says in run.err and "refusing to proceed" in run.err
    assert head(repo) == before


def test_a_repository_that_is_something_else_is_refused(render, env_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(env_dir, other)
    git(other, "init", "-q", "-b", "main")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "the environments repo, by mistake")
    run = render("commit", "--init", str(env_dir), "--repo", str(other), "--offline")
    assert run.code == EXIT_REJECTED
    assert "was not written by render" in run.err
    assert not (other / "dev" / "plugins").exists()


def test_only_limits_a_commit_to_one_bundle(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    first = head(repo)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    edit_install(env_dir, *PROD_GRADES, requests_per_second=2)
    run = render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline", "--only", "/".join(PROD_QUIZ[1:]))
    assert run.code == 0, run.err
    changed = git(repo, "diff", "--name-only", first, "HEAD").split()
    assert changed and all(p.startswith(bundle(*PROD_QUIZ) + "/") for p in changed)
    # the other change is still pending
    diff = render("diff", str(env_dir), "--repo", str(repo), "--offline", "--format", "json").json()
    assert [b["path"] for b in diff["bundles"]] == [bundle(*PROD_GRADES)]


def test_a_commit_pushes_over_the_network_and_a_second_clone_sees_it(render, env_dir, tmp_path, git_daemon):
    git_daemon.create("push.git")
    url = git_daemon.url("push.git")
    run = render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline")
    assert run.code == 0, run.err
    assert f"pushed to {url}" in run.out
    seen = clone(url, tmp_path / "seen")
    assert git(seen, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert rendered_part(files_of(seen)) == build(env_dir, tmp_path / "reference")


def test_the_branch_defaults_to_the_remotes_default_branch(render, env_dir, tmp_path, git_daemon):
    bare = git_daemon.create("trunk.git", default_branch="trunk")
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "trunk")
    (seed / ".render").mkdir()
    (seed / ".render/managed").write_text("")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "adopt")
    git(seed, "push", "-q", str(bare), "trunk")
    run = render("commit", "--init", str(env_dir), "--repo", git_daemon.url("trunk.git"), "--push", "--offline")
    assert run.code == 0, run.err
    assert git(bare, "for-each-ref", "--format=%(refname)", "refs/heads/").split() == ["refs/heads/trunk"]
    assert len(git(bare, "rev-list", "trunk").split()) == 2


def test_a_url_without_push_is_refused_before_any_work_and_publishes_nothing(render, env_dir, git_daemon):
    bare = git_daemon.create("nopush.git")
    run = render("commit", str(env_dir), "--repo", git_daemon.url("nopush.git"), "--offline")
    assert run.code == 2, run.err
    assert "without --push would publish nothing" in run.err
    assert git(bare, "for-each-ref") == ""


def test_a_missing_repo_path_needs_init_so_a_typo_creates_nothing(render, env_dir, tmp_path):
    typo = tmp_path / "gitpos"
    run = render("commit", str(env_dir), "--repo", str(typo), "--offline")
    assert run.code == 2 and "--init" in run.err
    assert not typo.exists()


def test_a_new_repo_and_an_empty_bare_repo_get_head_naming_the_branch_written(render, env_dir, tmp_path):
    new = tmp_path / "new"
    assert render("commit", "--init", str(env_dir), "--repo", str(new), "--branch", "trunk", "--offline").code == 0
    assert git(new, "symbolic-ref", "HEAD").strip() == "refs/heads/trunk"
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=master", str(bare))
    run = render("commit", str(env_dir), "--repo", str(bare), "--push", "--offline")
    assert run.code == 0, run.err
    assert "written directly" in run.out
    assert git(bare, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "clone")) == "" or True
    assert (tmp_path / "clone" / "dev" / "argocd").is_dir()


def test_an_unreachable_remote_is_an_outside_failure(render, env_dir):
    run = render("commit", "--init", str(env_dir), "--repo", "git://127.0.0.1:9/nothing.git", "--push", "--offline")
    assert run.code == 3
    assert "cannot fetch" in run.err and "Traceback" not in run.err


def test_a_local_clone_with_push_publishes_and_fast_forwards_itself(render, env_dir, tmp_path, git_daemon):
    git_daemon.create("local.git")
    url = git_daemon.url("local.git")
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    work = clone(url, tmp_path / "work")
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    run = render("commit", "--init", str(env_dir), "--repo", str(work), "--push", "--offline")
    assert run.code == 0, run.err
    assert head(work) == git(work, "ls-remote", "origin", "refs/heads/main").split()[0]
    assert git(work, "status", "--porcelain") == ""
    assert json.loads((work / bundle(*PROD_QUIZ) / "bundle.json").read_text())["pluginVersion"] == "1.3.0"


# ------------------------------------------------------------------------------------ concurrency


def _interleave(monkeypatch, competing):
    """Run ``competing()`` (another run's whole commit) just before this run's first publish."""
    real = gitops.Workspace.publish
    state = {"done": False}

    def publish(self, *args, **kw):
        if not state["done"]:
            state["done"] = True
            competing()
        return real(self, *args, **kw)

    monkeypatch.setattr(gitops.Workspace, "publish", publish)


def _rendered(env: Path) -> gitops.Rendered:
    from renderer.flows.commit import rendered_files
    from renderer.pipeline.build import BuildRequest

    locations = tuple(filter(None, os.environ.get("RENDER_SCHEMA_LOCATION", "").split(",")))
    return rendered_files(BuildRequest(env_dir=env, out=None, offline=True, schema_locations=locations))


def test_a_run_whose_remote_moved_reapplies_only_its_own_bundles_on_the_new_head(
        render, env_dir, tmp_path, git_daemon, monkeypatch):
    bare = git_daemon.create("moved.git")
    url = git_daemon.url("moved.git")
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    other = tmp_path / "other-environments"
    shutil.copytree(env_dir, other)
    edit_install(other, *PROD_GRADES, requests_per_second=2)  # the other run: another bundle
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")  # this run
    theirs = _rendered(other)
    ours = _rendered(env_dir)
    _interleave(monkeypatch, lambda: gitops.commit(theirs, gitops.CommitOptions(url, push=True)))

    outcome = gitops.commit(ours, gitops.CommitOptions(url, push=True))
    assert outcome.pushed and outcome.attempts == 2
    log = git(bare, "log", "--format=%H %P %s", "main").splitlines()
    assert len(log) == 3 and all(len(line.split(" ")) >= 2 for line in log)
    assert log[0].split(" ")[1] == log[1].split(" ")[0]  # linear: ours sits on theirs
    assert bundle(*PROD_QUIZ) in log[0] and bundle(*PROD_GRADES) in log[1]
    assert git(bare, "rev-list", "--merges", "main") == ""
    assert "requestsPerSecond: '2'" in git(bare, "show", f"main:{bundle(*PROD_GRADES)}/configmap-plugin-budget.yaml")
    assert '"pluginVersion": "1.3.0"' in git(bare, "show", f"main:{bundle(*PROD_QUIZ)}/bundle.json")


def test_a_stale_run_stops_with_exit_1_and_never_undoes_a_newer_bundle(render, env_dir, tmp_path, git_daemon,
                                                                      monkeypatch):
    bare = git_daemon.create("stale.git")
    url = git_daemon.url("stale.git")
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    newer = tmp_path / "newer-environments"
    shutil.copytree(env_dir, newer)
    edit_install(newer, *PROD_QUIZ, version="1.3.0")  # the newer run upgrades the bundle...
    edit_install(env_dir, *PROD_QUIZ, requests_per_second=3)  # ...this stale run changes it another way
    theirs, ours = _rendered(newer), _rendered(env_dir)
    _interleave(monkeypatch, lambda: gitops.commit(theirs, gitops.CommitOptions(url, push=True)))
    with pytest.raises(gitops.Conflict) as caught:
        gitops.commit(ours, gitops.CommitOptions(url, push=True))
    assert caught.value.exit_code == EXIT_REJECTED
    assert bundle(*PROD_QUIZ) in str(caught.value)
    assert '"pluginVersion": "1.3.0"' in git(bare, "show", f"main:{bundle(*PROD_QUIZ)}/bundle.json")
    assert len(git(bare, "rev-list", "main").split()) == 2


def test_concurrent_pushes_on_different_installs_all_land_in_a_linear_history(env_dir, tmp_path, git_daemon):
    bare = git_daemon.create("race.git")
    url = git_daemon.url("race.git")
    env = cli_env(tmp_path)
    first = subprocess.run(render_argv("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline"),
                           env=env, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    installs = [PROD_QUIZ, PROD_GRADES, ("prod", "b7e2d0c4-5f6a-4b8c-9d0e-1f2a3b4c5d6e", "lesson-summarizer"),
                ("prod", "b7e2d0c4-5f6a-4b8c-9d0e-1f2a3b4c5d6e", "grade-sync")]
    for i, inst in enumerate(installs):
        edit_install(env_dir, *inst, requests_per_second=1 + i)
    procs = [subprocess.Popen(render_argv("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline",
                                          "--only", f"{t}/{p}"),
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _, t, p in installs]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
    log = git(bare, "log", "--format=%P", "main").splitlines()
    assert len(log) == 1 + len(installs)
    assert all(len(parents.split()) <= 1 for parents in log)  # linear, no merges
    seen = clone(url, tmp_path / "seen")
    assert rendered_part(files_of(seen)) == build(env_dir, tmp_path / "reference")


# ------------------------------------------------------------------------------------ crash safety


def _run_and_kill(args, env, cwd, *, after: float, when: Path | None = None) -> bool:
    """Start ``render``; SIGKILL it and its git children (like a lost machine) ``after`` seconds
    from the start, or ``after`` seconds after ``when`` appears. True if it was killed."""
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + (60 if when is not None else after)
    while proc.poll() is None and time.monotonic() < deadline:
        if when is not None and when.exists():
            time.sleep(after)
            break
        time.sleep(0.0005)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def test_a_commit_killed_at_any_point_leaves_the_old_or_the_new_commit_and_the_next_run_converges(
        render, env_dir, tmp_path):
    seed = tmp_path / "seed"
    assert render("commit", "--init", str(env_dir), "--repo", str(seed), "--offline").code == 0
    old = head(seed)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    edit_install(env_dir, "dev", "riverside-academy", "quiz-generator", requests_per_second=4)
    remove_install(env_dir, *PROD_GRADES)
    env = cli_env(tmp_path)
    argv = lambda repo: render_argv("commit", "--init", str(env_dir), "--repo", str(repo), "--offline")  # noqa: E731

    reference = tmp_path / "reference"
    shutil.copytree(seed, reference, symlinks=True)
    t0 = time.monotonic()
    assert subprocess.run(argv(reference), env=env, cwd=tmp_path, capture_output=True).returncode == 0
    elapsed = time.monotonic() - t0
    want_tree = tree_id(reference, "main^{tree}")

    # random points in time (mostly rendering: nothing is written yet), then points inside the
    # short write phase, counted from the moment the run writes its journal (just before the
    # branch moves and the working tree is updated)
    kills = [dict(after=elapsed * f) for f in (0.15, 0.4, 0.75)]
    kills += [dict(after=d, when="journal") for d in (0, 0.003, 0.008, 0.02)]
    states = set()
    for i, kill in enumerate(kills):
        repo = tmp_path / f"crash-{i}"
        shutil.copytree(seed, repo, symlinks=True)
        when = repo / ".git" / gitops.JOURNAL if kill.get("when") else None
        if not _run_and_kill(argv(repo), env, tmp_path, after=kill["after"], when=when):
            continue
        moved = head(repo) != old
        assert tree_id(repo, "main^{tree}") == (want_tree if moved else tree_id(seed, "main^{tree}"))
        assert not moved or git(repo, "rev-parse", "main^").strip() == old
        git(repo, "fsck", "--no-dangling", "--no-progress")
        states.add((moved, (repo / ".git" / gitops.JOURNAL).exists()))
        rerun = subprocess.run(argv(repo), env=env, cwd=tmp_path, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert tree_id(repo, "main^{tree}") == want_tree
        assert git(repo, "status", "--porcelain") == ""
        assert len(commits(repo)) == 2
        assert not (repo / ".git" / gitops.JOURNAL).exists()
    assert (False, False) in states  # killed before anything was written
    assert any(journal for _, journal in states)  # killed inside the write phase


# ------------------------------------------------------------------------------------ known good and rollback


def _upgrade_and_mark(render, env_dir, url):
    """Commit quiz-generator 1.2.0, mark it good, upgrade it (and another bundle), commit."""
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    env, tenant, plugin = PROD_QUIZ
    marked = render("mark-good", plugin, "--tenant", tenant, "--env", env, "--repo", url, "--format", "json")
    assert marked.code == 0, marked.err
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    edit_install(env_dir, *PROD_GRADES, requests_per_second=2)
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    return marked.json()["commit"]


def test_a_rollback_restores_the_known_good_bundle_byte_for_byte_and_nothing_else(render, env_dir, tmp_path,
                                                                                  git_daemon):
    bare = git_daemon.create("rollback.git")
    url = git_daemon.url("rollback.git")
    good = _upgrade_and_mark(render, env_dir, url)
    upgraded = head(bare)
    env, tenant, plugin = PROD_QUIZ
    run = render("rollback", plugin, "--tenant", tenant, "--env", env, "--repo", url, "--push")
    assert run.code == 0, run.err
    rolled = head(bare)
    assert git(bare, "rev-parse", f"{rolled}^").strip() == upgraded  # a new commit on top, nothing rewritten
    assert tree_id(bare, f"{rolled}:{bundle(*PROD_QUIZ)}") == tree_id(bare, f"{good}:{bundle(*PROD_QUIZ)}")
    changed = git(bare, "diff", "--name-only", upgraded, rolled).split()
    assert all(p.startswith(bundle(*PROD_QUIZ) + "/") or p == layout.parse_bundle(bundle(*PROD_QUIZ)).hold for p in changed)
    assert tree_id(bare, f"{rolled}:{bundle(*PROD_GRADES)}") == tree_id(bare, f"{upgraded}:{bundle(*PROD_GRADES)}")
    assert tree_id(bare, f"{rolled}:prod/argocd") == tree_id(bare, f"{upgraded}:prod/argocd")
    message = git(bare, "log", "-1", "--format=%B", rolled)
    assert f"Known-Good: {good}" in message and f"Rollback: {bundle(*PROD_QUIZ)}" in message


def test_a_rollback_holds_through_the_next_commit_and_is_released_when_the_install_changes(
        render, env_dir, tmp_path, git_daemon, signing_key):
    bare = git_daemon.create("hold.git")
    url = git_daemon.url("hold.git")
    good = _upgrade_and_mark(render, env_dir, url)
    env, tenant, plugin = PROD_QUIZ
    assert render("rollback", plugin, "--tenant", tenant, "--env", env, "--repo", url, "--push").code == 0
    rolled = head(bare)

    again = render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline")
    assert again.code == 0, again.err
    assert "unchanged" in again.out and f"kept {bundle(*PROD_QUIZ)} as rolled back" in again.out
    assert head(bare) == rolled
    diff = render("diff", str(env_dir), "--repo", url, "--offline")
    assert diff.out.startswith("unchanged")

    add_catalog_version(env_dir, "quiz-generator", "1.3.0", "1.3.1", signing_key)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.1")
    fixed = render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline")
    assert fixed.code == 0, fixed.err
    assert "released the hold" in fixed.out
    assert '"pluginVersion": "1.3.1"' in git(bare, "show", f"main:{bundle(*PROD_QUIZ)}/bundle.json")
    assert git(bare, "ls-tree", "-r", "--name-only", "main", ".render/holds") == ""
    assert good != head(bare)


def test_a_rollback_is_itself_revertable(render, env_dir, tmp_path, git_daemon):
    git_daemon.create("revert.git")
    url = git_daemon.url("revert.git")
    _upgrade_and_mark(render, env_dir, url)
    env, tenant, plugin = PROD_QUIZ
    assert render("rollback", plugin, "--tenant", tenant, "--env", env, "--repo", url, "--push").code == 0
    work = clone(url, tmp_path / "work")
    git(work, "revert", "--no-edit", "HEAD")
    assert tree_id(work, "HEAD^{tree}") == tree_id(work, "HEAD~2^{tree}")
    git(work, "push", "-q", "origin", "main")
    run = render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline")
    assert run.code == 0 and run.out.startswith("unchanged"), run.out + run.err


def test_a_rollback_without_a_known_good_state_fails_cleanly(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    before = head(repo)
    env, tenant, plugin = PROD_QUIZ
    run = render("rollback", plugin, "--tenant", tenant, "--env", env, "--repo", str(repo))
    assert run.code == EXIT_REJECTED
    assert "no known-good state is recorded" in run.err and "render mark-good" in run.err
    assert "Traceback" not in run.err and head(repo) == before


def test_the_known_good_ledger_survives_a_plain_clone_and_is_readable_by_git_alone(render, env_dir, tmp_path,
                                                                                  git_daemon):
    git_daemon.create("ledger.git")
    url = git_daemon.url("ledger.git")
    assert render("commit", "--init", str(env_dir), "--repo", url, "--push", "--offline").code == 0
    env, tenant, plugin = PROD_QUIZ
    run = render("mark-good", plugin, "--tenant", tenant, "--env", env, "--repo", url)
    assert run.code == 0, run.err
    assert "published to the remote" in run.out
    seen = clone(url, tmp_path / "seen")
    record = json.loads(git(seen, "show", f"origin/{gitops.LEDGER_BRANCH}:{env}/{tenant}/{plugin}.json"))
    assert record["commit"] == head(seen) and record["tree"] == tree_id(seen, f"HEAD:{bundle(*PROD_QUIZ)}")
    again = render("mark-good", plugin, "--tenant", tenant, "--env", env, "--repo", url)
    assert "already recorded" in again.out


@pytest.mark.parametrize("tenant, extra, says", [
    pytest.param(PROD_QUIZ[1], ["--commit", "0" * 40], "no such commit", id="an-unknown-commit"),
    pytest.param("nobody", [], "does not exist at", id="a-bundle-that-is-not-there"),
])
def test_mark_good_refuses_what_it_cannot_record(render, env_dir, tmp_path, tenant, extra, says):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    env, _, plugin = PROD_QUIZ
    run = render("mark-good", plugin, "--tenant", tenant, "--env", env, "--repo", str(repo), *extra)
    assert run.code == EXIT_REJECTED
    assert says in run.err
    assert git(repo, "for-each-ref", f"refs/heads/{gitops.LEDGER_BRANCH}") == ""


def test_mark_good_on_a_local_repository_records_an_older_commit_on_the_branch(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    first = head(repo)
    edit_install(env_dir, *PROD_QUIZ, version="1.3.0")
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    env, tenant, plugin = PROD_QUIZ
    run = render("mark-good", plugin, "--tenant", tenant, "--env", env, "--repo", str(repo), "--commit", first)
    assert run.code == 0, run.err
    assert render("rollback", plugin, "--tenant", tenant, "--env", env, "--repo", str(repo)).code == 0
    assert tree_id(repo, f"HEAD:{bundle(*PROD_QUIZ)}") == tree_id(repo, f"{first}:{bundle(*PROD_QUIZ)}")
    assert git(repo, "status", "--porcelain") == ""
    assert json.loads((repo / bundle(*PROD_QUIZ) / "bundle.json").read_text())["pluginVersion"] == "1.2.0"


# ------------------------------------------------------------------------------------ units


def test_rebase_keeps_a_unit_the_new_head_left_alone_and_refuses_one_it_changed():
    a, b = "dev/plugins/t/a/x.yaml", "dev/plugins/t/b/x.yaml"
    start = {a: ("100644", "1"), b: ("100644", "1")}
    want = {a: ("100644", "2")}
    change = gitops.Change({"dev/plugins/t/a": {a: start[a]}}, {"dev/plugins/t/a": want}, {}, {})
    moved_elsewhere = {**start, b: ("100644", "9")}
    assert gitops.rebase(change, moved_elsewhere).want == {"dev/plugins/t/a": want}
    already = {**start, a: ("100644", "2")}
    assert gitops.rebase(change, already).empty()
    with pytest.raises(gitops.Conflict):
        gitops.rebase(change, {**start, a: ("100644", "3")})
