"""Tenant-isolation audit across all bundles of an environment (`render validate DIR`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from renderer.pipeline.audit import EnvironmentAudit, bundle_facts
from renderer.core.yamlio import dump

A = "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"
B = "dev/plugins/riverside-academy/quiz-generator"
A_NS = "plugin-4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d-quiz-generator"
A_TENANT = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"


def change(rel: str, mutate):
    def apply(root: Path) -> None:
        path = root / rel
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        mutate(obj)
        path.write_bytes(dump(obj))
    return apply


def _set(path: list, value):
    def mutate(obj):
        node = obj
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return mutate


KU_B = f"{B}/kafkauser-plugin-riverside-academy-quiz-generator.yaml"
A_GROUP = f"tenant.{A_TENANT}.quiz-generator."

CASES = [
    pytest.param(change(f"{B}/externalsecret-quiz-generator.yaml",
                        _set(["spec", "data", 0, "remoteRef", "key"], f"adapstory/plugins/quiz-generator/{A_TENANT}/llm/openai")),
                 "Vault prefix", id="shared-vault-prefix"),
    pytest.param(change(KU_B, _set(["metadata", "name"], A_NS)), "KafkaUser kafka/" + A_NS, id="shared-kafkauser"),
    pytest.param(change(KU_B, lambda o: o["spec"]["authorization"]["acls"][0]["resource"].update(name=A_GROUP)),
                 "consumer-group prefix " + A_GROUP, id="shared-consumer-group-prefix"),
    pytest.param(change(f"{B}/role-quiz-generator.yaml",
                        _set(["metadata", "annotations", "crossplane.io/external-name"], f"plugin_quiz_generator_{A_TENANT.replace('-', '_')}")),
                 "DB role", id="shared-db-role"),
    pytest.param(change(f"{B}/schema-quiz-generator.yaml",
                        _set(["spec", "forProvider", "database"], f"tenant_{A_TENANT.replace('-', '_')}")),
                 "(database, schema)", id="shared-database-schema"),
]


@pytest.mark.parametrize("mutate, what", CASES)
def test_two_bundles_claiming_one_resource_are_reported_with_both_names(rendered, render, mutate, what):
    mutate(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if "isolation-shared-owner" in line and what in line]
    assert lines, result.err
    assert A in lines[0] and B in lines[0]


def test_a_shared_namespace_is_reported_with_both_bundles():
    # facts straight from objects: two bundles whose Namespace objects carry one name
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": A_NS}}
    facts = [bundle_facts(A, [("namespace.yaml", ns)]), bundle_facts(B, [("namespace.yaml", copy.deepcopy(ns))])]
    lines = EnvironmentAudit("dev", facts, None).violations()
    assert lines == [f"{A}: namespace {A_NS}: isolation-shared-owner: also claimed by {B}"]


def test_an_acl_on_another_tenants_topic_namespace_is_reported(rendered, render):
    change(KU_B, lambda o: o["spec"]["authorization"]["acls"][1]["resource"].update(
        name=f"tenant.riverside-academy.{A_TENANT}.x"))(rendered)
    change(KU_B, lambda o: o["spec"]["authorization"]["acls"][2]["resource"].update(name=f"tenant.{A_TENANT}.quiz.generated"))(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    foreign = [line for line in result.err.splitlines() if "isolation-foreign-topic" in line]
    assert len(foreign) >= 2, result.err
    assert all(line.startswith(B) for line in foreign)
    assert any(f"touches tenant {A_TENANT}'s topic namespace (owned by dev/plugins/{A_TENANT}/" in line for line in foreign)


def test_a_network_policy_into_another_tenants_namespace_is_reported(rendered, render):
    change(f"{B}/networkpolicy-quiz-generator.yaml", lambda o: o["spec"]["egress"][1]["to"][0]["namespaceSelector"]
           ["matchLabels"].update({"kubernetes.io/metadata.name": A_NS}))(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    assert f"isolation-cross-tenant-network: a rule reaches namespace {A_NS} of {A}" in result.err


@pytest.mark.parametrize("peer", [
    pytest.param({"namespaceSelector": {}}, id="every-namespace"),
    pytest.param({"ipBlock": {"cidr": "0.0.0.0/0"}}, id="every-address"),
])
def test_a_network_policy_open_to_everything_is_reported(rendered, render, peer):
    change(f"{B}/networkpolicy-quiz-generator.yaml", lambda o: o["spec"]["egress"][1].update(to=[peer]))(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    assert f"{B}/networkpolicy-quiz-generator.yaml: NetworkPolicy/quiz-generator: isolation-open-network" in result.err


@pytest.mark.parametrize("mutate, expected", [
    pytest.param(lambda d: d.append({"namespace": "kube-system", "server": "https://kubernetes.default.svc"}),
                 "destination kube-system is used by no bundle", id="extra-destination"),
    pytest.param(lambda d: d.pop(0), "namespace kafka is used by a bundle but is not a destination", id="missing-destination"),
])
def test_appproject_destinations_must_cover_exactly_the_bundles_namespaces(rendered, render, mutate, expected):
    change("dev/argocd/appproject-plugins.yaml", lambda o: mutate(o["spec"]["destinations"]))(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    assert "dev/argocd/appproject-plugins.yaml: AppProject/plugins: isolation-appproject-destinations: " + expected in result.err


def test_the_example_output_passes_every_gate(rendered, render):
    result = render("validate", rendered)
    assert result.code == 0, result.err
    assert result.out.startswith("9 bundles in ")


def test_a_harmless_edit_still_passes(rendered, render):
    change(f"{B}/deployment-quiz-generator.yaml", _set(["metadata", "annotations"], {"team": "quiz"}))(rendered)
    assert render("validate", rendered).code == 0


def test_the_audit_never_changes_the_objects_it_reads(rendered):
    objs = [(p.name, yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader)) for p in sorted((rendered / B).glob("*.yaml"))]
    before = copy.deepcopy(objs)
    facts = bundle_facts(B, objs)
    EnvironmentAudit("dev", [facts], None).violations()
    assert objs == before


@pytest.mark.parametrize("rel, mutate, rule", [
    pytest.param(f"{B}/deployment-quiz-generator.yaml",
                 lambda o: o["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(runAsNonRoot=False),
                 "run-as-non-root", id="root-container"),
    pytest.param(f"{B}/deployment-quiz-generator.yaml",
                 lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="registry.adapstory.io/acme/quiz-generator:1.3.0"),
                 "image-digest", id="image-by-tag"),
    pytest.param(f"{B}/externalsecret-quiz-generator.yaml",
                 lambda o: o["spec"]["data"][0]["remoteRef"].update(key="adapstory/plugins/quiz-generator/other-tenant/x"),
                 "vault-prefix", id="foreign-vault-key"),
])
def test_render_validate_runs_the_policy_gate_with_rule_names(rendered, render, rel, mutate, rule):
    change(rel, mutate)(rendered)
    result = render("validate", rendered)
    assert result.code == 1
    assert any(line.startswith(f"{rel}: ") and f": {rule}: " in line for line in result.err.splitlines()), result.err


# ------------------------------------------------------------------------------------ prefix checks at scale
# The audit finds "a prefix that covers another" by sorted order instead of comparing every pair
# (10,000 bundles are 100 million pairs). These compare it with the pairwise rules on random facts
# built to collide: short alphabets, prefixes of each other, ACLs inside and outside them.

import random  # noqa: E402


def _pairwise(audit: EnvironmentAudit) -> list[tuple]:
    """The three prefix rules as the audit defined them before: every pair compared."""
    prefixes = audit._prefixes([])
    out = []
    for tenant, prefix in sorted(prefixes.items()):
        for other, theirs in sorted(prefixes.items()):
            if other != tenant and prefix and theirs and theirs.startswith(prefix):
                out.append(("tenant", tenant, other))
    groups = sorted({v for f in audit.facts for k, v in f["claims"] if k == "consumer-group prefix"})
    for g in groups:
        for h in groups:
            if g != h and h.startswith(g):
                out.append(("group", g, h))
    for f in audit.facts:
        own_groups = {v for k, v in f["claims"] if k == "consumer-group prefix"}
        for _, name in f["acl_names"]:
            if name in own_groups:
                continue
            for other, theirs in sorted(prefixes.items()):
                if other != f["tenant"] and theirs and name.startswith(theirs):
                    out.append(("touch", name, other))
    return out


def _found(lines: list[str]) -> list[tuple]:
    out = []
    for line in lines:
        if "isolation-topic-prefix" in line and "also covers tenant" in line:
            tenant = line.split("tenant ")[1].split("'s")[0]
            other = line.split("also covers tenant ")[1].split("'s")[0]
            out.append(("tenant", tenant, other))
        elif "isolation-group-prefix" in line:
            g = line.split("consumer-group prefix '")[1].split("'")[0]
            h = line.split("also covers '")[1].split("'")[0]
            out.append(("group", g, h))
        elif "touches tenant" in line:
            name = line.split("ACL '")[1].split("'")[0]
            other = line.split("touches tenant ")[1].split("'s")[0]
            out.append(("touch", name, other))
    return out


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(12)])
def test_the_prefix_rules_by_sorted_order_find_exactly_what_comparing_every_pair_finds(seed):
    rng = random.Random(seed)
    facts = []
    for i in range(rng.randint(5, 60)):
        tenant = "t" + "".join(rng.choice("ab") for _ in range(rng.randint(1, 4)))
        prefix = rng.choice(["", f"{tenant}.", f"{tenant}.x", f"{tenant[:-1]}."]) if i % 5 else f"{tenant}."
        groups = [f"{tenant}.g{''.join(rng.choice('ab') for _ in range(rng.randint(0, 2)))}" for _ in range(rng.randint(0, 2))]
        acls = [f"t{''.join(rng.choice('ab') for _ in range(rng.randint(1, 5)))}.{rng.choice('xyz')}" for _ in range(3)]
        claims = [("KafkaUser", f"kafka/u{i}")] + [("consumer-group prefix", g) for g in groups]
        facts.append({"bundle": f"dev/plugins/{tenant}/p{i}", "tenant": tenant, "plugin": f"p{i}", "claims": claims,
                      "acl_names": [(f"f{i}", a) for a in acls + groups], "peers": [], "namespaces": [f"ns{i}"],
                      "topic_prefix": prefix, "kafka_users": [f"kafka/u{i}"], "kafka_secrets": []})
    audit = EnvironmentAudit("dev", facts, None)
    expected = _pairwise(audit)
    assert _found(audit.violations()) == expected
    assert expected or seed % 4, "most seeds collide somewhere"
