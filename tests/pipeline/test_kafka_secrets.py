"""Kafka credentials and topics, secrets isolated by per-bundle stores, data kept on uninstall
(issue 11, items 1, 5 and 6): the example output, the input checks, the isolation audit and the
uninstall notes of `render diff`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.git import env_dir, remove_install, render, signing_key  # noqa: F401
from renderer.core.yamlio import dump
from renderer.gitops.report import FileChange, compare, format_text, to_json, uninstall_notes
from renderer.pipeline.audit import EnvironmentAudit, bundle_facts

PRODUCER = "dev/plugins/riverside-academy/quiz-generator"  # produces, consumes, database, secrets
OPTED_IN = "dev/plugins/riverside-academy/grade-sync"  # spec.onUninstall.deleteData: true
SECRETS_ONLY = "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/lesson-summarizer"  # no Kafka, no database
OTHER = "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"
APP = "plugin-riverside-academy-quiz-generator"
OTHER_APP = "plugin-4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d-quiz-generator"


def load(root: Path, rel: str) -> dict:
    return yaml.load((root / rel).read_bytes(), Loader=yaml.CSafeLoader)


def kinds(root: Path, bundle: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in sorted((root / bundle).glob("*.yaml")):
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        out.setdefault(obj["kind"], []).append(obj)
    return out


def facts_of(root: Path, bundle: str) -> dict:
    objects = [(p.name, yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader))
               for p in sorted((root / bundle).glob("*.yaml")) if p.name != "kustomization.yaml"]
    return bundle_facts(bundle, objects)


# ------------------------------------------------------------------------------------ the example output


class TestKafkaCredentials:
    def test_the_pod_gets_bootstrap_protocol_mechanism_and_its_own_credentials(self, pristine):
        dep = load(pristine, f"{PRODUCER}/deployment-quiz-generator.yaml")
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == "platform-kafka-kafka-bootstrap.kafka.svc:9093"
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        assert env["KAFKA_USERNAME"]["value"] == APP
        for name, key in (("KAFKA_PASSWORD", "password"), ("KAFKA_SASL_JAAS_CONFIG", "sasl.jaas.config")):
            assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "kafka-credentials", "key": key}

    def test_the_credentials_are_copied_from_the_bundles_own_kafka_user_secret_only(self, pristine):
        es = load(pristine, f"{PRODUCER}/externalsecret-quiz-generator-kafka.yaml")
        assert es["metadata"]["namespace"] == APP
        assert es["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "kafka"}
        assert es["spec"]["target"]["name"] == "kafka-credentials"
        assert {d["remoteRef"]["key"] for d in es["spec"]["data"]} == {APP}
        store = load(pristine, f"{PRODUCER}/secretstore-kafka.yaml")["spec"]["provider"]["kubernetes"]
        assert store["remoteNamespace"] == "kafka"
        assert store["auth"] == {"serviceAccount": {"name": "quiz-generator"}}

    def test_rbac_in_the_kafka_namespace_reads_exactly_the_kafka_users_secret(self, pristine):
        role = load(pristine, f"{PRODUCER}/role-{APP}.yaml")
        assert role["metadata"]["namespace"] == "kafka"
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [APP], "verbs": ["get"]}]
        binding = load(pristine, f"{PRODUCER}/rolebinding-{APP}.yaml")
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": APP}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "quiz-generator", "namespace": APP}]
        user = load(pristine, f"{PRODUCER}/kafkauser-{APP}.yaml")
        assert user["metadata"]["name"] == APP  # Strimzi names the user's secret after the KafkaUser

    def test_a_bundle_without_kafka_gets_no_kafka_store_rbac_or_variables(self, pristine):
        got = kinds(pristine, SECRETS_ONLY)
        assert "KafkaTopic" not in got and "RoleBinding" not in got and "KafkaUser" not in got
        assert [s["metadata"]["name"] for s in got["SecretStore"]] == ["vault"]
        env = got["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert not [e for e in env if e["name"].startswith("KAFKA_")]


class TestKafkaTopics:
    def test_every_produced_topic_gets_one_kafka_topic_with_the_platform_defaults(self, pristine):
        topics = kinds(pristine, PRODUCER)["KafkaTopic"]
        assert [t["spec"] for t in topics] == [
            {"topicName": "tenant.riverside-academy.quiz.generated", "partitions": 3, "replicas": 3}]
        t = topics[0]
        assert t["metadata"]["namespace"] == "kafka"
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == "platform-kafka"
        prod = kinds(pristine, "prod/plugins/riverside-academy/grade-sync")["KafkaTopic"]
        assert prod[0]["spec"]["partitions"] == 6  # prod's platform.yaml

    def test_consumed_topics_get_no_kafka_topic(self, pristine):
        names = [t["spec"]["topicName"] for t in kinds(pristine, PRODUCER)["KafkaTopic"]]
        assert "tenant.riverside-academy.lesson.published" not in names

    def test_a_topic_name_that_is_no_kubernetes_name_gets_a_hashed_object_name(self):
        from renderer.pipeline.stores import topic_object_name

        assert topic_object_name("tenant.a.quiz.generated") == "tenant.a.quiz.generated"
        odd = topic_object_name("tenant.a.Quiz_Generated")
        assert odd.startswith("tenant.a.quiz-generated-") and len(odd) <= 63
        assert odd != topic_object_name("tenant.a.quiz_Generated")

    def test_two_producers_of_one_topic_are_an_input_error_naming_both_installs(self, envs, render):
        plugin = envs / "catalog/grade-sync/0.9.0/plugin.yaml"
        plugin.write_text(plugin.read_text().replace("produces: [grades.synced]", "produces: [quiz.generated]"))
        result = render("build", str(envs), "--out", str(envs.parent / "out"), "--offline")
        assert result.code == 1
        lines = [line for line in result.err.splitlines() if "both produce topic" in line]
        assert len(lines) == 4  # dev: riverside-academy, prod: b7e2d0c4-...: each install named, one line each
        says = ("metadata.name: riverside-academy/grade-sync and riverside-academy/quiz-generator both produce topic "
                "'tenant.riverside-academy.quiz.generated' in environment dev")
        assert [line.split(":", 1)[0] for line in lines if says in line] == [
            "dev/tenants/riverside-academy/plugins/grade-sync.yaml", "dev/tenants/riverside-academy/plugins/quiz-generator.yaml"]
        assert not (envs.parent / "out").exists()


class TestVaultStore:
    def test_every_external_secret_reads_through_a_store_of_its_own_bundle(self, pristine):
        for path in pristine.glob("*/plugins/*/*/externalsecret-*.yaml"):
            es = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
            assert es["spec"]["secretStoreRef"]["kind"] == "SecretStore", path
            assert (path.parent / f"secretstore-{es['spec']['secretStoreRef']['name']}.yaml").exists(), path

    def test_the_vault_store_logs_in_as_the_bundles_service_account_under_its_own_role(self, pristine):
        vault = load(pristine, f"{PRODUCER}/secretstore-vault.yaml")["spec"]["provider"]["vault"]
        assert vault["auth"] == {"kubernetes": {"mountPath": "kubernetes", "role": APP,
                                                "serviceAccountRef": {"name": "quiz-generator"}}}
        assert (vault["server"], vault["path"], vault["version"]) == ("https://vault.vault.svc:8200", "secret", "v2")

    def test_the_vault_role_admits_only_that_service_account_and_carries_only_its_policy(self, pristine):
        role = load(pristine, f"{PRODUCER}/kubernetesauthenginerole-{APP}.yaml")
        assert role["metadata"]["namespace"] == "vault-config"  # the platform-admin namespace
        spec = role["spec"]
        assert spec["targetNamespaces"] == {"targetNamespaces": [APP]}
        assert spec["targetServiceAccounts"] == ["quiz-generator"]
        assert spec["policies"] == [APP] and spec["name"] == APP
        assert spec["authentication"] == {"path": "kubernetes", "role": "vault-config-admin",
                                          "serviceAccount": {"name": "vault-config-operator"}}

    def test_the_vault_policy_reads_only_the_bundles_prefix(self, pristine):
        policy = load(pristine, f"{PRODUCER}/policy-{APP}.yaml")
        assert policy["apiVersion"] == "redhatcop.redhat.io/v1alpha1"
        assert policy["spec"]["policy"] == (
            'path "secret/data/adapstory/plugins/quiz-generator/riverside-academy/*" {\n'
            '  capabilities = ["read"]\n}\n')

    def test_a_kv_v1_mount_reads_without_the_data_segment(self):
        from renderer.pipeline.stores import vault_policy

        class V1:
            path, version = "kv", "v1"
        assert vault_policy(V1, "adapstory/plugins/p/t/").startswith('path "kv/adapstory/plugins/p/t/*" {')

    def test_the_appproject_admits_the_kafka_and_vault_admin_namespaces(self, pristine):
        project = load(pristine, "dev/argocd/appproject-plugins.yaml")
        dest = {d["namespace"] for d in project["spec"]["destinations"]}
        assert {"kafka", "vault-config"} <= dest
        kinds_ = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
        assert {("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "RoleBinding"),
                ("redhatcop.redhat.io", "KubernetesAuthEngineRole"), ("redhatcop.redhat.io", "Policy"),
                ("kafka.strimzi.io", "KafkaTopic"), ("external-secrets.io", "SecretStore")} <= kinds_

    def test_the_shipped_vault_config_schemas_reject_an_unknown_field(self, pristine):
        from renderer.gates.schemas import SchemaStore, locations_from_env

        store = SchemaStore("1.33", locations_from_env())
        role = load(pristine, f"{PRODUCER}/kubernetesauthenginerole-{APP}.yaml")
        assert store.validate(role) == []
        role["spec"]["targetNamespace"] = [APP]
        assert [(v.path, v.message) for v in store.validate(role)] == [("spec.targetNamespace", "unknown field")]


class TestDataKeptOnUninstall:
    def test_database_objects_never_delete_by_default(self, pristine):
        for kind in ("role-quiz-generator", "schema-quiz-generator", "grant-quiz-generator-schema"):
            obj = load(pristine, f"{PRODUCER}/{kind}.yaml")
            assert obj["spec"]["managementPolicies"] == ["Observe", "Create", "Update", "LateInitialize"], kind

    def test_topics_stay_when_argo_cd_deletes_the_application(self, pristine):
        t = kinds(pristine, PRODUCER)["KafkaTopic"][0]
        assert t["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "Delete=false",
                                                "argocd.argoproj.io/sync-wave": "0"}

    def test_the_install_opt_in_deletes_data_with_the_install(self, pristine):
        got = kinds(pristine, OPTED_IN)
        assert got["Schema"][0]["spec"]["managementPolicies"] == ["*"]
        assert "argocd.argoproj.io/sync-options" not in got["KafkaTopic"][0]["metadata"]["annotations"]
        info = json.loads((pristine / OPTED_IN / "bundle.json").read_text())
        assert info["isolation"]["onUninstall"] == "delete"
        assert json.loads((pristine / PRODUCER / "bundle.json").read_text())["isolation"]["onUninstall"] == "keep"

    def test_an_unknown_uninstall_field_is_rejected_with_file_and_line(self, envs, render):
        path = envs / "dev/tenants/riverside-academy/plugins/quiz-generator.yaml"
        path.write_text(path.read_text() + "  onUninstall: {deleteDatabase: true}\n")
        result = render("build", str(envs), "--out", str(envs.parent / "out"), "--offline")
        assert result.code == 1
        assert "riverside-academy/plugins/quiz-generator.yaml:" in result.err
        assert "spec.onUninstall.deleteDatabase" in result.err
        assert "Traceback" not in result.err


# ------------------------------------------------------------------------------------ platform.yaml


PLATFORM_CASES = [
    pytest.param("    securityProtocol: SASL_SSL\n", "    securityProtocol: SSL\n", "kafka", "SSL exactly when",
                 id="ssl-with-scram"),
    pytest.param("    bootstrapServers: platform-kafka-kafka-bootstrap.kafka.svc:9093\n",
                 "    bootstrapServers: kafka bootstrap\n", "kafka.bootstrapServers", "pattern", id="bad-bootstrap"),
    pytest.param("    topicDefaults: {partitions: 3, replicas: 3}\n", "    topicDefaults: {partitions: 0, replicas: 3}\n",
                 "kafka.topicDefaults.partitions", "greater than or equal to 1", id="zero-partitions"),
    pytest.param("      namespace: vault-config\n", "      namespace: Vault_Config\n",
                 "secretStore.vaultConfig.namespace", "DNS label", id="bad-admin-namespace"),
    pytest.param("      version: v2\n", "      version: v3\n", "secretStore.vault.version", "'v1' or 'v2'",
                 id="bad-kv-version"),
]


@pytest.mark.parametrize("old, new, field, says", PLATFORM_CASES)
def test_a_broken_platform_field_is_rejected_with_file_line_and_field(envs, render, old, new, field, says):
    path = envs / "dev/platform.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    result = render("build", str(envs), "--out", str(envs.parent / "out"), "--offline")
    assert result.code == 1
    line = next(line for line in result.err.splitlines() if "dev/platform.yaml:" in line)
    assert field in line and says in line, result.err
    assert not (envs.parent / "out").exists()


# ------------------------------------------------------------------------------------ the isolation audit


def rewrite(root: Path, rel: str, mutate) -> None:
    obj = load(root, rel)
    mutate(obj)
    (root / rel).write_bytes(dump(obj))


class TestIsolationAudit:
    def test_the_example_claims_one_owner_per_kafka_secret_topic_and_vault_role(self, pristine):
        facts = facts_of(pristine, PRODUCER)
        claims = set(map(tuple, facts["claims"]))
        assert ("Kafka secret", f"kafka/{APP}") in claims
        assert ("KafkaTopic", "kafka/tenant.riverside-academy.quiz.generated") in claims
        assert ("Vault role", APP) in claims and ("Vault policy", APP) in claims
        assert not [c for c in claims if c[0] == "Vault prefix" and not c[1].startswith("adapstory/plugins/")]

    def test_a_role_naming_another_bundles_kafka_secret_is_reported_twice_over(self, pristine):
        ours = facts_of(pristine, PRODUCER)
        other = facts_of(pristine, OTHER)
        role_file = f"role-{APP}.yaml"
        objects = [(p.name, yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader))
                   for p in sorted((pristine / PRODUCER).glob("*.yaml")) if p.name != "kustomization.yaml"]
        for name, obj in objects:
            if name == role_file:
                obj["rules"][0]["resourceNames"] = [OTHER_APP]
        ours = bundle_facts(PRODUCER, objects)
        lines = EnvironmentAudit("dev", [ours, other], None).violations()
        assert f"{OTHER}: Kafka secret kafka/{OTHER_APP}: isolation-shared-owner: also claimed by {PRODUCER}" in lines
        assert (f"{PRODUCER}/{role_file}: Role/{APP}: isolation-foreign-kafka-secret: reads secret kafka/{OTHER_APP}, "
                "which is not the secret of the bundle's own KafkaUser") in lines

    def test_a_kafka_topic_rendered_by_two_bundles_is_reported_with_both(self, rendered, render):
        topic = "tenant.riverside-academy.quiz.generated"
        src = rendered / PRODUCER / f"kafkatopic-{topic}.yaml"
        other = rendered / OPTED_IN / f"kafkatopic-tenant.riverside-academy.grades.synced.yaml"
        rewrite(rendered, str(other.relative_to(rendered)), lambda o: o["spec"].update(topicName=topic))
        result = render("validate", str(rendered))
        assert result.code == 1
        lines = [line for line in result.err.splitlines()
                 if "isolation-shared-owner" in line and f"KafkaTopic kafka/{topic}" in line]
        assert lines and OPTED_IN in lines[0] and PRODUCER in lines[0], result.err
        assert src.exists()

    def test_a_vault_store_under_another_bundles_role_is_reported(self, rendered, render):
        rewrite(rendered, f"{OTHER}/secretstore-vault.yaml",
                lambda o: o["spec"]["provider"]["vault"]["auth"]["kubernetes"].update(role=APP))
        result = render("validate", str(rendered))
        assert result.code == 1
        assert any("isolation-shared-owner" in line and f"Vault role {APP}" in line for line in result.err.splitlines())
        assert "secret-store-scope" in result.err  # the policy gate says it too

    def test_render_validate_runs_the_new_rules_with_their_names(self, rendered, render):
        rewrite(rendered, f"{PRODUCER}/role-{APP}.yaml", lambda o: o["rules"][0].update(verbs=["get", "list"]))
        rewrite(rendered, f"{PRODUCER}/schema-quiz-generator.yaml", lambda o: o["spec"].pop("managementPolicies"))
        result = render("validate", str(rendered))
        assert result.code == 1
        assert f"{PRODUCER}/role-{APP}.yaml: Role/{APP}: kafka-secret-scope: rules[0] has verbs" in result.err
        assert f"{PRODUCER}/schema-quiz-generator.yaml: Schema/quiz-generator: data-kept-on-uninstall:" in result.err


# ------------------------------------------------------------------------------------ uninstall notes


def _removed(path: str, isolation: dict, kinds_: list[str]) -> FileChange:
    info = {"pluginVersion": "1.3.0", "isolation": isolation,
            "objects": [{"file": f"{k.lower()}-x.yaml", "kind": k, "name": "x"} for k in kinds_]}
    return FileChange(f"{path}/bundle.json", json.dumps(info).encode(), None)


ISO = {"database": "tenant_riverside_academy", "schema": "quiz", "dbRole": "plugin_quiz_generator_riverside_academy",
       "topics": ["tenant.riverside-academy.quiz.generated"]}

NOTES = [
    pytest.param({**ISO, "onUninstall": "keep"}, ["Role", "Schema", "Grant", "KafkaTopic"],
                 f"uninstall: {PRODUCER}: schema tenant_riverside_academy.quiz, role plugin_quiz_generator_riverside_academy "
                 "and topic tenant.riverside-academy.quiz.generated are kept", id="kept"),
    pytest.param({**ISO, "onUninstall": "keep"}, ["Role", "Schema", "Grant"],
                 f"uninstall: {PRODUCER}: schema tenant_riverside_academy.quiz and role "
                 "plugin_quiz_generator_riverside_academy are kept", id="kept-without-kafka"),
    pytest.param({**ISO, "onUninstall": "delete"}, ["Role", "Schema", "KafkaTopic"],
                 f"uninstall: {PRODUCER}: schema tenant_riverside_academy.quiz, role plugin_quiz_generator_riverside_academy "
                 "and topic tenant.riverside-academy.quiz.generated will be DELETED (the install opted in: "
                 "spec.onUninstall.deleteData)", id="opted-in"),
    pytest.param(ISO, ["Role", "Schema"],
                 f"uninstall: {PRODUCER}: schema tenant_riverside_academy.quiz and role "
                 "plugin_quiz_generator_riverside_academy will be DELETED: the bundle predates data retention "
                 "(render and sync it once with the install in place to keep them)", id="older-bundle"),
]


@pytest.mark.parametrize("isolation, kinds_, note", NOTES)
def test_a_removed_bundle_says_what_happens_to_its_data(isolation, kinds_, note):
    report = compare([_removed(PRODUCER, isolation, kinds_)], branch="main", base="0" * 40)
    assert uninstall_notes(report) == [note]
    assert f"note: {note}" in format_text(report).splitlines()
    assert to_json(report)["uninstall"] == [note]


def test_a_removed_bundle_without_data_and_a_changed_bundle_get_no_uninstall_note():
    changed = FileChange(f"{OTHER}/bundle.json", b'{"isolation": {"onUninstall": "keep"}}', b"{}")
    report = compare([_removed(SECRETS_ONLY, {"onUninstall": "keep", "database": "d", "schema": "s"}, ["Deployment"]),
                      changed], branch="main", base="0" * 40)
    assert uninstall_notes(report) == []
    assert "uninstall:" not in format_text(report)


def test_render_diff_of_a_removed_install_says_its_schema_role_and_topic_are_kept(render, env_dir, tmp_path):
    repo = tmp_path / "gitops"
    assert render("commit", "--init", str(env_dir), "--repo", str(repo), "--offline").code == 0
    remove_install(env_dir, "prod", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d", "quiz-generator")
    run = render("diff", str(env_dir), "--repo", str(repo), "--offline", "--allow-mass-delete")
    assert run.code == 0, run.err
    assert ("note: uninstall: prod/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator: schema "
            "tenant_4f1c2b7e_9a0d_4c1e_8b2f_3d5e6a7b8c9d.quiz, role plugin_quiz_generator_4f1c2b7e_9a0d_4c1e_8b2f_3d5e6a7b8c9d "
            "and topic tenant.4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d.quiz.generated are kept") in run.out.splitlines()


def test_a_secret_exposed_as_a_kafka_credential_variable_is_rejected_with_file_and_line(envs, render):
    path = envs / "catalog/grade-sync/0.9.0/plugin.yaml"
    text = path.read_text()
    assert "env: LMS_TOKEN" in text
    path.write_text(text.replace("env: LMS_TOKEN", "env: KAFKA_PASSWORD"))
    result = render("build", str(envs), "--out", str(envs.parent / "out"), "--offline")
    assert result.code == 1
    line = next(line for line in result.err.splitlines() if "KAFKA_PASSWORD" in line)
    assert line.startswith("catalog/grade-sync/0.9.0/plugin.yaml:")
    assert "spec.secrets[0].env: KAFKA_PASSWORD is set by the platform" in line
