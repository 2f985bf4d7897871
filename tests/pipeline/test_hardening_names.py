"""Issue 9, class 3: names have owners; reserved names are refused.

A plugin name belongs to the publisher whose ``spec.plugins`` lists it; PostgreSQL's own schemas
and the bundle's fixed object names are never a plugin's; the isolation audit decides a topic's
tenant by the topic prefix, never by dot-separated parts.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import tree_digest
from tests.support.edits import edit
from renderer.pipeline.reserved import DERIVED_SUFFIXES, FIXED_OBJECT_NAMES
from renderer.pipeline.audit import EnvironmentAudit

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
QUIZ = "catalog/quiz-generator/1.3.0/plugin.yaml"
GRADE = "catalog/grade-sync/0.9.0/plugin.yaml"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def copy_version(src: str, dest_plugin: str, dest_version: str, *edits):
    """A new catalog version folder made from an existing one, with ``(old, new)`` text edits."""
    def apply(root: Path) -> None:
        source = (root / src).parent
        target = root / "catalog" / dest_plugin / dest_version
        shutil.copytree(source, target)
        manifest = target / "plugin.yaml"
        text = manifest.read_text()
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new, 1)
        manifest.write_text(text)
    return apply


def both(*steps):
    def apply(root: Path) -> None:
        for step in steps:
            step(root)
    return apply


SQUAT = copy_version(QUIZ, "quiz-generator", "9.0.0", ("publisher: acme", "publisher: northwind"),
                     ("version: 1.3.0", "version: 9.0.0"),
                     ("registry.adapstory.io/acme/quiz-generator", "registry.adapstory.io/northwind/quiz-generator"))

CASES = [
    pytest.param(SQUAT, r"catalog/quiz-generator/9.0.0/plugin.yaml:5: metadata.publisher: publisher 'northwind' may not "
                        r"publish plugin 'quiz-generator': the name belongs to publisher 'acme'",
                 id="second-publisher-ships-a-version-of-anothers-plugin"),
    pytest.param(edit("publishers/northwind.yaml", "plugins: [grade-sync]", "plugins: [grade-sync, quiz-generator]"),
                 r"publishers/northwind.yaml:\d+: spec.plugins\[1\]: plugin 'quiz-generator' is claimed by publishers "
                 r"'acme' and 'northwind'", id="two-publishers-claim-one-name"),
    pytest.param(edit("publishers/acme.yaml", "plugins: [lesson-summarizer, quiz-generator]", "plugins: [quiz-generator]"),
                 r"catalog/lesson-summarizer/2.0.0/plugin.yaml:5: metadata.publisher: publisher 'acme' may not publish "
                 r"plugin 'lesson-summarizer': publishers/acme.yaml does not list it", id="publisher-does-not-list-the-plugin"),
    pytest.param(edit("publishers/acme.yaml", "plugins: [lesson-summarizer, quiz-generator]", "registries2: []"),
                 r"publishers/acme.yaml:\d+: spec.plugins: required field is missing", id="publisher-without-plugins-list"),
    pytest.param(edit(QUIZ, "schema: quiz", "schema: pg_catalog"),
                 rf"{QUIZ}:32: spec.database.schema: 'pg_catalog' is a PostgreSQL system schema", id="schema-pg-catalog"),
    pytest.param(edit(QUIZ, "schema: quiz", "schema: public"),
                 rf"{QUIZ}:32: spec.database.schema: 'public' is a PostgreSQL system schema", id="schema-public"),
    pytest.param(edit(QUIZ, "schema: quiz", "schema: information_schema"),
                 rf"{QUIZ}:32: spec.database.schema: 'information_schema' is a PostgreSQL system schema",
                 id="schema-information-schema"),
    pytest.param(edit(QUIZ, "schema: quiz", "schema: pg_toast_evil"),
                 rf"{QUIZ}:32: spec.database.schema: 'pg_toast_evil' is a PostgreSQL system schema", id="schema-any-pg-prefix"),
    pytest.param(both(copy_version(GRADE, "pg-sync", "0.9.0", ("name: grade-sync", "name: pg-sync")),
                      edit("publishers/northwind.yaml", "plugins: [grade-sync]", "plugins: [grade-sync, pg-sync]")),
                 r"catalog/pg-sync/0.9.0/plugin.yaml:4: metadata.name: the default schema 'pg_sync' is a PostgreSQL "
                 r"system schema", id="default-schema-from-a-pg-name"),
    pytest.param(both(copy_version(GRADE, "public", "0.9.0", ("name: grade-sync", "name: public")),
                      edit("publishers/northwind.yaml", "plugins: [grade-sync]", "plugins: [grade-sync, public]")),
                 r"catalog/public/0.9.0/plugin.yaml:4: metadata.name: the default schema 'public'", id="default-schema-public"),
    pytest.param(copy_version(GRADE, "default-deny", "0.9.0", ("name: grade-sync", "name: default-deny")),
                 r"catalog/default-deny/0.9.0/plugin.yaml:4: metadata.name: 'default-deny' is reserved: a bundle's own "
                 r"object 'default-deny'", id="plugin-named-default-deny"),
    pytest.param(copy_version(GRADE, "plugin-budget", "0.9.0", ("name: grade-sync", "name: plugin-budget")),
                 r"catalog/plugin-budget/0.9.0/plugin.yaml:4: metadata.name: 'plugin-budget' is reserved", id="plugin-named-plugin-budget"),
    pytest.param(copy_version(GRADE, "verify-image-signature", "0.9.0", ("name: grade-sync", "name: verify-image-signature")),
                 r"catalog/verify-image-signature/0.9.0/plugin.yaml:4: metadata.name: 'verify-image-signature' is reserved",
                 id="plugin-named-verify-image-signature"),
    pytest.param(copy_version(GRADE, "db-credentials", "0.9.0", ("name: grade-sync", "name: db-credentials")),
                 r"catalog/db-credentials/0.9.0/plugin.yaml:4: metadata.name: 'db-credentials' is reserved",
                 id="plugin-named-db-credentials"),
    pytest.param(lambda root: (root / f"dev/tenants/{T1}/plugins/default-deny.yaml").write_text(
                     "apiVersion: plugins.adapstory.io/v1\nkind: PluginInstall\nmetadata:\n  name: default-deny\n"
                     "spec:\n  version: 1.0.0\n"),
                 rf"dev/tenants/{T1}/plugins/default-deny.yaml:4: metadata.name: 'default-deny' is reserved",
                 id="install-named-default-deny"),
    pytest.param(edit("dev/platform.yaml", 'topicPrefix: "tenant.{tenant}."', 'topicPrefix: "tenant-{tenant}-"'),
                 r"dev/platform.yaml:\d+: spec.kafka: 'tenant-\{tenant\}-': follow \{tenant\} and \{plugin\} with '.' or '_'",
                 id="topic-prefix-that-lets-one-tenant-prefix-another"),
    pytest.param(edit("dev/platform.yaml", 'groupPrefix: "tenant.{tenant}.{plugin}."', 'groupPrefix: "tenant.{tenant}.{plugin}"'),
                 r"dev/platform.yaml:\d+: spec.kafka: 'tenant.\{tenant\}.\{plugin\}': follow", id="group-prefix-open-ended"),
]


@pytest.mark.parametrize("mutate, expected", CASES)
def test_a_name_that_is_not_the_publishers_or_is_reserved_is_refused_at_file_and_line(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    out = tmp_path / "out"
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1, result.err
    assert re.search(expected, result.err), f"expected /{expected}/ in:\n{result.err}"
    assert "Traceback" not in result.err and "bug in templates" not in result.err
    assert tree_digest(out) == "absent"


def test_a_new_tenant_whose_id_is_a_topic_word_renders_and_blames_no_one(envs, tmp_path, render):
    tenant = envs / "dev/tenants/published"
    (tenant / "plugins").mkdir(parents=True)
    (tenant / "tenant.yaml").write_text(
        "apiVersion: plugins.adapstory.io/v1\nkind: Tenant\nmetadata:\n  name: published\nspec:\n"
        '  ceilings: {cpu: "4", memory: 8Gi, storage: 20Gi, llmTokensPerDay: 1000000, requestsPerSecond: 100}\n')
    (tenant / "plugins/quiz-generator.yaml").write_text(
        "apiVersion: plugins.adapstory.io/v1\nkind: PluginInstall\nmetadata:\n  name: quiz-generator\nspec:\n"
        "  version: 1.3.0\n")
    result = render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev")
    assert result.code == 0, result.err
    assert (tmp_path / "out/dev/plugins/published/quiz-generator/kafkauser-plugin-published-quiz-generator.yaml").is_file()


def _facts(bundle: str, tenant: str, prefix: str, acls: list[str], group: str = "") -> dict:
    claims = [("KafkaUser", f"kafka/{bundle}")] + ([("consumer-group prefix", group)] if group else [])
    return {"bundle": bundle, "tenant": tenant, "plugin": "p", "claims": claims, "peers": [], "namespaces": [],
            "acl_names": [(f"kafkauser.yaml: KafkaUser/{tenant}", n) for n in acls + ([group] if group else [])],
            "topic_prefix": prefix}


AUDIT_CASES = [
    pytest.param([_facts("dev/plugins/a/p", "a", "tenant.a.", ["tenant.a.lesson.published"]),
                  _facts("dev/plugins/published/p", "published", "tenant.published.", ["tenant.published.x"])],
                 "tenant.{tenant}.", [], id="a-topic-word-equal-to-a-tenant-id-is-no-misfire"),
    pytest.param([_facts("dev/plugins/a/p", "a", "tenant.a.", ["tenant.b.secrets"]),
                  _facts("dev/plugins/b/p", "b", "tenant.b.", ["tenant.b.secrets"])],
                 "tenant.{tenant}.", [r"^dev/plugins/a/p/kafkauser.yaml: KafkaUser/a: isolation-foreign-topic: ACL "
                                      r"'tenant.b.secrets' lies outside tenant a's",
                                      r"^dev/plugins/a/p/.*touches tenant b's topic namespace \(owned by dev/plugins/b/p\)"],
                 id="an-acl-in-another-tenants-prefix-blames-the-bundle-that-has-it"),
    pytest.param([_facts("dev/plugins/a/p", "a", "tenant.b.", ["tenant.b.x"]),
                  _facts("dev/plugins/b/p", "b", "tenant.b.", ["tenant.b.y"])],
                 None, [r"^dev/plugins/a/p: KafkaUser: isolation-topic-prefix: recorded topic prefix 'tenant.b.' does "
                        r"not contain tenant id a",
                        r"^dev/plugins/a/p/kafkauser.yaml: KafkaUser/a: isolation-foreign-topic: ACL 'tenant.b.x' lies outside",
                        r"^dev/plugins/a/p/kafkauser.yaml: KafkaUser/a: .*touches tenant b's topic namespace"],
                 id="a-recorded-prefix-that-is-not-the-tenants-own"),
    pytest.param([_facts("dev/plugins/a/p", "a", "tenant.a.", ["tenant.a.x"])],
                 "t.{tenant}.", [r"^dev/plugins/a/p: KafkaUser: isolation-topic-prefix: recorded topic prefix 'tenant.a.' is "
                                 r"not tenant a's \('t.a.'\)", r"ACL 'tenant.a.x' lies outside tenant a's topic namespace \('t.a.'\)"],
                 id="a-recorded-prefix-against-the-platform-rule"),
    pytest.param([_facts("dev/plugins/a/p", "a", "t.a.", ["t.a.x"]), _facts("dev/plugins/b/p", "b", "t.a.b.", ["t.a.b.y"])],
                 None, [r"^dev/plugins/a/p: KafkaUser: isolation-topic-prefix: tenant a's topic prefix 't.a.' also covers "
                        r"tenant b's 't.a.b.'",
                        r"^dev/plugins/b/p/kafkauser.yaml: KafkaUser/b: .*ACL 't.a.b.y' touches tenant a's topic namespace"],
                 id="overlapping-prefixes-are-named"),
    pytest.param([_facts("dev/plugins/a/p", "a", "a-", ["a-x"])],
                 None, [r"^dev/plugins/a/p: KafkaUser: isolation-topic-prefix: recorded topic prefix 'a-' does not contain "
                        r"tenant id a", r"ACL 'a-x' lies outside tenant a's topic namespace"],
                 id="an-undelimited-recorded-prefix"),
    pytest.param([_facts("dev/plugins/a/p", "a", "tenant.a.", [], group="tenant.a.p"),
                  _facts("dev/plugins/a/q", "a", "tenant.a.", [], group="tenant.a.p-q.")],
                 "tenant.{tenant}.", [r"^dev/plugins/a/p: KafkaUser: isolation-group-prefix: consumer-group prefix "
                                      r"'tenant.a.p' also covers 'tenant.a.p-q.' of dev/plugins/a/q"],
                 id="overlapping-group-prefixes-are-named"),
]


@pytest.mark.parametrize("facts, rule, expected", AUDIT_CASES)
def test_the_isolation_audit_decides_a_topics_tenant_by_its_prefix(facts, rule, expected):
    found = EnvironmentAudit("dev", facts, None, topic_prefix=rule).violations()
    for pattern in expected:
        assert any(re.search(pattern, v) for v in found), f"/{pattern}/ not in {found}"
    assert len(found) == len(expected), found


def test_every_fixed_object_name_of_a_rendered_bundle_is_reserved():
    """The reserved list is the templates' fixed names: every object (and secret) name of every
    golden bundle either derives from its plugin's name or is in FIXED_OBJECT_NAMES."""
    checked = 0
    for bundle in sorted(GOLDEN.glob("*/plugins/*/*")):
        plugin, tenant = bundle.name, bundle.parent.name
        derived = {plugin + s for s in DERIVED_SUFFIXES}
        for path in sorted(bundle.glob("*.yaml")):
            obj = yaml.safe_load(path.read_text())
            if obj.get("kind") == "Kustomization":
                continue
            names = [obj["metadata"]["name"]]
            text = path.read_text()
            names += re.findall(r"secretKeyRef:\n\s+key: \S+\n\s+name: (\S+)", text)
            names += re.findall(r"writeConnectionSecretToRef:\n\s+name: (\S+)", text)
            for name in names:
                checked += 1
                assert name in derived or name in FIXED_OBJECT_NAMES or tenant in name, (path, name)
    assert checked > 100
