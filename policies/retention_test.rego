# Unit tests of retention.rego (fixtures in kafka_test.rego and fixtures_test.rego).
package main

import rego.v1

fxr_opted_in := json.patch(fxk_bundle_json, [{"op": "replace", "path": "/isolation/onUninstall", "value": "delete"}])

test_a_schema_crossplane_may_delete_is_denied if {
	s := json.patch(fx_schema, [{"op": "add", "path": "/spec/managementPolicies", "value": ["*"]}])
	rules_of(store_findings(fxk_with("schema-quiz.yaml", s))) == {"data-kept-on-uninstall"}
}

test_a_role_with_the_default_management_policies_is_denied if {
	rules_of(store_findings(fxk_with("role-quiz.yaml", fx_role))) == {"data-kept-on-uninstall"}
}

test_a_grant_with_delete_is_denied if {
	g := json.patch(fx_grant, [{"op": "add", "path": "/spec/managementPolicies", "value": ["Observe", "Delete"]}])
	rules_of(store_findings(fxk_with("grant-quiz-schema.yaml", g))) == {"data-kept-on-uninstall"}
}

test_a_topic_argo_cd_would_delete_is_denied if {
	t := json.patch(fxk_topic, [{"op": "remove", "path": "/metadata/annotations"}])
	rules_of(store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))) == {"data-kept-on-uninstall"}
}

test_delete_false_among_other_sync_options_keeps_the_topic if {
	t := json.patch(fxk_topic, [{"op": "replace", "path": "/metadata/annotations", "value": {"argocd.argoproj.io/sync-options": "ServerSideApply=true, Delete=false"}}])
	count(store_findings(fxk_with("kafkatopic-tenant.acme-school.quiz.generated.yaml", t))) == 0
}

test_the_opt_in_allows_deleting_the_data if {
	ents := fx_replacing(fx_replacing(fxk_with("bundle.json", fxr_opted_in), "role-quiz.yaml", fx_role), "kafkatopic-tenant.acme-school.quiz.generated.yaml", json.patch(fxk_topic, [{"op": "remove", "path": "/metadata/annotations"}]))
	count(store_findings(ents)) == 0
}
