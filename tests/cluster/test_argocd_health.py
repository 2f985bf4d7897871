"""``render mark-good --from-argocd``: known-good recorded for exactly the bundles whose Argo CD
Application is Synced, Healthy and successfully operated at the commit.

Real: the GitOps repo (made by ``render commit``), git, the ledger branch read back with git, the
``kubernetes`` client, kubeconfig and in-cluster loading, TLS. The one stand-in: the Kubernetes API
server, a test double on 127.0.0.1 (``argocd_api_double``), because no API server can run here;
every Application it serves is first checked against Argo CD's CRD schema with the schema gate.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.argocd_api import ApiDouble, TestCA, argocd_status
from tests.support.git import edit_install, git, render, render_process, signed_environments, signing_key  # noqa: F401
from renderer.gates.schemas import SchemaStore

DEV_GRADES = "dev/plugins/riverside-academy/grade-sync"  # changed by the second commit
DEV_QUIZ = "dev/plugins/riverside-academy/quiz-generator"  # unchanged by it
DEV_BUNDLES = (DEV_GRADES, DEV_QUIZ, "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/lesson-summarizer",
               "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator")
PROD_QUIZ = "prod/plugins/riverside-academy/grade-sync"
LEDGER = "render-known-good"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def gitops_template(tmp_path_factory, signing_key):
    """A GitOps repo made by two `render commit`s: C1 (every bundle), C2 (dev grade-sync changed)."""
    tmp = tmp_path_factory.mktemp("argocd-gitops")
    envs = signed_environments(tmp / "environments", signing_key)
    repo = tmp / "gitops"
    for step in range(2):
        if step:
            edit_install(envs, "dev", "riverside-academy", "grade-sync", requests_per_second=3)
        run = render_process(tmp, "commit", "--init", str(envs), "--repo", str(repo), "--offline")
        assert run.code == 0, run.err
    return repo, git(repo, "rev-parse", "main~1").strip(), git(repo, "rev-parse", "main").strip()


@pytest.fixture
def gitops(gitops_template, tmp_path):
    """A private copy of the GitOps repo: (path, C1, C2)."""
    template, c1, c2 = gitops_template
    repo = tmp_path / "gitops"
    shutil.copytree(template, repo, symlinks=True)
    return repo, c1, c2


@pytest.fixture
def api(tmp_path):
    double = ApiDouble().start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def schemas():

    return SchemaStore("1.33", ())  # the schemas the package ships


def rendered_application(repo: Path, commit: str, bundle: str) -> dict:
    """The Application `render` wrote for ``bundle`` at ``commit``, as the API server would return it."""
    env = bundle.split("/")[0]
    for name in git(repo, "ls-tree", "--name-only", f"{commit}:{env}/argocd").split():
        if name.startswith("application-"):
            doc = yaml.safe_load(git(repo, "show", f"{commit}:{env}/argocd/{name}"))
            if doc["spec"]["source"]["path"] == bundle:
                doc["metadata"].update({"uid": "0d1e2f30-0000-4000-8000-000000000001", "generation": 3,
                                        "resourceVersion": "4242", "creationTimestamp": "2026-11-28T10:00:00Z"})
                return doc
    raise AssertionError(f"no Application for {bundle} at {commit}")


def app_with(repo, commit, bundle, status=None, *, labels=None, path=None, drop_path=False) -> dict:
    doc = rendered_application(repo, commit, bundle)
    if status is not None:
        doc["status"] = status
    doc["metadata"]["labels"].update(labels or {})
    if path:
        doc["spec"]["source"]["path"] = path
    if drop_path:
        doc["spec"]["sources"] = [doc["spec"].pop("source")]
        doc["spec"]["sources"][0].pop("path")
    return doc


def serve(api: ApiDouble, schemas: SchemaStore, apps: list, namespace: str = "argocd", check: bool = True) -> None:
    for app in apps:
        if check:
            assert schemas.validate(app) == [], f"the double must serve Argo CD's real shape: {app['metadata']['name']}"
    api.serve(namespace, apps)


def mark(render, repo, api, tmp_path, *extra, env="dev"):
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    return render("mark-good", "--from-argocd", "--env", env, "--repo", str(repo), "--kubeconfig", str(kubeconfig),
                  "--format", "json", *extra)


def ledger(repo: Path, bundle: str) -> dict | None:
    env, _, tenant, plugin = bundle.split("/")
    proc = subprocess.run(["git", "show", f"{LEDGER}:{env}/{tenant}/{plugin}.json"], cwd=repo, capture_output=True,
                          text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def ledger_files(repo: Path) -> list[str]:
    proc = subprocess.run(["git", "ls-tree", "-r", "--name-only", LEDGER], cwd=repo, capture_output=True, text=True)
    return sorted(p for p in proc.stdout.split() if p.endswith(".json")) if proc.returncode == 0 else []


def outcome_of(result: dict, bundle: str) -> dict:
    (row,) = [b for b in result["bundles"] if b["bundle"] == bundle]
    return row


# ------------------------------------------------------------------------------------ one Application each


SCENARIOS = [
    pytest.param(lambda c1, c2: argocd_status(c2), {}, "recorded", None, id="synced-and-healthy-at-the-commit"),
    pytest.param(lambda c1, c2: argocd_status(c2, sync="OutOfSync"), {}, "skipped", "OutOfSync", id="out-of-sync"),
    pytest.param(lambda c1, c2: argocd_status(c2, health="Degraded",
                                              health_message="Deployment grade-sync exceeded its progress deadline"),
                 {}, "skipped", "Degraded: Deployment grade-sync exceeded its progress deadline", id="degraded"),
    pytest.param(lambda c1, c2: argocd_status(c2, health="Progressing"), {}, "skipped", "Progressing",
                 id="progressing"),
    pytest.param(lambda c1, c2: argocd_status(c1), {}, "skipped", "synced to another revision", id="other-revision"),
    pytest.param(lambda c1, c2: argocd_status(c2, phase="Failed", op_message="one or more objects failed to apply"),
                 {}, "skipped", "operation Failed: one or more objects failed to apply", id="operation-failed"),
    pytest.param(lambda c1, c2: argocd_status(c2, phase="Running", op_message="waiting for healthy state"),
                 {}, "skipped", "operation Running", id="operation-still-running"),
    pytest.param(lambda c1, c2: argocd_status(c2, op_revision=c1), {}, "skipped",
                 "last sync operation was at another revision", id="last-operation-at-an-earlier-revision"),
    pytest.param(lambda c1, c2: None, {}, "skipped", "no status yet", id="missing-status"),
    pytest.param(lambda c1, c2: argocd_status(c2), {"labels": {"plugins.adapstory.io/tenant": "someone-else"}},
                 "skipped", "label plugins.adapstory.io/tenant='someone-else' disagrees", id="tenant-label-disagrees"),
    pytest.param(lambda c1, c2: argocd_status(c2), {"labels": {"plugins.adapstory.io/plugin": "quiz-generator"}},
                 "skipped", "label plugins.adapstory.io/plugin='quiz-generator' disagrees", id="plugin-label-disagrees"),
]


@pytest.mark.parametrize("make_status, change, outcome, reason", SCENARIOS)
def test_one_application_is_recorded_only_when_synced_healthy_and_succeeded_at_the_commit(
        render, gitops, api, schemas, tmp_path, make_status, change, outcome, reason):
    repo, c1, c2 = gitops
    serve(api, schemas, [app_with(repo, c2, DEV_GRADES, make_status(c1, c2), **change)])
    run = mark(render, repo, api, tmp_path)
    assert run.code == 0, run.err
    result = run.json()
    row = outcome_of(result, DEV_GRADES)
    assert (result["commit"], row["outcome"], row["application"]) == (c2, outcome,
                                                                       "argocd/plugin-riverside-academy-grade-sync")
    if reason:
        assert any(reason in r for r in row["reasons"]), row["reasons"]
        assert ledger(repo, DEV_GRADES) is None
    else:
        entry = ledger(repo, DEV_GRADES)
        assert entry == {"branch": "main", "bundle": DEV_GRADES, "commit": c2,
                         "tree": git(repo, "rev-parse", f"{c2}:{DEV_GRADES}").strip()}
    others = [b for b in result["bundles"] if b["bundle"] != DEV_GRADES]
    assert {b["bundle"] for b in others} == set(DEV_BUNDLES) - {DEV_GRADES}
    assert all(b["outcome"] == "skipped" and "no Application labelled" in b["reasons"][0] for b in others)


@pytest.mark.parametrize("change, reason", [
    pytest.param({"path": PROD_QUIZ}, f"spec.source.path '{PROD_QUIZ}' is not a bundle of dev", id="path-of-another-env"),
    pytest.param({"drop_path": True}, "no spec.source.path", id="multi-source-application"),
    pytest.param({"path": "dev/plugins/../prod"}, "is not a bundle of dev", id="path-that-climbs-out"),
])
def test_an_application_that_names_no_bundle_of_the_environment_is_reported_and_nothing_recorded(
        render, gitops, api, schemas, tmp_path, change, reason):
    repo, c1, c2 = gitops
    serve(api, schemas, [app_with(repo, c2, DEV_GRADES, argocd_status(c2), **change)])
    run = mark(render, repo, api, tmp_path)
    assert run.code == 0, run.err
    (row,) = [b for b in run.json()["bundles"] if b["bundle"] is None]
    assert row["outcome"] == "skipped" and reason in row["reasons"][0]
    assert ledger_files(repo) == []


def test_status_fields_of_the_wrong_type_are_skipped_not_a_crash(render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    app = app_with(repo, c2, DEV_GRADES, {"sync": "Synced", "health": {"status": 5}, "operationState": []})
    serve(api, schemas, [app], check=False)
    run = mark(render, repo, api, tmp_path)
    assert run.code == 0, run.err
    row = outcome_of(run.json(), DEV_GRADES)
    assert row["outcome"] == "skipped" and "synced to another revision (none" in row["reasons"][0]
    assert ledger_files(repo) == []


# ------------------------------------------------------------------------------------ a whole environment


def test_exactly_the_healthy_bundles_are_recorded_and_a_second_run_records_nothing_new(
        render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    lesson, quiz4f = DEV_BUNDLES[2], DEV_BUNDLES[3]
    prod_app = app_with(repo, c2, PROD_QUIZ, argocd_status(c2))
    serve(api, schemas, [
        app_with(repo, c2, DEV_GRADES, argocd_status(c2)),
        app_with(repo, c2, DEV_QUIZ, argocd_status(c2, health="Degraded")),
        app_with(repo, c2, lesson, argocd_status(c2)),
        app_with(repo, c2, quiz4f, argocd_status(c2, sync="OutOfSync", health="Progressing")),
        prod_app,  # another environment's Application in the same namespace: the selector leaves it out
    ])
    first = mark(render, repo, api, tmp_path)
    assert first.code == 0, first.err
    result = first.json()
    assert (result["recorded"], result["alreadyRecorded"], result["skipped"]) == (2, 0, 2)
    assert ledger_files(repo) == ["dev/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/lesson-summarizer.json",
                                  "dev/riverside-academy/grade-sync.json"]
    assert outcome_of(result, quiz4f)["reasons"] == ["OutOfSync", "Progressing"]
    assert all(q.get("labelSelector") == "plugins.adapstory.io/env=dev" for _, q in api.requests)
    assert PROD_QUIZ not in {b["bundle"] for b in result["bundles"]}
    ledger_head = git(repo, "rev-parse", LEDGER).strip()

    second = mark(render, repo, api, tmp_path)
    assert second.code == 0, second.err
    assert (second.json()["recorded"], second.json()["alreadyRecorded"]) == (0, 2)
    assert git(repo, "rev-parse", LEDGER).strip() == ledger_head


def test_the_text_output_names_each_bundle_with_its_outcome_and_reasons(render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    serve(api, schemas, [app_with(repo, c2, DEV_GRADES, argocd_status(c2)),
                         app_with(repo, c2, DEV_QUIZ, argocd_status(c2, health="Degraded"))])
    run = render("mark-good", "--from-argocd", "--env", "dev", "--repo", str(repo),
                 "--kubeconfig", str(api.kubeconfig(tmp_path / "kc")))
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith(f"known good from Argo CD: dev at {c2[:12]} on main (Applications in argocd): "
                               "1 recorded, 0 already recorded, 3 skipped")
    assert f"  recorded         {DEV_GRADES} (argocd/plugin-riverside-academy-grade-sync)" in lines
    assert any(line.startswith(f"  skipped          {DEV_QUIZ}") and line.endswith(": Degraded") for line in lines)


def test_two_applications_claiming_one_bundle_record_neither(render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    twin = app_with(repo, c2, DEV_GRADES, argocd_status(c2))
    twin["metadata"]["name"] = "grade-sync-copy"
    serve(api, schemas, [app_with(repo, c2, DEV_GRADES, argocd_status(c2)), twin])
    run = mark(render, repo, api, tmp_path)
    assert run.code == 0, run.err
    rows = [b for b in run.json()["bundles"] if b["bundle"] == DEV_GRADES]
    assert len(rows) == 2 and all("2 Applications claim this bundle" in r["reasons"][0] for r in rows)
    assert ledger_files(repo) == []


def test_commit_selects_an_earlier_commit_and_the_default_is_the_branch_head(render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    serve(api, schemas, [app_with(repo, c1, DEV_GRADES, argocd_status(c1))])  # Argo CD still at C1
    at_head = mark(render, repo, api, tmp_path)
    assert outcome_of(at_head.json(), DEV_GRADES)["outcome"] == "skipped"
    at_c1 = mark(render, repo, api, tmp_path, "--commit", c1[:10])
    assert at_c1.code == 0, at_c1.err
    assert at_c1.json()["commit"] == c1 and outcome_of(at_c1.json(), DEV_GRADES)["outcome"] == "recorded"
    assert ledger(repo, DEV_GRADES)["tree"] == git(repo, "rev-parse", f"{c1}:{DEV_GRADES}").strip()


def test_the_namespace_defaults_to_the_rendered_applications_and_argocd_namespace_overrides_it(
        render, gitops, api, schemas, tmp_path):
    repo, c1, c2 = gitops
    app = app_with(repo, c2, DEV_GRADES, argocd_status(c2))
    app["metadata"]["namespace"] = "gitops-system"
    serve(api, schemas, [app], namespace="gitops-system")
    default = mark(render, repo, api, tmp_path)
    assert default.json()["namespaces"] == ["argocd"] and default.json()["recorded"] == 0
    moved = mark(render, repo, api, tmp_path, "--argocd-namespace", "gitops-system")
    assert moved.json()["recorded"] == 1, moved.out
    assert [p for p, _ in api.requests] == ["/apis/argoproj.io/v1alpha1/namespaces/argocd/applications",
                                            "/apis/argoproj.io/v1alpha1/namespaces/gitops-system/applications"]


def test_applications_are_read_in_pages_and_the_typed_result_lists_each_bundle(gitops, api, schemas, monkeypatch,
                                                                                tmp_path):
    from renderer.cluster.argocd import KubeSettings
    from renderer.flows.argocd_health import mark_good_from_argocd

    repo, c1, c2 = gitops
    serve(api, schemas, [app_with(repo, c2, b, argocd_status(c2, op_revision=c2)) for b in DEV_BUNDLES])
    monkeypatch.setenv("HOME", str(tmp_path))
    kube = KubeSettings(kubeconfig=str(api.kubeconfig(tmp_path / "kc")), page_size=1)
    result = mark_good_from_argocd("dev", str(repo), kube=kube)
    assert sorted(o.bundle for o in result.recorded) == sorted(DEV_BUNDLES)
    assert (result.already_recorded, result.skipped) == ((), ())
    assert [q.get("limit") for _, q in api.requests] == ["1"] * 4
    assert [bool(q.get("continue")) for _, q in api.requests] == [False, True, True, True]


# ------------------------------------------------------------------------------------ failures


def test_an_api_server_that_is_down_is_an_outside_failure_and_nothing_is_written(render, gitops, api, tmp_path):
    repo, c1, c2 = gitops
    run = render("mark-good", "--from-argocd", "--env", "dev", "--repo", str(repo),
                 "--kubeconfig", str(api.kubeconfig(tmp_path / "kc")), "--context", "down")
    assert run.code == 3
    assert "the Kubernetes API server at http://127.0.0.1:9 cannot be reached" in run.err
    assert "Traceback" not in run.err and ledger_files(repo) == []


@pytest.mark.parametrize("setup, says", [
    pytest.param(lambda api: setattr(api, "token", "rotated"), "rejected the credentials (401 Unauthorized)",
                 id="401-unauthorized"),
    pytest.param(lambda api: setattr(api, "forbid", True), "forbids list applications.argoproj.io in namespace "
                 "argocd (403 Forbidden)", id="403-forbidden"),
    pytest.param(lambda api: setattr(api, "no_argocd", True), "is Argo CD installed there?", id="404-no-argocd"),
])
def test_an_api_server_that_refuses_is_an_outside_failure_with_a_clear_message(render, gitops, api, tmp_path, setup,
                                                                                says):
    repo, c1, c2 = gitops
    kubeconfig = api.kubeconfig(tmp_path / "kc")
    setup(api)
    run = render("mark-good", "--from-argocd", "--env", "dev", "--repo", str(repo), "--kubeconfig", str(kubeconfig))
    assert run.code == 3, run.err
    assert says in run.err and "Traceback" not in run.err
    assert ledger_files(repo) == []


@pytest.mark.parametrize("kubeconfig, extra, says", [
    pytest.param("missing.yaml", (), "missing.yaml: no such file", id="missing-file"),
    pytest.param("broken.yaml", (), "broken.yaml:2: not valid YAML", id="not-a-kubeconfig"),
    pytest.param("good.yaml", ("--context", "nowhere"), "nowhere", id="unknown-context"),
])
def test_a_kubeconfig_that_cannot_be_used_is_a_refusal_naming_it(render, gitops, api, tmp_path, kubeconfig, extra,
                                                                  says):
    repo, c1, c2 = gitops
    api.kubeconfig(tmp_path / "good.yaml")
    (tmp_path / "broken.yaml").write_text("clusters: [unclosed\n")
    run = render("mark-good", "--from-argocd", "--env", "dev", "--repo", str(repo),
                 "--kubeconfig", str(tmp_path / kubeconfig), *extra)
    assert run.code == 1, run.err
    assert says in run.err and "Traceback" not in run.err and api.requests == []


@pytest.mark.parametrize("env, extra, code, says", [
    pytest.param("dev", ("--commit", "f" * 40), 1, "no such commit", id="unknown-commit"),
    pytest.param("staging", (), 1, "staging/argocd/ holds no Application", id="environment-without-bundles"),
    pytest.param("dev", ("quiz-generator",), 2, "leave out PLUGIN and --tenant", id="with-a-plugin"),
    pytest.param("Dev!", (), 2, "is not an environment name", id="bad-env-name"),
])
def test_a_request_render_cannot_serve_is_refused_before_the_cluster_is_asked(render, gitops, api, tmp_path, env,
                                                                              extra, code, says):
    repo, c1, c2 = gitops
    run = render("mark-good", "--from-argocd", "--env", env, "--repo", str(repo),
                 "--kubeconfig", str(api.kubeconfig(tmp_path / "kc")), *extra)
    assert run.code == code, run.err
    assert says in run.err and api.requests == [] and ledger_files(repo) == []


@pytest.mark.parametrize("args, says", [
    pytest.param((), "give PLUGIN and --tenant ID, or --from-argocd", id="neither-plugin-nor-from-argocd"),
    pytest.param(("grade-sync", "--tenant", "riverside-academy", "--kubeconfig", "kc"),
                 "--kubeconfig only go with --from-argocd", id="cluster-flags-without-from-argocd"),
])
def test_mark_good_without_one_form_or_the_other_is_a_usage_error(render, gitops, args, says):
    repo, c1, c2 = gitops
    run = render("mark-good", "--env", "dev", "--repo", str(repo), *args)
    assert run.code == 2 and says in run.err and ledger_files(repo) == []


# ------------------------------------------------------------------------------------ TLS and in-cluster


def test_in_cluster_config_reads_the_service_account_over_tls(gitops, schemas, tmp_path, monkeypatch):
    from renderer.cluster.argocd import KubeSettings
    from renderer.flows.argocd_health import mark_good_from_argocd

    repo, c1, c2 = gitops
    ca = TestCA.make(tmp_path / "pki")
    api = ApiDouble(token="service-account-token", tls=ca).start()
    try:
        serve(api, schemas, [app_with(repo, c2, DEV_GRADES, argocd_status(c2))])
        (tmp_path / "token").write_text("service-account-token")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        kube = KubeSettings(token_file=str(tmp_path / "token"), ca_file=str(tmp_path / "pki" / "ca.crt"))
        result = mark_good_from_argocd("dev", str(repo), kube=kube)
        assert [o.bundle for o in result.recorded] == [DEV_GRADES]
        assert ledger(repo, DEV_GRADES)["commit"] == c2
    finally:
        api.stop()


def test_a_server_certificate_the_kubeconfig_does_not_trust_is_an_outside_failure(render, gitops, tmp_path):
    repo, c1, c2 = gitops
    api = ApiDouble(tls=TestCA.make(tmp_path / "pki")).start()
    try:
        kubeconfig = api.kubeconfig(tmp_path / "kc", ca=False)
        run = render("mark-good", "--from-argocd", "--env", "dev", "--repo", str(repo), "--kubeconfig", str(kubeconfig))
        assert run.code == 3 and "cannot be reached" in run.err and "CERTIFICATE_VERIFY_FAILED" in run.err, run.err
    finally:
        api.stop()
