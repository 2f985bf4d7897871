"""The GitOps repo is input, not proof: digests, holds and known-good records written into it
are claims; a bundle is kept only when its exact bytes passed the current gates on this machine.

Each case is what someone with push access to the GitOps repo (but not to the environments repo
or the CI runner's cache) could try, to make `render` re-bless their change."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.git import env_dir, git, render, signing_key  # noqa: F401  (fixtures are used by name)

BUNDLE = "dev/plugins/riverside-academy/grade-sync"


def _files_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != "bundle.json":
            data = path.read_bytes()
            h.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def _tamper(repo: Path, edit) -> None:
    """Edit a bundle by hand and recompute its bundle.json filesDigest, as an attacker would."""
    folder = repo / BUNDLE
    deployment = next(folder.glob("deployment-*.yaml"))
    deployment.write_text(edit(deployment.read_text()))
    meta = json.loads((folder / "bundle.json").read_text())
    meta["filesDigest"] = _files_digest(folder)
    (folder / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hand edit")


PRIVILEGED = pytest.param(lambda text: text.replace("allowPrivilegeEscalation: false",
                                                    "allowPrivilegeEscalation: true\n          privileged: true"),
                          id="privileged-container")
HARMLESS_LOOKING = pytest.param(lambda text: text.replace("value: json", "value: text"), id="changed-env-value")


@pytest.mark.parametrize("edit", [PRIVILEGED, HARMLESS_LOOKING])
@pytest.mark.parametrize("cache", [pytest.param("warm", id="warm-cache"), pytest.param("cold", id="fresh-machine")])
def test_a_bundle_edited_in_the_repo_with_its_digest_recomputed_is_reported_as_drift_and_rendered_afresh(
        edit, cache, render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    pristine = {p.name: p.read_bytes() for p in (repo / BUNDLE).iterdir()}
    _tamper(repo, edit)
    extra = {"RENDER_CACHE_DIR": str(tmp_path / "fresh-cache")} if cache == "cold" else {}

    diff = render("diff", str(env_dir), "--repo", str(repo), "--offline", **extra)
    assert diff.code == 0, diff.err
    assert f"drift: {BUNDLE}" in diff.out and "changed outside render" in diff.out
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline", **extra)
    assert run.code == 0, run.err
    assert "unchanged" not in run.out and f"drift: {BUNDLE}" in run.out
    assert {p.name: p.read_bytes() for p in (repo / BUNDLE).iterdir()} == pristine
    message = git(repo, "log", "-1", "--format=%B")
    assert f"drift: {BUNDLE}" in message


def test_an_untouched_repo_is_kept_through_the_verdict_cache_and_reports_no_drift(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0 and "unchanged" in run.out and "drift" not in run.out


# ------------------------------------------------------------------------------------ holds, reverts, ledger

from tests.support.git import add_catalog_version, edit_install  # noqa: E402

QUIZ = "prod/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"  # 1.2.0 in the example
QUIZ_ARGS = ("quiz-generator", "--tenant", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "--env", "prod")


def _version(repo: Path, bundle: str) -> str:
    return json.loads((repo / bundle / "bundle.json").read_text())["pluginVersion"]


def _bumped(render, env_dir: Path, repo: Path) -> None:
    """A first commit (quiz 1.2.0), marked good, then the version bump to 1.3.0 committed."""
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    assert render("mark-good", *QUIZ_ARGS, "--repo", str(repo)).code == 0
    edit_install(env_dir, "prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator", version="1.3.0")
    assert render("commit", str(env_dir), "--repo", str(repo), "--offline").code == 0
    assert _version(repo, QUIZ) == "1.3.0"


def test_a_plain_git_revert_of_a_render_commit_holds_until_the_install_changes(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _bumped(render, env_dir, repo)
    git(repo, "revert", "--no-edit", "HEAD")
    assert _version(repo, QUIZ) == "1.2.0"

    diff = render("diff", str(env_dir), "--repo", str(repo), "--offline")
    assert diff.code == 0 and f"kept {QUIZ} as reverted (git revert) to" in diff.out
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0, run.err
    assert _version(repo, QUIZ) == "1.2.0" and f"kept {QUIZ} as reverted" in run.out
    hold = json.loads((repo / ".render/holds/prod/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator.json")
                      .read_text())
    assert hold["reason"] == "revert" and hold["install"].startswith("sha256:")
    again = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert again.code == 0 and "unchanged" in again.out and _version(repo, QUIZ) == "1.2.0"

    edit_install(env_dir, "prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator", requests_per_second=3)
    released = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert released.code == 0 and "released the hold" in released.out and _version(repo, QUIZ) == "1.3.0"


def test_a_forged_hold_cannot_keep_a_tampered_bundle(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    pristine = {p.name: p.read_bytes() for p in (repo / BUNDLE).iterdir()}
    install = env_dir / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    hold = {"bundle": BUNDLE, "knownGood": git(repo, "rev-parse", "HEAD").strip(),
            "install": "sha256:" + hashlib.sha256(install.read_bytes()).hexdigest()}
    path = repo / ".render/holds/dev/riverside-academy/grade-sync.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(hold))
    _tamper(repo, PRIVILEGED.values[0])  # commits the hold file and the tampered bundle together

    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0, run.err
    assert f"ignored the hold on {BUNDLE}" in run.out
    assert {p.name: p.read_bytes() for p in (repo / BUNDLE).iterdir()} == pristine
    assert not path.exists()


def test_a_known_good_record_pointing_off_the_branch_is_refused_by_rollback(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _bumped(render, env_dir, repo)
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "dev/plugins/riverside-academy/grade-sync/bundle.json").write_text("{}\n")
    git(repo, "commit", "-qam", "Renderer-Version: 0.1.0 (forged)")
    side = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "side")
    ledger = tmp_path / "ledger"
    git(tmp_path, "clone", "-q", "--branch", "render-known-good", str(repo), str(ledger))
    record = ledger / "prod/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator.json"
    data = json.loads(record.read_text())
    data["commit"] = side
    data["tree"] = git(repo, "rev-parse", f"{side}:{QUIZ}").strip()
    record.write_text(json.dumps(data))
    git(ledger, "commit", "-qam", "forged")
    git(ledger, "push", "-q", "origin", "render-known-good")
    before = git(repo, "rev-parse", "main").strip()

    run = render("rollback", *QUIZ_ARGS, "--repo", str(repo))
    assert run.code == 1 and "not one of render's commits" in run.err
    assert git(repo, "rev-parse", "main").strip() == before


def test_a_rollback_across_a_migration_contract_step_is_refused_naming_versions_and_step(
        render, env_dir, tmp_path, signing_key):
    repo = tmp_path / "gitops"
    _bumped(render, env_dir, repo)  # known good: 1.2.0; running: 1.3.0
    contract = add_catalog_version(env_dir, "quiz-generator", "1.3.0", "1.4.0", signing_key)
    (contract / "migrations/003_drop_legacy_title.sql").write_text(
        "-- contract-since: 1.3.0\nSET lock_timeout = '2s';\nSET statement_timeout = '30s';\n"
        "ALTER TABLE quiz.quizzes DROP COLUMN IF EXISTS legacy_title;\n")
    from tests.support.git import sign_catalog_version
    sign_catalog_version(contract, signing_key)
    edit_install(env_dir, "prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator", version="1.4.0")
    assert render("commit", str(env_dir), "--repo", str(repo), "--offline").code == 0
    before = git(repo, "rev-parse", "main").strip()

    run = render("rollback", *QUIZ_ARGS, "--repo", str(repo), "--offline")
    assert run.code == 1
    assert "from 1.4.0 to 1.2.0" in run.err and "crosses a contract step" in run.err and "1.3.0" in run.err
    assert git(repo, "rev-parse", "main").strip() == before


# ------------------------------------------------------------------------------------ the kept index

def _commit_json(render, env_dir, repo, *extra, **env) -> dict:
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline", "--format", "json", *extra, **env)
    assert run.code == 0, run.out + run.err
    return json.loads(run.out)


def test_an_unchanged_run_keeps_every_bundle_through_the_kept_index_and_commits_nothing(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    first = _commit_json(render, env_dir, repo, "--init")
    assert first["keptUnchanged"] == 0 and len(first["bundles"]) == 9
    again = _commit_json(render, env_dir, repo)
    assert again["unchanged"] is True and again["keptUnchanged"] == 9
    text = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert "kept 9 bundle(s) exactly as the head holds them" in text.out


def test_one_changed_install_renders_that_bundle_and_keeps_the_other_eight(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _commit_json(render, env_dir, repo, "--init")
    install = env_dir / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    run = _commit_json(render, env_dir, repo)
    assert run["keptUnchanged"] == 8
    assert [b["path"] for b in run["bundles"]] == [BUNDLE]
    assert "maxReplicas: 2" in (repo / BUNDLE / "horizontalpodautoscaler-grade-sync.yaml").read_text()


def test_the_text_summary_of_a_commit_that_kept_bundles_names_the_commit_and_the_changed_bundle(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _commit_json(render, env_dir, repo, "--init")
    install = env_dir / "dev/tenants/riverside-academy/plugins/grade-sync.yaml"
    install.write_text(install.read_text() + "  overrides:\n    replicas: {max: 2}\n")
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline")
    assert run.code == 0, run.err
    head = git(repo, "rev-parse", "HEAD").strip()
    assert "kept 8 bundle(s)" in run.out
    assert f"committed {head[:12]} on main" in run.out and f"changed  {BUNDLE}" in run.out
    assert "unchanged:" not in run.out


def test_the_text_summary_of_an_unchanged_run_without_the_cache_says_unchanged_and_names_no_commit(
        render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _commit_json(render, env_dir, repo, "--init")
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline", "--no-cache")
    assert run.code == 0, run.err
    assert run.out.startswith("unchanged: main of ") and "committed" not in run.out and "kept" not in run.out


def test_no_cache_keeps_nothing_through_the_kept_index(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _commit_json(render, env_dir, repo, "--init")
    run = _commit_json(render, env_dir, repo, "--no-cache")
    assert run["unchanged"] is True and run["keptUnchanged"] == 0


def test_a_bundle_file_made_executable_in_the_repo_is_written_back_as_a_plain_file(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    _commit_json(render, env_dir, repo, "--init")
    deployment = next((repo / BUNDLE).glob("deployment-*.yaml"))
    rel = deployment.relative_to(repo).as_posix()
    deployment.chmod(0o755)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", "chmod +x")
    assert git(repo, "ls-tree", "HEAD", rel).startswith("100755")
    run = _commit_json(render, env_dir, repo)
    # its folder is no longer the one render wrote (a mode is part of it): rendered and checked again
    assert run["unchanged"] is False and run["keptUnchanged"] == 8, "the other bundles kept, this one mended"
    assert git(repo, "ls-tree", "HEAD", rel).startswith("100644")
