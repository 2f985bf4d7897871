"""What Argo CD receives: every object carries its sync wave (guard rails first, the workload after
its secrets), every Application retries with backoff, and one root Application per environment
syncs <env>/argocd/ with the AppProject ahead of the Applications."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from renderer.core.kinds import SYNC_WAVES, WAVE_ANNOTATION, group_of, sync_wave
from renderer.pipeline.render import EMITTED

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"


def _objects(pattern: str):
    for path in sorted(GOLDEN.glob(pattern)):
        if path.name != "kustomization.yaml":
            yield path, yaml.safe_load(path.read_text())


@pytest.mark.parametrize("api_version, kind", [pytest.param(a, k, id=f"{k}.{a}") for a, k in EMITTED])
def test_every_emitted_kind_has_a_sync_wave(api_version, kind):
    assert isinstance(sync_wave(api_version, kind), int)


def test_every_bundle_object_carries_its_kinds_wave():
    seen = set()
    for path, obj in _objects("*/plugins/*/*/*.yaml"):
        want = SYNC_WAVES[(group_of(obj["apiVersion"]), obj["kind"])]
        assert obj["metadata"]["annotations"][WAVE_ANNOTATION] == str(want), path
        seen.add(obj["kind"])
    assert {"Namespace", "Deployment", "ExternalSecret", "Policy", "HorizontalPodAutoscaler"} <= seen


@pytest.mark.parametrize("before, after", [
    pytest.param(("kyverno.io", "Policy"), ("apps", "Deployment"), id="signature-policy-before-pods"),
    pytest.param(("external-secrets.io", "ExternalSecret"), ("apps", "Deployment"), id="secrets-before-pods"),
    pytest.param(("postgresql.sql.m.crossplane.io", "Role"), ("apps", "Deployment"), id="db-role-before-pods"),
    pytest.param(("kafka.strimzi.io", "KafkaUser"), ("apps", "Deployment"), id="kafka-user-before-pods"),
    pytest.param(("networking.k8s.io", "NetworkPolicy"), ("external-secrets.io", "ExternalSecret"),
                 id="guard-rails-before-secrets"),
    pytest.param(("apps", "Deployment"), ("autoscaling", "HorizontalPodAutoscaler"), id="workload-before-autoscaler"),
    pytest.param(("argoproj.io", "AppProject"), ("argoproj.io", "Application"), id="project-before-applications"),
])
def test_waves_order_guard_rails_then_secrets_then_the_workload_then_the_rest(before, after):
    assert SYNC_WAVES[before] < SYNC_WAVES[after]


def test_every_application_retries_with_backoff_and_syncs_automatically():
    apps = list(_objects("*/argocd/application-*.yaml")) + list(_objects("*/bootstrap/application-*.yaml"))
    assert len(apps) == 9 + 2
    for path, app in apps:
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, path
        retry = policy["retry"]
        assert retry["limit"] > 0 and retry["backoff"]["factor"] >= 2 and retry["backoff"]["duration"], path


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_one_root_application_per_environment_syncs_its_argocd_folder(env):
    (path, root), = _objects(f"{env}/bootstrap/application-*.yaml")
    (_, project), = _objects(f"{env}/argocd/appproject-*.yaml")
    assert root["spec"]["source"]["path"] == f"{env}/argocd"
    assert root["spec"]["destination"]["namespace"] == project["metadata"]["namespace"]
    assert root["spec"]["project"] != project["metadata"]["name"]  # the plugins project cannot hold Applications
    assert project["metadata"]["annotations"][WAVE_ANNOTATION] == "-1"
    for _, app in _objects(f"{env}/argocd/application-*.yaml"):
        assert int(app["metadata"]["annotations"][WAVE_ANNOTATION]) > -1
