"""`--format json`: one JSON document on stdout in success and in failure, and exit codes by what
to do next (1 rejected, 2 usage, 70 the renderer itself is broken)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from renderer.core.errors import EXIT_BROKEN
from renderer.gates import migrations
from renderer.gates.migrations import SquawkFailed
from renderer.pipeline import build as pipeline_build


def _one_document(out: str) -> dict:
    doc = json.loads(out)  # exactly one document: json.loads fails on trailing text
    assert isinstance(doc, dict)
    return doc


def _break_install(envs: Path) -> None:
    path = envs / "dev" / "tenants" / "riverside-academy" / "plugins" / "grade-sync.yaml"
    path.write_text(path.read_text().replace("spec:\n", "spec:\n  colour: blue\n", 1))


@pytest.mark.parametrize("command", [
    pytest.param(["build", "--out", "OUT"], id="build"),
    pytest.param(["diff", "--repo", "REPO"], id="diff"),
    pytest.param(["commit", "--repo", "REPO"], id="commit"),
])
def test_a_broken_input_gives_one_json_document_listing_each_finding_with_file_and_line(
        command, envs, tmp_path, render):
    _break_install(envs)
    if command[0] == "commit":  # an existing, empty repository: nothing may be committed to it
        subprocess.run(["git", "init", "-q", str(tmp_path / "gitops")], check=True)
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("REPO", str(tmp_path / "gitops")) for a in command]
    run = render(argv[0], envs, *argv[1:], "--offline", "--format", "json")
    doc = _one_document(run.out)
    assert run.code == 1 and doc["exit"] == 1 and doc["ok"] is False and doc["meaning"] == "rejected"
    finding = next(f for f in doc["findings"] if f["file"].endswith("riverside-academy/plugins/grade-sync.yaml"))
    assert finding["line"] > 0 and finding["rule"] == "spec.colour" and "unknown field" in finding["message"]
    assert doc["counts"]["errors"] == len(doc["findings"])
    assert not (tmp_path / "out").exists()
    if command[0] == "commit":
        assert subprocess.run(["git", "-C", str(tmp_path / "gitops"), "rev-parse", "-q", "--verify", "HEAD"],
                              capture_output=True).returncode != 0  # still no commit
    else:
        assert not (tmp_path / "gitops").exists()


def test_a_successful_build_gives_one_json_document_with_ok_and_counts(envs, tmp_path, render):
    run = render("build", envs, "--out", tmp_path / "out", "--offline", "--format", "json")
    doc = _one_document(run.out)
    assert run.code == 0 and doc["ok"] is True and doc["exit"] == 0 and doc["bundles"] == 9


def test_validate_of_a_tampered_folder_lists_the_violations_as_json_findings(envs, tmp_path, render):
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0
    deployment = next(out.glob("dev/plugins/riverside-academy/grade-sync/deployment-*.yaml"))
    deployment.write_text(deployment.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))
    run = render("validate", out, "--format", "json")
    doc = _one_document(run.out)
    assert run.code == 1 and doc["meaning"] == "rejected"
    hit = [f for f in doc["findings"] if f.get("rule") == "run-as-non-root"]
    assert hit and hit[0]["file"] == f"dev/plugins/riverside-academy/grade-sync/{deployment.name}"
    assert hit[0]["object"].startswith("Deployment/")


def test_a_rollback_with_no_known_good_state_is_a_json_refusal(envs, tmp_path, render):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", envs, "--repo", repo, "--offline").code == 0
    run = render("rollback", "grade-sync", "--tenant", "riverside-academy", "--env", "dev", "--repo", repo,
                 "--format", "json")
    doc = _one_document(run.out)
    assert run.code == 1 and doc["kind"] == "RefusingToProceed" and "no known-good state" in doc["error"]


@pytest.mark.parametrize("argv", [
    pytest.param(["rollback", "grade-sync", "--tenant", "a/b", "--env", "dev", "--repo", "x"], id="tenant-with-slash"),
    pytest.param(["mark-good", "Grade_Sync", "--tenant", "t", "--env", "dev", "--repo", "x"], id="plugin-not-a-label"),
    pytest.param(["build", "--out", "x", "--only", "just-one-part"], id="only-without-slash"),
    pytest.param(["rollback", "grade-sync", "--tenant", "t", "--env", "dev", "--repo", "git://127.0.0.1:9/x.git"],
                 id="rollback-of-a-url-without-push-would-publish-nothing"),
    pytest.param(["commit", "--repo", "git://127.0.0.1:9/x.git", "--offline"], id="commit-to-a-url-without-push"),
])
def test_usage_errors_exit_2_with_a_json_document(argv, render):
    run = render(*argv, "--format", "json")
    doc = _one_document(run.out)
    assert run.code == 2 and doc["exit"] == 2 and doc["meaning"] == "usage"


def test_a_usage_error_from_the_parser_prints_a_json_document_too(capsys):
    from renderer import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["build", "--out", "x", "--no-such-flag", "--format", "json"])
    assert exited.value.code == 2
    doc = _one_document(capsys.readouterr().out)
    assert doc["exit"] == 2 and "--no-such-flag" in doc["error"]


def test_a_broken_template_is_a_renderer_bug_exit_70_in_one_line(envs, tmp_path, render, monkeypatch):
    templates = tmp_path / "templates"
    import shutil

    shutil.copytree(pipeline_build.TEMPLATES, templates)
    (templates / "service.yaml.j2").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: {{ b.no_such_field }}}\n")
    monkeypatch.setattr(pipeline_build, "TEMPLATES", templates)
    run = render("build", envs, "--out", tmp_path / "out", "--offline", "--no-cache")
    assert run.code == EXIT_BROKEN
    assert "Traceback" not in run.err and "service.yaml.j2" in run.err and "this is a bug in templates/" in run.err
    assert not (tmp_path / "out").exists()


def test_a_missing_squawk_binary_is_an_installation_problem_exit_70(envs, tmp_path, render, monkeypatch):
    # The edge that cannot be staged for real without breaking the venv: squawk_path() says it is gone.
    def gone():
        raise SquawkFailed("squawk is not installed: the migration gate cannot check PostgreSQL migrations")

    monkeypatch.setattr(migrations, "squawk_path", gone)
    monkeypatch.setattr(migrations, "_memo", {})
    run = render("build", envs, "--out", tmp_path / "out", "--offline", "--format", "json")
    doc = _one_document(run.out)
    assert run.code == EXIT_BROKEN and doc["meaning"] == "renderer-broken" and "squawk" in doc["error"]
