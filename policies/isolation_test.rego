package main

import rego.v1

fx_with_secret_key(key) := json.patch(fx_external_secret, [{"op": "replace", "path": "/spec/data/0/remoteRef/key", "value": key}])

fx_with_acl(acl) := json.patch(fx_kafka_user, [{"op": "add", "path": "/spec/authorization/acls/-", "value": acl}])

fx_without_prefix_annotations := json.patch(fx_kafka_user, [{"op": "remove", "path": "/metadata/annotations"}])

# ---------------------------------------------------------------- Vault

test_secret_keys_under_the_bundles_vault_prefix_pass if {
	count(check_vault_prefix(subject(fx_external_secret))) == 0
}

test_a_secret_key_of_another_tenant_is_denied if {
	es := fx_with_secret_key("adapstory/plugins/quiz/other-school/openai")
	check_vault_prefix(subject(es)) == {"vault-prefix: ExternalSecret/quiz: spec.data[0].remoteRef.key reads 'adapstory/plugins/quiz/other-school/openai', outside the bundle's Vault prefix adapstory/plugins/quiz/acme-school/"}
}

test_a_secret_key_of_another_plugin_is_denied if {
	es := fx_with_secret_key("adapstory/plugins/grades/acme-school/token")
	rules_of(check_vault_prefix(subject(es))) == {"vault-prefix"}
}

test_a_tenant_id_that_extends_ours_is_not_ours if {
	es := fx_with_secret_key("adapstory/plugins/quiz/acme-school-evil/openai")
	rules_of(check_vault_prefix(subject(es))) == {"vault-prefix"}
}

test_path_traversal_out_of_the_prefix_is_denied if {
	es := fx_with_secret_key("adapstory/plugins/quiz/acme-school/../../grades/acme-school/token")
	rules_of(check_vault_prefix(subject(es))) == {"vault-prefix"}
}

test_the_prefix_itself_is_not_a_key if {
	es := fx_with_secret_key("adapstory/plugins/quiz/acme-school/")
	rules_of(check_vault_prefix(subject(es))) == {"vault-prefix"}
}

test_data_from_extract_and_find_are_checked if {
	es := json.patch(fx_external_secret, [{"op": "add", "path": "/spec/dataFrom", "value": [
		{"extract": {"key": "adapstory/plugins/quiz/acme-school/all"}},
		{"extract": {"key": "adapstory/platform/root"}},
		{"find": {"name": {"regexp": ".*"}}},
		{"find": {"path": "adapstory/plugins/quiz/acme-school", "name": {"regexp": ".*"}}},
	]}])
	findings := check_vault_prefix(subject(es))
	count(findings) == 3
	rules_of(findings) == {"vault-prefix"}
}

# ---------------------------------------------------------------- Kafka

test_acls_inside_the_tenants_prefixes_pass if {
	count(check_kafka_acls(subject(fx_kafka_user))) == 0
}

test_an_acl_on_another_tenants_topic_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.other-school.lesson.published", "patternType": "literal"}})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_an_acl_on_another_plugins_group_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "group", "name": "tenant.acme-school.grades.", "patternType": "prefix"}})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_a_wildcard_topic_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "topic", "name": "*"}})
	"kafka-acl-wildcard" in rules_of(check_kafka_acls(subject(ku)))
}

test_a_prefix_pattern_on_topics_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.acme-school.", "patternType": "prefix"}})
	"kafka-acl-wildcard" in rules_of(check_kafka_acls(subject(ku)))
}

test_an_empty_resource_name_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "group", "name": "", "patternType": "prefix"}})
	"kafka-acl-wildcard" in rules_of(check_kafka_acls(subject(ku)))
}

test_operation_all_is_denied if {
	ku := fx_with_acl({"operations": ["All"], "resource": {"type": "topic", "name": "tenant.acme-school.quiz.generated"}})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-wildcard"}
}

test_cluster_acls_are_denied if {
	ku := fx_with_acl({"operations": ["Create"], "resource": {"type": "cluster"}})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_an_acl_without_a_resource_is_denied if {
	ku := fx_with_acl({"operations": ["Read"]})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-wildcard", "kafka-acl-scope"}
}

test_deny_acls_only_take_away_and_pass if {
	ku := fx_with_acl({"type": "deny", "operations": ["All"], "resource": {"type": "topic", "name": "*"}})
	count(check_kafka_acls(subject(ku))) == 0
}

test_a_topic_that_only_starts_like_the_prefix_is_denied if {
	ku := fx_with_acl({"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.acme-school-evil.x"}})
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_prefix_annotations_that_do_not_name_the_owner_are_denied if {
	ku := json.patch(fx_kafka_user, [
		{"op": "replace", "path": "/metadata/annotations/plugins.adapstory.io~1topic-prefix", "value": "tenant."},
		{"op": "replace", "path": "/metadata/annotations/plugins.adapstory.io~1group-prefix", "value": "tenant.acme-school."},
	])
	findings := check_kafka_acls(subject(ku))
	rules_of(findings) == {"kafka-acl-scope"}
	count([f | some f in findings; contains(f, "annotation plugins.adapstory.io/")]) == 2
}

test_without_prefix_annotations_names_must_contain_the_tenant if {
	count(check_kafka_acls(subject(fx_without_prefix_annotations))) == 0
	ku := json.patch(fx_without_prefix_annotations, [{"op": "add", "path": "/spec/authorization/acls/-", "value": {"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.other-school.x"}}}])
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_without_prefix_annotations_groups_must_contain_the_plugin if {
	ku := json.patch(fx_without_prefix_annotations, [{"op": "add", "path": "/spec/authorization/acls/-", "value": {"operations": ["Read"], "resource": {"type": "group", "name": "tenant.acme-school.grades.", "patternType": "prefix"}}}])
	rules_of(check_kafka_acls(subject(ku))) == {"kafka-acl-scope"}
}

test_prefix_annotations_must_match_bundle_json if {
	j := json.patch(fx_bundle_json, [{"op": "replace", "path": "/isolation/topicPrefix", "value": "t.acme-school."}])
	ents := fx_replacing(fx_entries, "bundle.json", j)
	rules_of(bundle_findings(ents)) == {"kafka-acl-scope"}
}

# ---------------------------------------------------------------- PostgreSQL

test_a_grant_on_the_bundles_schema_passes if {
	count(check_db_grant(subject(fx_grant))) == 0
	count(check_bundle_db(fx_entries, bundle_of(fx_entries))) == 0
}

test_a_grant_on_another_schema_is_denied if {
	g := json.patch(fx_grant, [{"op": "replace", "path": "/spec/forProvider/schemaRef/name", "value": "grades"}])
	ents := fx_replacing(fx_entries, "grant-quiz-schema.yaml", g)
	bundle_findings(ents) == {"db-grant-scope: dev/plugins/acme-school/quiz/grant-quiz-schema.yaml: Grant/quiz-schema: schemaRef names 'grades', which is not a Schema of this bundle"}
}

test_a_grant_naming_another_schema_literally_is_denied if {
	g := json.patch(fx_grant, [
		{"op": "remove", "path": "/spec/forProvider/schemaRef"},
		{"op": "add", "path": "/spec/forProvider/schema", "value": "public"},
	])
	ents := fx_replacing(fx_entries, "grant-quiz-schema.yaml", g)
	rules_of(bundle_findings(ents)) == {"db-grant-scope"}
}

test_a_grant_on_another_database_is_denied if {
	g := json.patch(fx_grant, [{"op": "replace", "path": "/spec/forProvider/database", "value": "tenant_other_school"}])
	ents := fx_replacing(fx_entries, "grant-quiz-schema.yaml", g)
	findings := bundle_findings(ents)
	rules_of(findings) == {"db-grant-scope"}
	count(findings) == 2
}

test_a_grant_for_another_role_is_denied if {
	g := json.patch(fx_grant, [{"op": "replace", "path": "/spec/forProvider/roleRef/name", "value": "grades"}])
	ents := fx_replacing(fx_entries, "grant-quiz-schema.yaml", g)
	rules_of(bundle_findings(ents)) == {"db-grant-scope"}
}

test_a_grant_on_the_whole_database_is_denied if {
	g := json.patch(fx_grant, [{"op": "remove", "path": "/spec/forProvider/schemaRef"}])
	rules_of(check_db_grant(subject(g))) == {"db-grant-scope"}
}

test_role_membership_grants_are_denied if {
	g := json.patch(fx_grant, [{"op": "add", "path": "/spec/forProvider/memberOf", "value": "plugin_grades_acme_school"}])
	check_db_grant(subject(g)) == {"db-grant-scope: Grant/quiz-schema: spec.forProvider.memberOf makes the role a member of another role"}
}

test_a_schema_that_is_not_the_one_bundle_json_records_is_denied if {
	s := json.patch(fx_schema, [{"op": "replace", "path": "/metadata/annotations/crossplane.io~1external-name", "value": "grades"}])
	ents := fx_replacing(fx_entries, "schema-quiz.yaml", s)
	rules_of(bundle_findings(ents)) == {"db-grant-scope"}
}

test_a_superuser_role_is_denied if {
	r := json.patch(fx_role, [{"op": "replace", "path": "/spec/forProvider/privileges/superUser", "value": true}])
	rules_of(object_findings(r)) == {"db-role-privileges"}
}

test_a_kubernetes_rbac_role_is_not_a_database_role if {
	r := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": fx_meta("quiz"), "rules": []}
	count(check_db_role(subject(r))) == 0
}

# ---------------------------------------------------------------- the fast paths

test_the_platform_prefixes_name_their_tenant_and_plugin if {
	owner := kafka_owner(fx_kafka_user)
	platform_prefixes(owner)
	prefix_annotation_reasons(owner) == set()
}

test_other_prefixes_or_ids_take_the_regular_expressions if {
	owner := kafka_owner(fx_kafka_user)
	not platform_prefixes(object.union(owner, {"topic_prefix": "tenant.acme-school-evil."}))
	not platform_prefixes(object.union(owner, {"group_prefix": "tenant.acme-school."}))
	not platform_prefixes(object.union(owner, {"tenant": "acme.school", "topic_prefix": "tenant.acme.school.", "group_prefix": "tenant.acme.school.quiz."}))
	plain_id("acme-school-42")
	not plain_id("acme.school")
	not plain_id("")
	not plain_id(42)
}

test_the_acls_under_the_platform_prefixes_are_clean if {
	owner := kafka_owner(fx_kafka_user)
	acls := fx_kafka_user.spec.authorization.acls
	acl_clean(acls[0], owner)
	acl_clean(acls[1], owner)
	not acl_clean(acls[2], owner) # no patternType: the slow path defaults it to literal
	[acl | some acl in acls; count(acl_problems(acl_of(acl), owner)) > 0] == []
}

test_an_acl_with_a_problem_is_not_clean if {
	owner := kafka_owner(fx_kafka_user)
	acls := [
		{"operations": ["All"], "resource": {"type": "topic", "name": "tenant.acme-school.x", "patternType": "literal"}},
		{"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.acme-school.*", "patternType": "literal"}},
		{"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.acme-school.", "patternType": "prefix"}},
		{"operations": ["Read"], "resource": {"type": "topic", "name": "tenant.riverside.x", "patternType": "literal"}},
		{"operations": ["Read"], "resource": {"type": "group", "name": "tenant.acme-school.other.", "patternType": "prefix"}},
		{"operations": ["Read"], "operation": "All", "resource": {"type": "group", "name": "tenant.acme-school.quiz.", "patternType": "prefix"}},
		{"operations": ["Alter"], "resource": {"type": "cluster", "name": "kafka-cluster"}},
	]
	[acl | some acl in acls; acl_clean(acl, owner)] == []
	[acl | some acl in acls; count(acl_problems(acl_of(acl), owner)) == 0] == []
}

test_the_recorded_prefixes_and_database_names_are_clean if {
	b := bundle_of(fx_entries)
	some i in of_kind(fx_entries, b, "KafkaUser")
	kafka_prefixes_recorded(fx_entries[i].contents, b)
	db_names_with(fx_entries, b, bundle_db(fx_entries, b)) == set()
}

test_database_names_other_than_the_recorded_ones_are_found if {
	j := json.patch(fx_bundle_json, [{"op": "replace", "path": "/isolation/schema", "value": "other"}])
	ents := fx_replacing(fx_entries, "bundle.json", j)
	b := bundle_of(ents)
	count(db_names_with(ents, b, bundle_db(ents, b))) == 1
	j2 := json.patch(fx_bundle_json, [{"op": "replace", "path": "/isolation/topicPrefix", "value": "tenant.other."}])
	ents2 := fx_replacing(fx_entries, "bundle.json", j2)
	b2 := bundle_of(ents2)
	some u in of_kind(ents2, b2, "KafkaUser")
	not kafka_prefixes_recorded(ents2[u].contents, b2)
}
