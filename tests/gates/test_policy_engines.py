"""The policies mean the same under the gate's engine (regorus, in process) and under the real OPA
engine that conftest runs in CI (tests/support/opa_oracle.py, in a child process): every input of the
policy table gets the same deny and warn messages from both, and the Rego unit tests pass under
both. OPA must be installed (`make test` installs it): without it these tests fail, not skip."""

from __future__ import annotations

import copy
import shutil

import pytest

from tests.support.opa_oracle import OpaOracle, OracleError
from tests.support.policy_cases import BROKEN, POLICIES, Bundle
from renderer.gates.policy import PolicyEngine, bundle_input, run_policy_unit_tests


@pytest.fixture(scope="module")
def opa():
    oracle = OpaOracle(POLICIES)
    yield oracle
    oracle.close()


def combined(bundle: Bundle) -> list[dict]:
    return bundle_input(bundle.path, sorted(bundle.objects.items()), bundle.info)


def assert_same(engine: PolicyEngine, opa: OpaOracle, value) -> tuple[list[str], list[str]]:
    """Both engines' (deny, warn) on one input; they must be equal. Returns them."""
    ours = engine.evaluate(value)
    assert ours == opa.evaluate(value)
    return ours


# ---------------------------------------------------------------- the oracle itself


def test_the_oracle_is_opa_and_sees_what_regorus_sees_differently(engine, opa, full, tmp_path):
    """The old form of the capabilities rule (`not "ALL" in c...capabilities.drop`) passes a
    container without a capabilities block under OPA: the comparison must catch that."""
    old = tmp_path / "policies"
    shutil.copytree(POLICIES, old)
    workload = old / "workload.rego"
    text = workload.read_text()
    assert 'not "ALL" in dropped_capabilities(c)' in text
    workload.write_text(text.replace('not "ALL" in dropped_capabilities(c)',
                                     'not "ALL" in c.securityContext.capabilities.drop'))
    full.container()["securityContext"].pop("capabilities")
    oracle = OpaOracle(old)
    try:
        deny_opa, _ = oracle.evaluate(combined(full))
    finally:
        oracle.close()
    deny_regorus, _ = PolicyEngine(old).evaluate(combined(full))
    assert [m for m in deny_regorus if m.startswith("capabilities: ")]
    assert not [m for m in deny_opa if m.startswith("capabilities: ")]


def test_a_policy_that_opa_cannot_compile_is_an_oracle_error(tmp_path):
    broken = tmp_path / "policies"
    shutil.copytree(POLICIES, broken)
    (broken / "broken.rego").write_text("package main\n\nimport rego.v1\n\nx := nofunc(1)\n")
    oracle = OpaOracle(broken)
    try:
        with pytest.raises(OracleError, match="nofunc"):
            oracle.evaluate([])
    finally:
        oracle.close()


# ---------------------------------------------------------------- the policy table under both


def test_every_example_bundle_passes_under_both_engines(engine, opa, rendered):
    assert len(rendered) >= 8
    for path, (objects, info) in rendered.items():
        bundle = Bundle(path, objects, info)
        assert assert_same(engine, opa, combined(bundle)) == ([], []), path
        assert assert_same(engine, opa, combined(bundle.with_platform_prefixes())) == ([], []), path


def test_every_example_object_alone_gets_the_same_verdicts_under_both_engines(engine, opa, rendered):
    """conftest without --combine: one object per input."""
    count = 0
    for objects, info in rendered.values():
        for obj in [*objects.values(), info]:
            assert_same(engine, opa, obj)
            count += 1
    assert count > 100


@pytest.mark.parametrize("prefixes", [pytest.param(False, id="without-prefixes"), pytest.param(True, id="with-prefixes")])
@pytest.mark.parametrize("edit, expected", BROKEN)
def test_a_broken_bundle_gets_the_same_verdicts_under_both_engines(engine, opa, full, edit, expected, prefixes):
    full.with_platform_prefixes() if prefixes else full.without_platform_prefixes()
    before = copy.deepcopy(full.objects)
    edit(full)
    deny, _ = assert_same(engine, opa, combined(full))
    assert {m.split(": ")[0] for m in deny} >= expected
    for file, obj in full.objects.items():  # and the changed object alone, as conftest without --combine
        if before.get(file) != obj:
            assert_same(engine, opa, obj)


def test_warnings_are_the_same_under_both_engines(engine, opa, full):
    full.container()["securityContext"]["readOnlyRootFilesystem"] = False
    del full.container()["resources"]["limits"]
    deny, warn = assert_same(engine, opa, combined(full))
    assert deny == []
    assert {m.split(": ")[0] for m in warn} == {"read-only-root-filesystem", "resource-limits"}


def _several_documents(b: Bundle):
    b.objects["two.yaml"] = [b.one("ResourceQuota"), b.one("LimitRange")]


def _no_kind(b: Bundle):
    b.one("ConfigMap").pop("kind")


def _labels_as_list(b: Bundle):
    b.one("ServiceAccount")["metadata"]["labels"] = ["plugins.adapstory.io/tenant"]


def _containers_as_strings(b: Bundle):
    b.pod()["containers"] = ["plugin"]


def _no_pod_template(b: Bundle):
    b.one("Deployment")["spec"].pop("template")


def _numbers_for_strings(b: Bundle):
    b.container()["image"] = 42
    b.one("Grant")["spec"]["forProvider"]["database"] = 7


def _kafka_acl_without_resource(b: Bundle):
    b.one("KafkaUser")["spec"]["authorization"]["acls"].append({"operations": ["Read"]})


def _quota_hard_as_number(b: Bundle):
    b.one("ResourceQuota")["spec"]["hard"] = 5


def _egress_to_as_string(b: Bundle):
    b.one("NetworkPolicy", "quiz-generator")["spec"]["egress"][0]["to"] = "everywhere"


def _acl_operations_as_string(b: Bundle):
    b.one("KafkaUser")["spec"]["authorization"]["acls"][0]["operations"] = "Read"


def _limits_as_null(b: Bundle):
    b.one("LimitRange")["spec"]["limits"] = None


def _selector_labels_as_null(b: Bundle):
    b.one("NetworkPolicy", "quiz-generator")["spec"]["podSelector"]["matchLabels"] = None


def _bundle_json_without_identity(b: Bundle):
    b.info = {"plugin": b.info["plugin"]}


# (edit, denied): an object without kind is no Kubernetes object to the policies, a Deployment
# without a pod template has no containers to judge, operations that are no list grant nothing,
# a selector whose matchLabels is null selects the namespace's pods (the schema gate rejects them
# all); without tenant, plugin and env in bundle.json the Namespace's labels name the owner.
ODD_SHAPES = [
    pytest.param(_several_documents, True, id="a-file-with-several-documents"),
    pytest.param(_no_kind, False, id="an-object-without-kind"),
    pytest.param(_labels_as_list, True, id="labels-as-a-list"),
    pytest.param(_containers_as_strings, True, id="containers-as-strings"),
    pytest.param(_no_pod_template, False, id="a-deployment-without-pod-template"),
    pytest.param(_numbers_for_strings, True, id="numbers-where-strings-belong"),
    pytest.param(_kafka_acl_without_resource, True, id="a-kafka-acl-without-resource"),
    pytest.param(_bundle_json_without_identity, False, id="bundle-json-without-identity"),
    pytest.param(_quota_hard_as_number, True, id="quota-hard-as-a-number"),
    pytest.param(_egress_to_as_string, True, id="egress-to-as-a-string"),
    pytest.param(_acl_operations_as_string, False, id="acl-operations-as-a-string"),
    pytest.param(_limits_as_null, True, id="limit-range-limits-as-null"),
    pytest.param(_selector_labels_as_null, False, id="pod-selector-labels-as-null"),
]


@pytest.mark.parametrize("edit, denied", ODD_SHAPES)
def test_odd_shapes_get_the_same_verdicts_under_both_engines(engine, opa, full, edit, denied):
    """Inputs of the wrong shape (the schema gate rejects them too): both engines give the same
    verdicts, and neither fails on them."""
    edit(full)
    deny, _ = assert_same(engine, opa, combined(full))
    assert bool(deny) is denied


# ---------------------------------------------------------------- the Rego unit tests under both


def test_every_rego_unit_test_passes_under_opa_and_under_regorus(opa):
    under_opa = opa.unit_tests()
    under_regorus = run_policy_unit_tests(POLICIES)
    assert [name for name, ok in under_opa if not ok] == []
    assert [name for name, ok in under_regorus if not ok] == []
    assert [name for name, _ in under_opa] == [name for name, _ in under_regorus]
    assert len(under_opa) >= 106
