package main

import rego.v1

test_the_fixture_bundle_passes_every_check if {
	count(all_findings(fx_entries)) == 0
}

test_an_object_without_a_required_label_is_denied if {
	q := json.patch(fx_quota, [{"op": "remove", "path": "/metadata/labels/plugins.adapstory.io~1env"}])
	check_required_labels(subject(q)) == {"required-labels: ResourceQuota/quiz: missing label(s) plugins.adapstory.io/env"}
}

test_an_empty_required_label_counts_as_missing if {
	q := json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": ""}])
	rules_of(check_required_labels(subject(q))) == {"required-labels"}
}

test_an_object_without_labels_lists_every_missing_label if {
	q := json.patch(fx_quota, [{"op": "remove", "path": "/metadata/labels"}])
	some f in check_required_labels(subject(q))
	contains(f, "missing label(s) app.kubernetes.io/instance, app.kubernetes.io/managed-by, app.kubernetes.io/name, plugins.adapstory.io/env, plugins.adapstory.io/plugin, plugins.adapstory.io/tenant")
}

test_a_pod_template_without_identity_labels_is_denied if {
	d := json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template/metadata/labels/plugins.adapstory.io~1tenant"}])
	some f in check_required_labels(subject(d))
	contains(f, "pod template is missing label(s) plugins.adapstory.io/tenant")
}

test_a_namespace_without_restricted_pod_security_is_denied if {
	ns := json.patch(fx_namespace, [{"op": "replace", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce", "value": "baseline"}])
	rules_of(object_findings(ns)) == {"namespace-pod-security"}
}

test_a_cluster_wide_kind_is_denied if {
	crb := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x", "labels": fx_labels}}
	rules_of(object_findings(crb)) == {"no-cluster-scoped"}
}

test_kustomization_and_argo_cd_objects_need_no_bundle_labels if {
	k := {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["a.yaml"]}
	app := {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x", "namespace": "argocd"}}
	count(object_findings(k)) == 0
	count(object_findings(app)) == 0
}

test_a_file_with_several_documents_is_denied_when_combined if {
	s := {"path": "dev/plugins/acme-school/quiz/two.yaml", "contents": [fx_quota, fx_limit_range]}
	rules_of(object_deny(s)) == {"one-object-per-file"}
}

test_a_bundle_without_resource_quota_is_denied if {
	ents := fx_without(fx_entries, "resourcequota-quiz.yaml")
	rules_of(bundle_findings(ents)) == {"resource-quota"}
}

test_a_resource_quota_without_hard_limits_does_not_count if {
	ents := fx_replacing(fx_entries, "resourcequota-quiz.yaml", json.patch(fx_quota, [{"op": "replace", "path": "/spec/hard", "value": {}}]))
	rules_of(bundle_findings(ents)) == {"resource-quota"}
}

test_a_bundle_without_limit_range_is_denied if {
	ents := fx_without(fx_entries, "limitrange-quiz.yaml")
	rules_of(bundle_findings(ents)) == {"limit-range"}
}

test_a_limit_range_without_container_limits_does_not_count if {
	lr := json.patch(fx_limit_range, [{"op": "replace", "path": "/spec/limits/0/type", "value": "PersistentVolumeClaim"}])
	ents := fx_replacing(fx_entries, "limitrange-quiz.yaml", lr)
	rules_of(bundle_findings(ents)) == {"limit-range"}
}

test_an_object_in_another_namespace_is_denied if {
	q := json.patch(fx_quota, [{"op": "replace", "path": "/metadata/namespace", "value": "plugin-other-tenant-quiz"}])
	ents := fx_replacing(fx_entries, "resourcequota-quiz.yaml", q)
	bundle_findings(ents) == {"bundle-namespace: dev/plugins/acme-school/quiz/resourcequota-quiz.yaml: ResourceQuota/quiz: is in namespace 'plugin-other-tenant-quiz', not the bundle's namespace plugin-acme-school-quiz"}
}

test_an_object_without_namespace_is_denied if {
	q := json.patch(fx_quota, [{"op": "remove", "path": "/metadata/namespace"}])
	ents := fx_replacing(fx_entries, "resourcequota-quiz.yaml", q)
	rules_of(bundle_findings(ents)) == {"bundle-namespace"}
}

test_the_kafka_user_may_live_in_the_kafka_namespace if {
	fx_kafka_user.metadata.namespace == "kafka"
	count(check_bundle_namespace(fx_entries, bundle_of(fx_entries))) == 0
}

test_a_bundle_with_two_namespaces_is_denied if {
	other := json.patch(fx_namespace, [{"op": "replace", "path": "/metadata/name", "value": "plugin-acme-school-other"}])
	ents := array.concat(fx_entries, [fx_entry("namespace-plugin-acme-school-other.yaml", other)])
	"bundle-namespace" in rules_of(bundle_findings(ents))
}

test_a_namespace_that_is_not_the_one_bundle_json_records_is_denied if {
	j := json.patch(fx_bundle_json, [{"op": "replace", "path": "/isolation/namespace", "value": "plugin-other"}])
	ents := fx_replacing(fx_entries, "bundle.json", j)
	rules_of(bundle_findings(ents)) == {"bundle-namespace"}
}

test_an_object_labelled_for_another_tenant_is_denied if {
	q := json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels/plugins.adapstory.io~1tenant", "value": "other-school"}])
	ents := fx_replacing(fx_entries, "resourcequota-quiz.yaml", q)
	bundle_findings(ents) == {"bundle-identity: dev/plugins/acme-school/quiz/resourcequota-quiz.yaml: ResourceQuota/quiz: label plugins.adapstory.io/tenant is 'other-school', but the bundle's is 'acme-school'"}
}

test_a_bundle_in_another_tenants_folder_is_denied if {
	moved := [{"path": replace(e.path, "/acme-school/", "/other-school/"), "contents": e.contents} | some e in fx_entries]
	rules_of(bundle_findings(moved)) == {"bundle-identity"}
}

test_a_bundle_below_a_prefix_folder_passes if {
	moved := [{"path": concat("/", ["rendered", e.path]), "contents": e.contents} | some e in fx_entries]
	count(bundle_findings(moved)) == 0
}

test_without_bundle_json_the_namespace_labels_name_the_owner if {
	ents := fx_without(fx_entries, "bundle.json")
	b := bundle_of(ents)
	b.id == {"tenant": "acme-school", "plugin": "quiz", "env": "dev"}
	count(bundle_findings(ents)) == 0
}

test_a_bundle_whose_owner_is_unknown_is_denied if {
	ns := json.patch(fx_namespace, [{"op": "remove", "path": "/metadata/labels/plugins.adapstory.io~1tenant"}])
	ents := fx_replacing(fx_without(fx_entries, "bundle.json"), "namespace-plugin-acme-school-quiz.yaml", ns)
	"bundle-identity" in rules_of(bundle_findings(ents))
}

test_bundles_are_the_folders_that_hold_bundle_objects if {
	other := [{"path": replace(e.path, "/quiz/", "/grades/"), "contents": e.contents} | some e in fx_entries]
	argo := [{"path": "dev/argocd/application-x.yaml", "contents": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"}}}]
	ents := array.concat(array.concat(fx_entries, other), argo)
	dirs := {dir_of(e.path) | some e in ents; bundle_member(e)}
	dirs == {"dev/plugins/acme-school/quiz", "dev/plugins/acme-school/grades"}
}

test_complete_labels_agrees_with_labels_complete if {
	no_env := object.remove(fx_labels, ["plugins.adapstory.io/env"])
	empty_name := object.union(fx_labels, {"app.kubernetes.io/name": ""})
	numeric := object.union(fx_labels, {"app.kubernetes.io/name": 5})
	objs := [
		fx_quota,
		json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels", "value": no_env}]),
		json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels", "value": empty_name}]),
		json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels", "value": numeric}]),
		json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels", "value": ["a"]}]),
		json.patch(fx_quota, [{"op": "replace", "path": "/metadata/labels", "value": "a"}]),
		json.patch(fx_quota, [{"op": "remove", "path": "/metadata/labels"}]),
	]
	ents := [fx_entry("resourcequota-quiz.yaml", o) | some o in objs]
	complete_labels(ents, numbers.range(0, count(ents) - 1)) == {0, 3}
	complete_labels(ents, numbers.range(0, count(ents) - 1)) == {i | some i; o := objs[i]; labels_complete(object_labels(o), required_labels, required_label_count)}
}

test_objects_outside_the_namespace_are_the_kafka_rbac_and_vault_ones if {
	outside_namespace({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic"})
	outside_namespace({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"})
	outside_namespace({"apiVersion": "redhatcop.redhat.io/v1alpha1", "kind": "Policy"})
	not outside_namespace(fx_quota)
	not outside_namespace(fx_role)
}
