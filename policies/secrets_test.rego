# Unit tests of secrets.rego (fixtures in kafka_test.rego and fixtures_test.rego).
package main

import rego.v1

test_an_external_secret_through_a_cluster_secret_store_is_denied if {
	rules_of(store_findings(fxk_with("externalsecret-quiz.yaml", fx_external_secret))) == {"secret-store-scope"}
}

test_an_external_secret_through_a_store_of_another_bundle_is_denied if {
	es := json.patch(fxk_vault_secret, [{"op": "replace", "path": "/spec/secretStoreRef/name", "value": "vault-other"}])
	rules_of(store_findings(fxk_with("externalsecret-quiz.yaml", es))) == {"secret-store-scope"}
}

test_the_vault_store_under_another_bundles_role_is_denied if {
	s := json.patch(fxk_vault_store, [{"op": "replace", "path": "/spec/provider/vault/auth/kubernetes/role", "value": "plugin-riverside-quiz"}])
	findings := store_findings(fxk_with("secretstore-vault.yaml", s))
	findings == {"secret-store-scope: dev/plugins/acme-school/quiz/secretstore-vault.yaml: SecretStore/vault: the Vault store logs in under role 'plugin-riverside-quiz', not the bundle's Vault role plugin-acme-school-quiz"}
}

test_the_vault_store_with_a_token_instead_of_the_service_account_is_denied if {
	s := json.patch(fxk_vault_store, [{"op": "replace", "path": "/spec/provider/vault/auth", "value": {"tokenSecretRef": {"name": "root", "key": "token"}}}])
	rules_of(store_findings(fxk_with("secretstore-vault.yaml", s))) == {"secret-store-scope"}
}

test_the_vault_store_as_another_namespaces_service_account_is_denied if {
	s := json.patch(fxk_vault_store, [{"op": "add", "path": "/spec/provider/vault/auth/kubernetes/serviceAccountRef/namespace", "value": "kube-system"}])
	rules_of(store_findings(fxk_with("secretstore-vault.yaml", s))) == {"secret-store-scope"}
}

test_a_store_of_another_provider_is_denied if {
	s := json.patch(fxk_vault_store, [{"op": "replace", "path": "/spec/provider", "value": {"fake": {"data": []}}}])
	rules_of(store_findings(fxk_with("secretstore-vault.yaml", s))) == {"secret-store-scope"}
}

test_the_kubernetes_store_reading_another_namespace_is_denied if {
	s := json.patch(fxk_kafka_store, [{"op": "replace", "path": "/spec/provider/kubernetes/remoteNamespace", "value": "vault"}])
	rules_of(store_findings(fxk_with("secretstore-kafka.yaml", s))) == {"secret-store-scope"}
}

test_the_kafka_external_secret_reading_another_users_secret_is_denied if {
	es := json.patch(fxk_kafka_secret, [{"op": "replace", "path": "/spec/data/0/remoteRef/key", "value": "plugin-riverside-quiz"}])
	rules_of(store_findings(fxk_with("externalsecret-quiz-kafka.yaml", es))) == {"secret-store-scope"}
}

test_the_kafka_external_secret_reading_in_bulk_is_denied if {
	es := json.patch(fxk_kafka_secret, [{"op": "add", "path": "/spec/dataFrom", "value": [{"find": {"name": {"regexp": ".*"}}}]}])
	rules_of(store_findings(fxk_with("externalsecret-quiz-kafka.yaml", es))) == {"secret-store-scope"}
}

test_a_vault_external_secret_claiming_the_kubernetes_store_is_denied if {
	es := json.patch(fxk_vault_secret, [{"op": "add", "path": "/metadata/annotations", "value": {"plugins.adapstory.io/secret-store-provider": "kubernetes"}}])
	rules_of(store_findings(fxk_with("externalsecret-quiz.yaml", es))) == {"secret-store-scope"}
}

test_the_kubernetes_store_annotation_skips_only_the_vault_prefix_rule if {
	count(check_vault_prefix(subject(fxk_kafka_secret))) == 0
	count(check_vault_prefix(subject(fxk_vault_secret))) == 0
}

test_a_vault_role_admitting_every_namespace_is_denied if {
	r := json.patch(fxk_auth_role, [{"op": "replace", "path": "/spec/targetNamespaces", "value": {"targetNamespaceSelector": {}}}])
	rules_of(store_findings(fxk_with("kubernetesauthenginerole-plugin-acme-school-quiz.yaml", r))) == {"vault-role-scope"}
}

test_a_vault_role_admitting_another_service_account_is_denied if {
	r := json.patch(fxk_auth_role, [{"op": "replace", "path": "/spec/targetServiceAccounts", "value": ["default"]}])
	rules_of(store_findings(fxk_with("kubernetesauthenginerole-plugin-acme-school-quiz.yaml", r))) == {"vault-role-scope"}
}

test_a_vault_role_with_another_policy_is_denied if {
	r := json.patch(fxk_auth_role, [{"op": "add", "path": "/spec/policies/-", "value": "platform-admin"}])
	rules_of(store_findings(fxk_with("kubernetesauthenginerole-plugin-acme-school-quiz.yaml", r))) == {"vault-role-scope"}
}

test_a_vault_role_outside_the_platform_admin_namespace_is_denied if {
	r := json.patch(fxk_auth_role, [{"op": "replace", "path": "/metadata/namespace", "value": fx_ns}])
	rules_of(store_findings(fxk_with("kubernetesauthenginerole-plugin-acme-school-quiz.yaml", r))) == {"vault-role-scope"}
}

test_a_vault_policy_on_another_prefix_is_denied if {
	p := json.patch(fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": "path \"secret/data/adapstory/plugins/quiz/riverside/*\" {\n  capabilities = [\"read\"]\n}\n"}])
	findings := store_findings(fxk_with("policy-plugin-acme-school-quiz.yaml", p))
	findings == {"vault-role-scope: dev/plugins/acme-school/quiz/policy-plugin-acme-school-quiz.yaml: Policy/plugin-acme-school-quiz: the policy's path 'secret/data/adapstory/plugins/quiz/riverside/*' is outside the bundle's Vault prefix adapstory/plugins/quiz/acme-school/"}
}

test_a_vault_policy_with_a_second_path_block_is_denied if {
	text := concat("", [fxk_policy.spec.policy, "path \"sys/*\" {\n  capabilities = [\"read\"]\n}\n"])
	p := json.patch(fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": text}])
	rules_of(store_findings(fxk_with("policy-plugin-acme-school-quiz.yaml", p))) == {"vault-role-scope"}
}

test_a_vault_policy_granting_more_than_read_is_denied if {
	p := json.patch(fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": "path \"secret/data/adapstory/plugins/quiz/acme-school/*\" {\n  capabilities = [\"read\", \"update\"]\n}\n"}])
	rules_of(store_findings(fxk_with("policy-plugin-acme-school-quiz.yaml", p))) == {"vault-role-scope"}
}

test_a_vault_policy_path_that_climbs_out_is_denied if {
	p := json.patch(fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": "path \"secret/data/adapstory/plugins/quiz/acme-school/../../*adapstory/plugins/quiz/acme-school/*\" {\n  capabilities = [\"read\"]\n}\n"}])
	rules_of(store_findings(fxk_with("policy-plugin-acme-school-quiz.yaml", p))) == {"vault-role-scope"}
}

test_a_vault_policy_with_text_before_its_path_is_denied if {
	p := json.patch(fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": concat("", ["# hello\n", fxk_policy.spec.policy])}])
	rules_of(store_findings(fxk_with("policy-plugin-acme-school-quiz.yaml", p))) == {"vault-role-scope"}
}

# ---------------------------------------------------------------- the fast paths

# A fast path holds only where its check finds nothing (it may also fail there: the check decides).
secrets_fxk_facts := bundle_secret_facts(fxk_entries, bundle_of(fxk_entries))

secrets_fxk_policies := {fxk_user}

test_the_renderers_vault_role_and_policy_are_clean if {
	vault_object_clean(fxk_auth_role, secrets_fxk_facts, secrets_fxk_policies)
	vault_object_clean(fxk_policy, secrets_fxk_facts, secrets_fxk_policies)
	count(vault_config_reasons(fxk_auth_role, secrets_fxk_facts, secrets_fxk_policies)) == 0
	count(vault_config_reasons(fxk_policy, secrets_fxk_facts, secrets_fxk_policies)) == 0
}

vault_object_edits := [
	[fxk_auth_role, [{"op": "replace", "path": "/metadata/namespace", "value": "vault"}]],
	[fxk_auth_role, [{"op": "replace", "path": "/spec/name", "value": "plugin-riverside-quiz"}]],
	[fxk_auth_role, [{"op": "replace", "path": "/spec/targetServiceAccounts", "value": ["quiz", "default"]}]],
	[fxk_auth_role, [{"op": "remove", "path": "/spec/targetServiceAccounts"}]],
	[fxk_auth_role, [{"op": "replace", "path": "/spec/policies", "value": ["admin"]}]],
	[fxk_auth_role, [{"op": "replace", "path": "/spec/targetNamespaces", "value": {"targetNamespaceSelector": {}}}]],
	[fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": "path \"secret/data/adapstory/plugins/quiz/acme-school/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"}]],
	[fxk_policy, [{"op": "replace", "path": "/spec/policy", "value": "path \"secret/data/adapstory/plugins/*\" {\n  capabilities = [\"read\"]\n}\n"}]],
	[fxk_policy, [{"op": "replace", "path": "/kind", "value": "AuthEngineMount"}]],
]

test_a_vault_object_with_any_reason_is_not_clean if {
	wrongly_clean := [n |
		some n
		edit := vault_object_edits[n]
		obj := json.patch(edit[0], edit[1])
		vault_object_clean(obj, secrets_fxk_facts, secrets_fxk_policies)
	]
	wrongly_clean == []
	found := [n |
		some n
		edit := vault_object_edits[n]
		count(vault_config_reasons(json.patch(edit[0], edit[1]), secrets_fxk_facts, secrets_fxk_policies)) > 0
	]
	count(found) == count(vault_object_edits)
}

test_a_policy_prefix_with_a_quote_takes_the_slow_path if {
	facts := object.union(secrets_fxk_facts, {"vault_prefix": "adapstory/plugins/quiz\"/acme-school/"})
	not vault_object_clean(fxk_policy, facts, secrets_fxk_policies)
}

test_the_renderers_stores_and_external_secrets_are_clean if {
	stores := bundle_stores(fxk_entries, bundle_of(fxk_entries))
	external_secret_clean(fxk_vault_secret, stores, secrets_fxk_facts)
	external_secret_clean(fxk_kafka_secret, stores, secrets_fxk_facts)
	store_clean(fxk_vault_store.spec.provider, secrets_fxk_facts)
	store_clean(fxk_kafka_store.spec.provider, secrets_fxk_facts)
}

test_stores_and_external_secrets_with_a_reason_are_not_clean if {
	stores := bundle_stores(fxk_entries, bundle_of(fxk_entries))
	not external_secret_clean(fx_external_secret, stores, secrets_fxk_facts)
	not external_secret_clean(json.patch(fxk_kafka_secret, [{"op": "replace", "path": "/spec/data/1/remoteRef/key", "value": "other"}]), stores, secrets_fxk_facts)
	not external_secret_clean(json.patch(fxk_kafka_secret, [{"op": "add", "path": "/spec/dataFrom", "value": [{"extract": {"key": fxk_user}}]}]), stores, secrets_fxk_facts)
	not external_secret_clean(json.patch(fxk_vault_secret, [{"op": "add", "path": "/metadata/annotations", "value": {"plugins.adapstory.io/secret-store-provider": "kubernetes"}}]), stores, secrets_fxk_facts)
	not store_clean(json.patch(fxk_vault_store, [{"op": "add", "path": "/spec/provider/vault/auth/kubernetes/secretRef", "value": {"name": "t"}}]).spec.provider, secrets_fxk_facts)
	not store_clean(json.patch(fxk_vault_store, [{"op": "replace", "path": "/spec/provider/vault/auth/kubernetes/role", "value": "other"}]).spec.provider, secrets_fxk_facts)
	not store_clean(json.patch(fxk_kafka_store, [{"op": "add", "path": "/spec/provider/kubernetes/auth/serviceAccount/namespace", "value": "kafka"}]).spec.provider, secrets_fxk_facts)
	not store_clean(json.patch(fxk_kafka_store, [{"op": "remove", "path": "/spec/provider/kubernetes/remoteNamespace"}]).spec.provider, secrets_fxk_facts)
	not store_clean({"vault": fxk_vault_store.spec.provider.vault, "kubernetes": fxk_kafka_store.spec.provider.kubernetes}, secrets_fxk_facts)
}
