"""The policy gate (policies/*.rego through renderer.policy), run in process with regopy on bundles
rendered from the example environments and then broken one edit at a time."""

from __future__ import annotations

import copy
import json
import pickle
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLE, REPO
from renderer.pipeline.load import load
from renderer.pipeline.plan import plan
from renderer.gates.policy import PolicyEngine, PolicyError, run_policy_unit_tests
from renderer.pipeline.render import Renderer

POLICIES = REPO / "policies"
FULL = "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"  # secrets, Kafka, database
TENANT = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
OTHER_TENANT = "riverside-academy"
DIGEST = "sha256:5f020177d7ee8c6f4b827a5473ce489c3d5c7686c5de7cbc1d51d190624f95ed"



@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(POLICIES)


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[dict[str, dict], dict]]:
    """Every example bundle: path -> ({file: object}, bundle.json)."""
    renderer = Renderer(REPO / "templates")
    out = {}
    for env in plan(load(EXAMPLE), "policy-tests"):
        for bundle_plan in env.bundles:
            bundle = renderer.render_bundle(bundle_plan)
            out[bundle.path] = (dict(bundle.objects), json.loads(dict(bundle.files)["bundle.json"]))
    return out


class Bundle:
    """A private, editable copy of one rendered bundle."""

    def __init__(self, path: str, objects: dict[str, dict], info: dict | None):
        self.path = path
        self.objects = copy.deepcopy(objects)
        self.info = copy.deepcopy(info)

    def file_of(self, kind: str, name: str | None = None) -> str:
        files = [f for f, o in self.objects.items()
                 if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
        assert len(files) == 1, f"{kind}/{name}: {files}"
        return files[0]

    def one(self, kind: str, name: str | None = None) -> dict:
        return self.objects[self.file_of(kind, name)]

    def drop(self, kind: str, name: str | None = None) -> None:
        del self.objects[self.file_of(kind, name)]

    def container(self) -> dict:
        return self.pod()["containers"][0]

    def pod(self) -> dict:
        return self.one("Deployment")["spec"]["template"]["spec"]

    def without_platform_prefixes(self) -> "Bundle":
        """A bundle from a producer that records no prefixes: the policies fall back to weaker checks."""
        for obj in self.objects.values():
            if obj["kind"] == "KafkaUser":
                for key in ("plugins.adapstory.io/topic-prefix", "plugins.adapstory.io/group-prefix"):
                    obj["metadata"].get("annotations", {}).pop(key, None)
                if not obj["metadata"].get("annotations"):
                    obj["metadata"].pop("annotations", None)
        self.info.pop("isolation", None)
        return self

    def with_platform_prefixes(self) -> "Bundle":
        """What the renderer is asked to add: the KafkaUser's prefix annotations and bundle.json's
        isolation block."""
        tenant, plugin = self.info["tenant"], self.info["plugin"]
        for obj in self.objects.values():
            if obj["kind"] == "KafkaUser":
                obj["metadata"].setdefault("annotations", {}).update({
                    "plugins.adapstory.io/topic-prefix": f"tenant.{tenant}.",
                    "plugins.adapstory.io/group-prefix": f"tenant.{tenant}.{plugin}.",
                })
        ns = self.one("Namespace")
        self.info["isolation"] = {
            "namespace": ns["metadata"]["name"],
            "vaultPrefix": f"adapstory/plugins/{plugin}/{tenant}/",
            "topicPrefix": f"tenant.{tenant}.",
            "groupPrefix": f"tenant.{tenant}.{plugin}.",
        }
        if any(o["kind"] == "Schema" for o in self.objects.values()):
            schema, role = self.one("Schema"), self.one("Role")
            self.info["isolation"].update({
                "database": schema["spec"]["forProvider"]["database"],
                "schema": schema["metadata"]["annotations"]["crossplane.io/external-name"],
                "dbRole": role["metadata"]["annotations"]["crossplane.io/external-name"],
            })
        return self

    def check(self, engine: PolicyEngine) -> tuple[list[str], list[str]]:
        return engine.check_bundle(self.path, sorted(self.objects.items()), self.info)


def rules(lines: list[str]) -> set[str]:
    """The rule ids of report lines `bundle/file: Kind/name: rule: message`."""
    return {line.split(": ")[2] for line in lines}


@pytest.fixture
def full(rendered) -> Bundle:
    return Bundle(FULL, *rendered[FULL])


# ---------------------------------------------------------------- the Rego unit tests


def test_every_rego_unit_test_passes():
    results = run_policy_unit_tests(POLICIES)
    failed = [name for name, ok in results if not ok]
    assert failed == []
    files = {name.split(":")[0] for name, _ in results}
    assert files == {"bundle_test.rego", "isolation_test.rego", "lib_test.rego", "network_test.rego",
                     "pod_test.rego", "workload_test.rego"}
    assert len(results) >= 90


def test_a_failing_or_broken_rego_unit_test_is_reported_failed(tmp_path):
    copy_ = tmp_path / "policies"
    shutil.copytree(POLICIES, copy_)
    with (copy_ / "lib_test.rego").open("a") as f:
        f.write('\ntest_a_false_expectation if {\n\tdir_of("a/b") == "x"\n}\n'
                "\ntest_an_undefined_value if {\n\tfx_deployment.nothing == 1\n}\n"
                '\ntest_with_input_is_not_run if {\n\tcount(deny) == 0 with input as {"kind": "Pod"}\n}\n')
    # and a policy bug: privileged containers no longer caught
    workload = copy_ / "workload.rego"
    workload.write_text(workload.read_text().replace("c.securityContext.privileged == true", "c.securityContext.privileged == 42"))
    results = dict(run_policy_unit_tests(copy_))
    assert results["lib_test.rego: test_a_false_expectation"] is False
    assert results["lib_test.rego: test_an_undefined_value"] is False
    assert results["lib_test.rego: test_with_input_is_not_run"] is False
    assert results["workload_test.rego: test_a_privileged_container_is_denied"] is False
    assert results["workload_test.rego: test_a_secure_deployment_passes_every_workload_check"] is True


def test_a_policy_that_does_not_compile_names_its_file_and_fails_every_unit_test(tmp_path):
    copy_ = tmp_path / "policies"
    shutil.copytree(POLICIES, copy_)
    (copy_ / "broken.rego").write_text("package main\n\ndeny contains msg if {\n")
    with pytest.raises(PolicyError) as err:
        PolicyEngine(copy_).check_bundle("b", [], None)
    assert "broken.rego" in str(err.value)
    assert "policies/" in err.value.hint
    results = run_policy_unit_tests(copy_)
    assert results and not any(ok for _, ok in results)


# ---------------------------------------------------------------- rendered bundles


def test_every_example_bundle_passes(engine, rendered):
    assert len(rendered) >= 8
    for path, (objects, info) in rendered.items():
        assert Bundle(path, objects, info).check(engine) == ([], []), path


def test_every_example_bundle_passes_with_the_requested_prefix_annotations(engine, rendered):
    for path, (objects, info) in rendered.items():
        assert Bundle(path, objects, info).with_platform_prefixes().check(engine) == ([], []), path


def test_without_bundle_json_the_namespace_labels_name_the_owner(engine, full):
    full.info = None
    assert full.check(engine) == ([], [])
    full.one("ServiceAccount")["metadata"]["labels"]["plugins.adapstory.io/tenant"] = OTHER_TENANT
    assert rules(full.check(engine)[0]) == {"bundle-identity"}


def test_a_harmless_annotation_passes(engine, full):
    full.one("Deployment")["metadata"].setdefault("annotations", {})["example.org/owner"] = "team-quiz"
    full.one("Service")["metadata"]["labels"]["example.org/cost-center"] = "42"
    assert full.check(engine) == ([], [])


def test_the_engine_never_mutates_its_inputs(engine, full):
    full.container()["env"].append({"name": "QUOTE", "value": 'a "quoted" \\ value'})
    objects = sorted(full.objects.items())
    before = copy.deepcopy((objects, full.info))
    engine.check_bundle(full.path, objects, full.info)
    engine.check_object("x.yaml", objects[0][1])
    assert (objects, full.info) == before


def test_an_engine_sent_to_another_process_by_pickle_still_checks(engine, full):
    copy_ = pickle.loads(pickle.dumps(engine))
    full.container()["securityContext"]["privileged"] = True
    assert copy_.check_bundle(full.path, sorted(full.objects.items()), full.info) == full.check(engine)
    assert rules(full.check(copy_)[0]) == {"no-privileged"}


def test_a_violation_line_names_bundle_file_object_rule_and_fix(engine, full):
    full.container()["securityContext"]["privileged"] = True
    deny, warn = full.check(engine)
    assert deny == [f"{FULL}/deployment-quiz-generator.yaml: Deployment/quiz-generator: no-privileged: "
                    "container plugin is privileged: remove securityContext.privileged"]
    assert warn == []


def test_a_missing_object_is_reported_on_the_namespace(engine, full):
    full.drop("ResourceQuota")
    ns = full.file_of("Namespace")
    assert full.check(engine)[0] == [f"{FULL}/{ns}: Namespace/{full.one('Namespace')['metadata']['name']}: "
                                     "resource-quota: the bundle has no ResourceQuota with spec.hard limits"]


def test_quotes_and_backslashes_in_values_survive_the_engine(engine, full):
    key = f'adapstory/plugins/grade-sync/{TENANT}/a"b\\c\\n\tü'
    full.one("ExternalSecret")["spec"]["data"][0]["remoteRef"]["key"] = key
    deny, _ = full.check(engine)
    assert len(deny) == 1
    assert f"reads '{key}', outside the bundle's Vault prefix" in deny[0]


def test_warnings_are_reported_apart_from_violations(engine, full):
    full.container()["securityContext"]["readOnlyRootFilesystem"] = False
    del full.container()["resources"]["limits"]
    deny, warn = full.check(engine)
    assert deny == []
    assert rules(warn) == {"read-only-root-filesystem", "resource-limits"}


# ---------------------------------------------------------------- one edit, one rule


def _set_egress(peer_rule):
    def edit(b: Bundle):
        b.one("NetworkPolicy", "quiz-generator")["spec"]["egress"].append(peer_rule)
    return edit


def _acl(resource: dict, operations=("Read",)):
    def edit(b: Bundle):
        b.one("KafkaUser")["spec"]["authorization"]["acls"].append({"operations": list(operations), "resource": resource})
    return edit


def _drop_label(b: Bundle):
    del b.one("ServiceAccount")["metadata"]["labels"]["plugins.adapstory.io/tenant"]


BROKEN = [
    pytest.param(lambda b: b.container()["securityContext"].update(runAsNonRoot=False), {"run-as-non-root"},
                 id="runAsNonRoot-false"),
    pytest.param(lambda b: b.pod()["securityContext"].update(runAsUser=0), {"run-as-non-root", "high-uid"}, id="runAsUser-0"),
    pytest.param(lambda b: b.container()["securityContext"].update(allowPrivilegeEscalation=True),
                 {"no-privilege-escalation"}, id="allowPrivilegeEscalation-true"),
    pytest.param(lambda b: b.pod().update(hostNetwork=True), {"no-host-namespaces"}, id="hostNetwork"),
    pytest.param(lambda b: b.pod().update(hostPID=True), {"no-host-namespaces"}, id="hostPID"),
    pytest.param(lambda b: b.pod()["volumes"].append({"name": "root", "hostPath": {"path": "/"}}), {"no-host-path"},
                 id="hostPath-volume"),
    pytest.param(lambda b: b.container()["securityContext"].update(privileged=True), {"no-privileged"},
                 id="privileged"),
    pytest.param(lambda b: b.container()["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
                 {"capabilities"}, id="added-capability"),
    pytest.param(lambda b: b.container()["ports"][0].update(hostPort=8080), {"no-host-ports"}, id="hostPort"),
    pytest.param(lambda b: b.container().update(image="registry.adapstory.io/acme/quiz-generator:1.3.0"),
                 {"image-digest"}, id="image-by-tag"),
    pytest.param(lambda b: b.drop("NetworkPolicy", "default-deny"), {"network-default-deny"},
                 id="default-deny-removed"),
    pytest.param(lambda b: b.one("NetworkPolicy", "default-deny")["spec"].update(ingress=[{"from": [{"podSelector": {}}]}]),
                 {"network-default-deny"}, id="default-deny-allows-ingress"),
    pytest.param(lambda b: b.one("NetworkPolicy", "default-deny")["spec"].update(egress=[{}]),
                 {"network-default-deny", "egress-open-to-all"}, id="default-deny-allows-all-egress"),
    pytest.param(lambda b: b.drop("ResourceQuota"), {"resource-quota"}, id="quota-removed"),
    pytest.param(lambda b: b.drop("LimitRange"), {"limit-range"}, id="limit-range-removed"),
    pytest.param(_set_egress({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}), {"egress-open-to-all"},
                 id="egress-0.0.0.0/0"),
    pytest.param(_set_egress({"to": [], "ports": [{"port": 443}]}), {"egress-open-to-all"}, id="egress-to-empty"),
    pytest.param(_set_egress({"to": [{}]}), {"egress-open-to-all"}, id="egress-empty-peer"),
    pytest.param(_set_egress({"ports": [{"port": 443}]}), {"egress-open-to-all"}, id="egress-without-to"),
    pytest.param(lambda b: b.one("ExternalSecret")["spec"]["data"][0]["remoteRef"].update(
        key=f"adapstory/plugins/quiz-generator/{OTHER_TENANT}/llm/openai"), {"vault-prefix"},
        id="secret-of-another-tenant"),
    pytest.param(lambda b: b.one("ExternalSecret")["spec"]["data"][0]["remoteRef"].update(
        key=f"adapstory/plugins/quiz-generator/{TENANT}/../../grade-sync/{TENANT}/token"), {"vault-prefix"},
        id="secret-path-traversal"),
    pytest.param(_acl({"type": "topic", "name": f"tenant.{OTHER_TENANT}.lesson.published", "patternType": "literal"}),
                 {"kafka-acl-scope"}, id="acl-on-another-tenants-topic"),
    pytest.param(_acl({"type": "group", "name": f"tenant.{TENANT}.grade-sync.", "patternType": "prefix"}),
                 {"kafka-acl-scope"}, id="acl-on-another-plugins-group"),
    pytest.param(_acl({"type": "topic", "name": "*", "patternType": "literal"}), {"kafka-acl-wildcard", "kafka-acl-scope"},
                 id="acl-wildcard"),
    pytest.param(_acl({"type": "topic", "name": f"tenant.{TENANT}.", "patternType": "prefix"}), {"kafka-acl-wildcard"},
                 id="acl-prefix-on-topics"),
    pytest.param(_acl({"type": "cluster"}, ("Create",)), {"kafka-acl-scope"}, id="acl-on-the-cluster"),
    pytest.param(lambda b: b.one("Grant")["spec"]["forProvider"]["schemaRef"].update(name="grade-sync"),
                 {"db-grant-scope"}, id="grant-on-another-schema"),
    pytest.param(lambda b: b.one("Grant")["spec"]["forProvider"].update(database="tenant_riverside_academy"),
                 {"db-grant-scope"}, id="grant-on-another-database"),
    pytest.param(lambda b: b.one("Grant")["spec"]["forProvider"].update(memberOf="postgres"), {"db-grant-scope"},
                 id="grant-of-role-membership"),
    pytest.param(lambda b: b.one("Role")["spec"]["forProvider"]["privileges"].update(superUser=True),
                 {"db-role-privileges"}, id="superuser-role"),
    pytest.param(_drop_label, {"required-labels"}, id="missing-required-label"),
    pytest.param(lambda b: b.one("ServiceAccount")["metadata"]["labels"].update({"plugins.adapstory.io/tenant": OTHER_TENANT}),
                 {"bundle-identity"}, id="labelled-for-another-tenant"),
    pytest.param(lambda b: b.one("ConfigMap")["metadata"].update(namespace="kube-system"), {"bundle-namespace"},
                 id="object-in-another-namespace"),
    pytest.param(lambda b: b.one("Namespace")["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "privileged"}),
                 {"namespace-pod-security"}, id="namespace-not-restricted"),
    pytest.param(lambda b: b.objects.update({"clusterrolebinding-x.yaml": {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {**b.one("ServiceAccount")["metadata"], "name": "x"}}}),
        {"no-cluster-scoped"}, id="cluster-wide-object"),
]


@pytest.mark.parametrize("edit, expected", BROKEN)
def test_one_broken_object_is_caught_by_its_rule_without_the_prefix_annotations(engine, full, edit, expected):
    full.without_platform_prefixes()
    edit(full)
    deny, _ = full.check(engine)
    assert deny, "the edit went through"
    assert rules(deny) == expected
    for line in deny:
        assert line.startswith(f"{FULL}/"), line


# With the platform's prefixes, a topic ACL equal to the tenant's prefix is also out of scope (a
# topic name must go on after the prefix).
WITH_PREFIXES = {"acl-prefix-on-topics": {"kafka-acl-wildcard", "kafka-acl-scope"}}


@pytest.mark.parametrize("edit, expected", BROKEN)
def test_one_broken_object_is_caught_with_the_requested_prefix_annotations_too(engine, full, edit, expected, request):
    full.with_platform_prefixes()
    edit(full)
    case = request.node.callspec.id
    assert rules(full.check(engine)[0]) == WITH_PREFIXES.get(case, expected)


# Cases that one object shows on its own (the rest need the bundle: a missing object, a name
# that must match another object's).
BUNDLE_CASES = {"default-deny-removed", "default-deny-allows-ingress", "default-deny-allows-all-egress",
                "quota-removed", "limit-range-removed", "grant-on-another-schema", "grant-on-another-database",
                "labelled-for-another-tenant", "object-in-another-namespace"}


@pytest.mark.parametrize("edit, expected", [p for p in BROKEN if p.id not in BUNDLE_CASES])
def test_conftest_without_combine_finds_the_same_per_object_violations(engine, full, edit, expected):
    before = copy.deepcopy(full.objects)
    edit(full)
    changed = [f for f, obj in full.objects.items() if before.get(f) != obj]
    assert len(changed) == 1
    file = changed[0]
    combined = [line for line in full.check(engine)[0] if line.startswith(f"{FULL}/{file}: ")]
    single, _ = engine.check_object(f"{FULL}/{file}", full.objects[file])
    assert single == combined


def test_kafka_prefix_annotations_must_match_bundle_json(engine, full):
    full.with_platform_prefixes()
    full.info["isolation"]["groupPrefix"] = f"tenant.{TENANT}.grade-sync."
    assert rules(full.check(engine)[0]) == {"kafka-acl-scope"}


def test_a_bundle_moved_into_another_tenants_folder_is_caught(engine, full):
    moved = f"dev/plugins/{OTHER_TENANT}/quiz-generator"
    deny, _ = engine.check_bundle(moved, sorted(full.objects.items()), full.info)
    assert rules(deny) == {"bundle-identity"}
