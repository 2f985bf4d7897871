"""The policy table shared by the gate's tests (tests/test_policies.py) and the engines' tests
(tests/test_policy_engines.py): the example bundles, an editable copy of one, and the broken
edits with the rules that must catch them."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import EXAMPLE, REPO
from renderer.pipeline.load import load
from renderer.pipeline.plan import plan
from renderer.gates.policy import PolicyEngine
from renderer.pipeline.render import Renderer

POLICIES = REPO / "policies"
FULL = "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"  # secrets, Kafka, database
TENANT = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
OTHER_TENANT = "riverside-academy"


def render_examples() -> dict[str, tuple[dict[str, dict], dict]]:
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
        if name is None and len(files) > 1:  # Role, ExternalSecret: the plugin's own, not the Kafka reader's
            files = [f for f in files if self.objects[f]["metadata"]["name"] == self.path.rsplit("/", 1)[-1]]
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
        keep = {k: v for k, v in (self.info.get("isolation") or {}).items() if k == "onUninstall"}
        self.info["isolation"] = {**keep,
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
    # Edits whose field is missing altogether: a negation over a missing field must still deny
    # under OPA, which evaluates the reference before `not` (policies/lib.rego).
    pytest.param(lambda b: b.container()["securityContext"].pop("capabilities"), {"capabilities"},
                 id="no-capabilities-block"),
    pytest.param(lambda b: b.container()["securityContext"]["capabilities"].pop("drop"), {"capabilities"},
                 id="capabilities-without-drop"),
    pytest.param(lambda b: b.container().pop("image"), {"image-digest"}, id="container-without-image"),
    pytest.param(lambda b: b.one("ServiceAccount")["metadata"].pop("labels"), {"required-labels"},
                 id="object-without-labels"),
    pytest.param(lambda b: b.one("Deployment")["spec"]["template"]["metadata"].pop("labels"), {"required-labels"},
                 id="pod-template-without-labels"),
    pytest.param(lambda b: b.one("Grant")["spec"]["forProvider"].pop("database"), {"db-grant-scope"},
                 id="grant-without-database"),
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


# With the platform's prefixes, a topic ACL equal to the tenant's prefix is also out of scope (a
# topic name must go on after the prefix).
WITH_PREFIXES = {"acl-prefix-on-topics": {"kafka-acl-wildcard", "kafka-acl-scope"}}


# Cases that one object shows on its own (the rest need the bundle: a missing object, a name
# that must match another object's).
BUNDLE_CASES = {"default-deny-removed", "default-deny-allows-ingress", "default-deny-allows-all-egress",
                "quota-removed", "limit-range-removed", "grant-on-another-schema", "grant-on-another-database",
                "labelled-for-another-tenant", "object-in-another-namespace", "grant-without-database"}
