# Unit tests of kafka.rego, and the fixtures of the Kafka credentials, KafkaTopic and per-bundle
# SecretStores that kafka_test, secrets_test and retention_test share (fixtures_test.rego holds
# the rest of the compliant bundle).
package main

import rego.v1

fxk_user := "plugin-acme-school-quiz"

fxk_kafka_meta(name) := {"name": name, "namespace": "kafka", "labels": object.union(fx_labels, {"strimzi.io/cluster": "platform-kafka"})}

fxk_topic := {
	"apiVersion": "kafka.strimzi.io/v1",
	"kind": "KafkaTopic",
	"metadata": object.union(fxk_kafka_meta("tenant.acme-school.quiz.generated"), {"annotations": {"argocd.argoproj.io/sync-options": "Delete=false"}}),
	"spec": {"topicName": "tenant.acme-school.quiz.generated", "partitions": 3, "replicas": 3},
}

fxk_rbac_role := {
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": "Role",
	"metadata": {"name": fxk_user, "namespace": "kafka", "labels": fx_labels},
	"rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [fxk_user], "verbs": ["get"]}],
}

fxk_binding := {
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": "RoleBinding",
	"metadata": {"name": fxk_user, "namespace": "kafka", "labels": fx_labels},
	"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": fxk_user},
	"subjects": [{"kind": "ServiceAccount", "name": "quiz", "namespace": fx_ns}],
}

fxk_service_account := {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": fx_meta("quiz")}

fxk_kafka_store := {
	"apiVersion": "external-secrets.io/v1",
	"kind": "SecretStore",
	"metadata": fx_meta("kafka"),
	"spec": {"provider": {"kubernetes": {
		"remoteNamespace": "kafka",
		"server": {"caProvider": {"type": "ConfigMap", "name": "kube-root-ca.crt", "key": "ca.crt"}},
		"auth": {"serviceAccount": {"name": "quiz"}},
	}}},
}

fxk_vault_store := {
	"apiVersion": "external-secrets.io/v1",
	"kind": "SecretStore",
	"metadata": fx_meta("vault"),
	"spec": {"provider": {"vault": {
		"server": "https://vault.vault.svc:8200", "path": "secret", "version": "v2",
		"auth": {"kubernetes": {"mountPath": "kubernetes", "role": fxk_user, "serviceAccountRef": {"name": "quiz"}}},
	}}},
}

fxk_vault_secret := json.patch(fx_external_secret, [{"op": "replace", "path": "/spec/secretStoreRef", "value": {"kind": "SecretStore", "name": "vault"}}])

fxk_kafka_secret := {
	"apiVersion": "external-secrets.io/v1",
	"kind": "ExternalSecret",
	"metadata": object.union(fx_meta("quiz-kafka"), {"annotations": {"plugins.adapstory.io/secret-store-provider": "kubernetes"}}),
	"spec": {
		"secretStoreRef": {"kind": "SecretStore", "name": "kafka"},
		"target": {"name": "kafka-credentials"},
		"data": [
			{"secretKey": "password", "remoteRef": {"key": fxk_user, "property": "password"}},
			{"secretKey": "sasl.jaas.config", "remoteRef": {"key": fxk_user, "property": "sasl.jaas.config"}},
		],
	},
}

fxk_admin_auth := {"path": "kubernetes", "role": "vault-config-admin", "serviceAccount": {"name": "vault-config-operator"}}

fxk_auth_role := {
	"apiVersion": "redhatcop.redhat.io/v1alpha1",
	"kind": "KubernetesAuthEngineRole",
	"metadata": {"name": fxk_user, "namespace": "vault-config", "labels": fx_labels},
	"spec": {
		"authentication": fxk_admin_auth, "path": "kubernetes", "name": fxk_user, "policies": [fxk_user],
		"targetNamespaces": {"targetNamespaces": [fx_ns]}, "targetServiceAccounts": ["quiz"],
	},
}

fxk_policy := {
	"apiVersion": "redhatcop.redhat.io/v1alpha1",
	"kind": "Policy",
	"metadata": {"name": fxk_user, "namespace": "vault-config", "labels": fx_labels},
	"spec": {
		"authentication": fxk_admin_auth, "name": fxk_user, "type": "acl",
		"policy": "path \"secret/data/adapstory/plugins/quiz/acme-school/*\" {\n  capabilities = [\"read\"]\n}\n",
	},
}

fxk_bundle_json := json.patch(fx_bundle_json, [{"op": "add", "path": "/isolation/kafkaSecret", "value": fxk_user},
	{"op": "add", "path": "/isolation/kafkaNamespace", "value": "kafka"},
	{"op": "add", "path": "/isolation/kafkaUser", "value": fxk_user},
	{"op": "add", "path": "/isolation/topics", "value": ["tenant.acme-school.quiz.generated"]},
	{"op": "add", "path": "/isolation/vaultRole", "value": fxk_user},
	{"op": "add", "path": "/isolation/vaultConfigNamespace", "value": "vault-config"},
	{"op": "add", "path": "/isolation/onUninstall", "value": "keep"}])

fxk_keep := ["Observe", "Create", "Update", "LateInitialize"]

fxk_entries := array.concat(fx_replacing(fx_replacing(fx_replacing(fx_replacing(fx_replacing(fx_entries, "bundle.json", fxk_bundle_json), "externalsecret-quiz.yaml", fxk_vault_secret), "role-quiz.yaml", json.patch(fx_role, [{"op": "add", "path": "/spec/managementPolicies", "value": fxk_keep}])), "schema-quiz.yaml", json.patch(fx_schema, [{"op": "add", "path": "/spec/managementPolicies", "value": fxk_keep}])), "grant-quiz-schema.yaml", json.patch(fx_grant, [{"op": "add", "path": "/spec/managementPolicies", "value": fxk_keep}])), [
	fx_entry("externalsecret-quiz-kafka.yaml", fxk_kafka_secret),
	fx_entry("kafkatopic-tenant.acme-school.quiz.generated.yaml", fxk_topic),
	fx_entry("kubernetesauthenginerole-plugin-acme-school-quiz.yaml", fxk_auth_role),
	fx_entry("policy-plugin-acme-school-quiz.yaml", fxk_policy),
	fx_entry("role-plugin-acme-school-quiz.yaml", fxk_rbac_role),
	fx_entry("rolebinding-plugin-acme-school-quiz.yaml", fxk_binding),
	fx_entry("secretstore-kafka.yaml", fxk_kafka_store),
	fx_entry("secretstore-vault.yaml", fxk_vault_store),
	fx_entry("serviceaccount-quiz.yaml", fxk_service_account),
])

# Every finding of the rules of kafka.rego, secrets.rego and retention.rego, and of the namespace rule.
store_findings(ents) := ((((check_bundle_kafka_topics(ents, b) | check_bundle_kafka_secret(ents, b)) | check_bundle_secret_stores(ents, b)) | check_bundle_vault_config(ents, b)) | check_bundle_retention(ents, b)) | check_bundle_namespace(ents, b) if {
	b := bundle_of(ents)
}

fxk_with(file, obj) := fx_replacing(fxk_entries, file, obj)

# ---------------------------------------------------------------- the compliant bundle

test_the_bundles_kafka_credentials_topics_and_stores_pass_every_rule if {
	count(store_findings(fxk_entries)) == 0
}

test_the_bundle_passes_the_existing_cross_object_rules_too if {
	count(bundle_findings(fxk_entries)) == 0
}

# ---------------------------------------------------------------- KafkaTopic

test_a_topic_outside_the_tenants_topic_namespace_is_denied if {
	t := json.patch(fxk_topic, [{"op": "replace", "path": "/spec/topicName", "value": "tenant.riverside.quiz.generated"}])
	rules_of(store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))) == {"kafka-topic-scope"}
}

test_a_topic_the_bundle_does_not_produce_is_denied if {
	t := json.patch(fxk_topic, [{"op": "replace", "path": "/spec/topicName", "value": "tenant.acme-school.lesson.published"}])
	findings := store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))
	some f in findings
	contains(f, "not one the bundle produces")
}

test_a_topic_outside_the_kafka_namespace_is_denied if {
	t := json.patch(fxk_topic, [{"op": "replace", "path": "/metadata/namespace", "value": fx_ns}])
	rules_of(store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))) == {"kafka-topic-scope"}
}

test_a_topic_of_another_kafka_cluster_is_denied if {
	t := json.patch(fxk_topic, [{"op": "replace", "path": "/metadata/labels/strimzi.io~1cluster", "value": "other"}])
	rules_of(store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))) == {"kafka-topic-scope"}
}

test_a_topic_in_a_bundle_without_a_kafka_user_is_denied if {
	ents := fx_without(fxk_entries, "kafkauser-plugin-acme-school-quiz.yaml")
	"kafka-topic-scope" in rules_of(store_findings(ents))
}

# ---------------------------------------------------------------- the KafkaUser's secret

test_a_role_reading_another_bundles_kafka_secret_is_denied if {
	r := json.patch(fxk_rbac_role, [{"op": "replace", "path": "/rules/0/resourceNames", "value": ["plugin-riverside-quiz"]}])
	findings := store_findings(fxk_with("role-plugin-acme-school-quiz.yaml", r))
	findings == {"kafka-secret-scope: dev/plugins/acme-school/quiz/role-plugin-acme-school-quiz.yaml: Role/plugin-acme-school-quiz: rules[0] has resourceNames [\"plugin-riverside-quiz\"]: only the bundle's KafkaUser secret plugin-acme-school-quiz"}
}

test_a_role_reading_every_secret_is_denied if {
	r := json.patch(fxk_rbac_role, [{"op": "remove", "path": "/rules/0/resourceNames"}])
	rules_of(store_findings(fxk_with("role-plugin-acme-school-quiz.yaml", r))) == {"kafka-secret-scope"}
}

test_a_role_that_lists_or_writes_secrets_is_denied if {
	r := json.patch(fxk_rbac_role, [{"op": "replace", "path": "/rules/0/verbs", "value": ["get", "list", "update"]}])
	rules_of(store_findings(fxk_with("role-plugin-acme-school-quiz.yaml", r))) == {"kafka-secret-scope"}
}

test_a_role_on_other_resources_is_denied if {
	r := json.patch(fxk_rbac_role, [{"op": "add", "path": "/rules/-", "value": {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], "resourceNames": [fxk_user]}}])
	rules_of(store_findings(fxk_with("role-plugin-acme-school-quiz.yaml", r))) == {"kafka-secret-scope"}
}

test_a_role_in_another_namespace_is_denied if {
	r := json.patch(fxk_rbac_role, [{"op": "replace", "path": "/metadata/namespace", "value": "kube-system"}])
	rules_of(store_findings(fxk_with("role-plugin-acme-school-quiz.yaml", r))) == {"kafka-secret-scope"}
}

test_a_binding_to_another_namespaces_service_account_is_denied if {
	rb := json.patch(fxk_binding, [{"op": "replace", "path": "/subjects/0/namespace", "value": "plugin-riverside-quiz"}])
	rules_of(store_findings(fxk_with("rolebinding-plugin-acme-school-quiz.yaml", rb))) == {"kafka-secret-scope"}
}

test_a_binding_to_a_group_is_denied if {
	rb := json.patch(fxk_binding, [{"op": "replace", "path": "/subjects/0", "value": {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}}])
	rules_of(store_findings(fxk_with("rolebinding-plugin-acme-school-quiz.yaml", rb))) == {"kafka-secret-scope"}
}

test_a_binding_to_a_cluster_role_is_denied if {
	rb := json.patch(fxk_binding, [{"op": "replace", "path": "/roleRef/kind", "value": "ClusterRole"}])
	rules_of(store_findings(fxk_with("rolebinding-plugin-acme-school-quiz.yaml", rb))) == {"kafka-secret-scope"}
}

test_rbac_in_a_bundle_without_kafka_is_denied if {
	ents := fx_without(fxk_entries, "kafkauser-plugin-acme-school-quiz.yaml")
	"kafka-secret-scope" in rules_of(store_findings(ents))
}

test_without_bundle_json_the_kafka_users_name_is_the_secret if {
	ents := fx_without(fxk_entries, "bundle.json")
	count(check_bundle_kafka_secret(ents, bundle_of(ents))) == 0
}

test_the_bundles_rbac_is_its_rbac_roles_and_bindings_not_its_database_role if {
	b := bundle_of(fxk_entries)
	rbac := bundle_rbac(fxk_entries, b)
	{fxk_entries[i].contents.kind | some i in rbac} == {"Role", "RoleBinding"}
	every i in rbac {
		startswith(fxk_entries[i].contents.apiVersion, "rbac.authorization.k8s.io/")
	}
	count(rbac) == count([i | some i in b.members; rbac_object(fxk_entries[i].contents)])
}
