"""Issue 11, items 2-4, end to end: telemetry egress to the collector, PrometheusRule selector
labels, drains (PodDisruptionBudget, preStop sleep, grace period) and a high, fixed UID; their
input checks, the policy rules of policies/pod.rego and the isolation audit."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from tests.conftest import EXAMPLE, REPO, tree_digest
from tests.support.edits import edit
from renderer.gates.policy import PolicyEngine
from renderer.pipeline.load import load
from renderer.pipeline.plan import plan
from renderer.pipeline.render import Renderer

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
LESSON = "catalog/lesson-summarizer/2.0.0/plugin.yaml"  # declares its UID and shutdown
QUIZ = "catalog/quiz-generator/1.3.0/plugin.yaml"  # takes the platform defaults
DEV = "dev/platform.yaml"
ONE_REPLICA = "prod/plugins/riverside-academy/grade-sync"  # the install caps replicas at 1
FULL = f"dev/plugins/{T1}/quiz-generator"  # consumes Kafka: has a PrometheusRule


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict[str, dict]]:
    """Every example bundle: path -> {file: object}, plus its bundle.json under "bundle.json"."""
    renderer = Renderer(REPO / "templates")
    out = {}
    for env in plan(load(EXAMPLE), "pod-tests"):
        for bundle_plan in env.bundles:
            bundle = renderer.render_bundle(bundle_plan)
            out[bundle.path] = {**dict(bundle.objects), "bundle.json": json.loads(dict(bundle.files)["bundle.json"])}
    return out


def one(bundle: dict, kind: str) -> dict:
    (obj,) = [o for f, o in bundle.items() if f != "bundle.json" and o["kind"] == kind]
    return obj


def pod(bundle: dict) -> dict:
    return one(bundle, "Deployment")["spec"]["template"]["spec"]


# ---------------------------------------------------------------- 4. a high, fixed UID


def test_a_manifest_uid_in_range_runs_the_pod_as_that_user_group_and_fs_group(bundles):
    spec = pod(bundles[f"dev/plugins/{T1}/lesson-summarizer"])
    assert {k: spec["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup")} == \
        {"runAsUser": 20000, "runAsGroup": 20000, "fsGroup": 20000}


def test_a_manifest_without_a_uid_runs_as_the_platform_default(bundles):
    spec = pod(bundles[FULL])
    assert {k: spec["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup")} == \
        {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001}


def test_every_example_pod_runs_with_ids_of_at_least_10000(bundles):
    for path, bundle in bundles.items():
        ctx = pod(bundle)["securityContext"]
        assert min(ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) >= 10000, path
        assert ctx["runAsNonRoot"] is True


def test_a_manifest_that_names_only_a_user_gets_the_group_of_the_same_number(envs, tmp_path, render):
    edit(LESSON, "securityContext: {runAsUser: 20000, runAsGroup: 20000}", "securityContext: {runAsUser: 30000}")(envs)
    assert render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev").code == 0
    dep = yaml.safe_load((tmp_path / "out" / f"dev/plugins/{T1}/lesson-summarizer/deployment-lesson-summarizer.yaml").read_text())
    ctx = dep["spec"]["template"]["spec"]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (30000, 30000, 30000)


# ---------------------------------------------------------------- 3. drains


def test_the_preStop_sleep_and_grace_period_come_from_the_manifest_or_the_platform(bundles):
    lesson, quiz = pod(bundles[f"dev/plugins/{T1}/lesson-summarizer"]), pod(bundles[FULL])
    assert (lesson["containers"][0]["lifecycle"], lesson["terminationGracePeriodSeconds"]) == \
        ({"preStop": {"sleep": {"seconds": 10}}}, 60)
    assert (quiz["containers"][0]["lifecycle"], quiz["terminationGracePeriodSeconds"]) == \
        ({"preStop": {"sleep": {"seconds": 5}}}, 30)


def test_every_bundle_has_a_budget_that_lets_one_pod_go_and_never_waits_on_an_unready_one(bundles):
    for path, bundle in bundles.items():
        pdb = one(bundle, "PodDisruptionBudget")
        dep = one(bundle, "Deployment")
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"] == {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
                               "selector": dep["spec"]["selector"]}, path
        assert "minAvailable" not in pdb["spec"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_examples_hold_a_one_replica_plugin_and_one_with_more(bundles):
    hpas = {path: one(b, "HorizontalPodAutoscaler")["spec"] for path, b in bundles.items()}
    assert (hpas[ONE_REPLICA]["minReplicas"], hpas[ONE_REPLICA]["maxReplicas"]) == (1, 1)
    assert any(h["minReplicas"] >= 2 for h in hpas.values())
    # with one replica the budget still allows the one eviction a drain needs
    assert one(bundles[ONE_REPLICA], "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


# ---------------------------------------------------------------- 2. telemetry


def _egress_namespaces(bundle: dict) -> list[str]:
    (np,) = [o for f, o in bundle.items() if f != "bundle.json" and o["kind"] == "NetworkPolicy"
             and o["metadata"]["name"] != "default-deny"]
    return [rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for rule in np["spec"]["egress"]]


def _collector_rule(bundle: dict) -> dict:
    (np,) = [o for f, o in bundle.items() if f != "bundle.json" and o["kind"] == "NetworkPolicy"
             and o["metadata"]["name"] != "default-deny"]
    (rule,) = [r for r in np["spec"]["egress"]
               if r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "opentelemetry"]
    return rule


def test_the_sidecar_may_reach_the_collector_on_the_otlp_ports_only(bundles):
    for path, bundle in bundles.items():
        rule = _collector_rule(bundle)
        assert rule == {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "opentelemetry"}},
                                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "otel-gateway-collector"}}}],
                        "ports": [{"port": 4317, "protocol": "TCP"}, {"port": 4318, "protocol": "TCP"}]}, path


def test_nothing_but_dns_the_declared_targets_and_the_collector_is_reachable(bundles):
    lesson = bundles[f"dev/plugins/{T1}/lesson-summarizer"]  # egress: [plugin-gateway, data-model-engine]
    assert _egress_namespaces(lesson) == ["kube-system", "data-model-engine", "plugin-gateway", "opentelemetry"]


def test_without_the_sidecar_no_collector_is_needed_and_no_rule_is_added(envs, tmp_path, render):
    edit(DEV, "otelSidecar: opentelemetry-operator-system/plugin-sidecar", 'otelSidecar: "false"')(envs)
    text = (envs / DEV).read_text()
    (envs / DEV).write_text(re.sub(r"    collector:\n(      .*\n)+", "", text))
    assert render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev").code == 0
    np = yaml.safe_load((tmp_path / "out" / FULL / "networkpolicy-quiz-generator.yaml").read_text())
    namespaces = [r["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for r in np["spec"]["egress"]]
    assert "opentelemetry" not in namespaces and namespaces[0] == "kube-system"


def test_the_prometheus_rule_carries_the_platform_rule_selector_labels(bundles):
    rule = one(bundles[FULL], "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["plugins.adapstory.io/tenant"] == T1  # the bundle's own labels stay


# ---------------------------------------------------------------- input checks (exit 1, file:line, nothing written)

REJECTIONS = [
    pytest.param(edit(LESSON, "runAsUser: 20000", "runAsUser: 1000"),
                 rf"{LESSON}:25: spec.securityContext.runAsUser: .*1000 is below 10000", id="manifest-uid-below-10000"),
    pytest.param(edit(LESSON, "runAsGroup: 20000", "runAsGroup: 0"),
                 rf"{LESSON}:25: spec.securityContext.runAsGroup: .*0 is below 10000", id="manifest-gid-root"),
    pytest.param(edit(LESSON, "runAsUser: 20000", 'runAsUser: "20000"'),
                 rf"{LESSON}:25: spec.securityContext.runAsUser: Input should be a valid integer", id="manifest-uid-as-string"),
    pytest.param(edit(LESSON, "runAsUser: 20000", "runAsUser: 4294967296"),
                 rf"{LESSON}:25: spec.securityContext.runAsUser: .*above 2147483647", id="manifest-uid-too-large"),
    pytest.param(edit(LESSON, "runAsUser: 20000, runAsGroup: 20000", "runAsUser: 20000, fsGroup: 20000"),
                 rf"{LESSON}:25: spec.securityContext.fsGroup: .*(unknown field|Extra inputs)", id="manifest-fs-group-not-a-field"),
    pytest.param(edit(LESSON, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 10"),
                 rf"{LESSON}:26: spec.shutdown: .*terminationGracePeriodSeconds \(10\) must exceed preStopSeconds \(10\)",
                 id="manifest-grace-not-above-prestop"),
    pytest.param(edit(LESSON, "{preStopSeconds: 10, terminationGracePeriodSeconds: 60}", "{terminationGracePeriodSeconds: 60}"),
                 rf"{LESSON}:26: spec.shutdown.preStopSeconds: required field is missing", id="manifest-shutdown-half-given"),
    pytest.param(edit(LESSON, "preStopSeconds: 10", "preStopSeconds: 0"),
                 rf"{LESSON}:26: spec.shutdown.preStopSeconds: Input should be greater than or equal to 1", id="manifest-prestop-zero"),
    pytest.param(edit(DEV, "shutdown: {preStopSeconds: 5, terminationGracePeriodSeconds: 30}",
                      "shutdown: {preStopSeconds: 30, terminationGracePeriodSeconds: 30}"),
                 rf"{DEV}:72: spec.defaults.shutdown: .*must exceed preStopSeconds", id="platform-grace-not-above-prestop"),
    pytest.param(edit(DEV, "securityContext: {runAsUser: 10001, runAsGroup: 10001}", "securityContext: {runAsUser: 999}"),
                 rf"{DEV}:71: spec.defaults.securityContext.runAsUser: .*999 is below 10000", id="platform-default-uid-low"),
    pytest.param(edit(DEV, "ruleLabels: {release: kube-prometheus-stack}", "ruleLabels: {plugins.adapstory.io/tenant: x}"),
                 rf"{DEV}:67: spec.observability.ruleLabels.plugins.adapstory.io/tenant: .*the renderer's own",
                 id="rule-label-reserved-prefix"),
    pytest.param(edit(DEV, "ruleLabels: {release: kube-prometheus-stack}", 'ruleLabels: {release: "a b"}'),
                 rf"{DEV}:67: spec.observability.ruleLabels.release: .*not a Kubernetes label value", id="rule-label-bad-value"),
    pytest.param(edit(DEV, "ports: [{port: 4317}, {port: 4318}]", "ports: [{port: 0}]"),
                 rf"{DEV}:65: spec.observability.collector.ports\[0\].port: Input should be greater than or equal to 1",
                 id="collector-port-zero"),
    pytest.param(lambda root: (root / DEV).write_text(re.sub(r"    collector:\n(      .*\n)+", "", (root / DEV).read_text())),
                 rf"{DEV}:\d+: spec.observability: .*observability.collector is required while the OpenTelemetry sidecar is injected",
                 id="collector-missing"),
]


@pytest.mark.parametrize("mutate, expected", REJECTIONS)
def test_bad_pod_settings_are_rejected_with_file_line_and_field_and_nothing_is_written(envs, tmp_path, render,
                                                                                       mutate, expected):
    mutate(envs)
    out = tmp_path / "out"
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1, result.err
    assert re.search(expected, result.err), f"expected /{expected}/ in:\n{result.err}"
    assert "Traceback" not in result.err
    assert tree_digest(out) == "absent"


def test_the_isolation_audit_refuses_a_collector_inside_a_plugin_namespace(envs, tmp_path, render):
    edit(DEV, "      namespace: opentelemetry\n", f"      namespace: plugin-riverside-academy-grade-sync\n")(envs)
    result = render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev")
    assert result.code == 1
    assert "isolation-cross-tenant-network: a rule reaches namespace plugin-riverside-academy-grade-sync" in result.err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the policy gate on rendered bundles


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(REPO / "policies")


def _check(engine, path: str, bundle: dict) -> tuple[list[str], list[str]]:
    objects = sorted((f, o) for f, o in bundle.items() if f != "bundle.json")
    return engine.check_bundle(path, objects, bundle["bundle.json"])


def _rules(lines: list[str]) -> set[str]:
    return {line.split(": ")[2] for line in lines}


def test_every_example_bundle_passes_the_pod_rules(engine, bundles):
    for path, bundle in bundles.items():
        assert _check(engine, path, bundle) == ([], []), path


BREAKS = [
    pytest.param(lambda b: pod(b)["securityContext"].update(runAsUser=1000), "high-uid", id="low-uid"),
    pytest.param(lambda b: pod(b)["securityContext"].pop("fsGroup"), "high-uid", id="no-fs-group"),
    pytest.param(lambda b: pod(b)["containers"][0].pop("lifecycle"), "graceful-shutdown", id="no-prestop"),
    pytest.param(lambda b: pod(b).update(terminationGracePeriodSeconds=5), "graceful-shutdown", id="grace-equal-to-delay"),
    pytest.param(lambda b: one(b, "PodDisruptionBudget")["spec"].update(maxUnavailable=0), "pod-disruption-budget",
                 id="budget-blocks-drains"),
    pytest.param(lambda b: one(b, "PodDisruptionBudget")["spec"].pop("unhealthyPodEvictionPolicy"), "pod-disruption-budget",
                 id="budget-waits-on-unready-pods"),
    pytest.param(lambda b: b.pop(next(f for f, o in b.items() if f != "bundle.json" and o["kind"] == "PodDisruptionBudget")),
                 "pod-disruption-budget", id="no-budget"),
]


@pytest.mark.parametrize("breaker, rule", BREAKS)
def test_a_broken_pod_setting_is_denied_by_its_rule(engine, bundles, breaker, rule):
    bundle = copy.deepcopy(bundles[ONE_REPLICA])
    breaker(bundle)
    denied, _ = _check(engine, ONE_REPLICA, bundle)
    assert _rules(denied) == {rule}, denied


def test_a_single_object_is_checked_the_same_way_as_in_its_bundle(engine, bundles):
    bundle = copy.deepcopy(bundles[ONE_REPLICA])
    pod(bundle)["securityContext"]["runAsGroup"] = 100
    fname = next(f for f, o in bundle.items() if f != "bundle.json" and o["kind"] == "Deployment")
    single, _ = engine.check_object(f"{ONE_REPLICA}/{fname}", bundle[fname])
    combined, _ = _check(engine, ONE_REPLICA, bundle)
    assert _rules(single) == {"high-uid"} and single == combined
