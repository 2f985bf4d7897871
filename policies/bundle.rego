# What every bundle must hold and whom it belongs to: the required labels, nothing cluster-wide,
# a Namespace that enforces pod security "restricted" (per object); a ResourceQuota, a LimitRange,
# one Namespace that every object lives in, and identity labels that agree with bundle.json and
# the bundle's folder (across objects).
package main

import rego.v1

deny contains msg if {
	some i in input_index.objects
	not labelled_entries[i]
	some msg in check_required_labels(input[i])
}

deny contains msg if {
	some i in pod_entries
	s := input[i]
	template := pod_template(s.contents)
	not labels_complete(object_labels(template), required_pod_labels, required_pod_label_count)
	some msg in check_required_labels(s)
}

deny contains msg if {
	some i in input_index.kinds.Namespace
	s := input[i]
	some msg in check_pod_security_label(s)
}

deny contains msg if {
	some i in cluster_scoped_entries
	s := input[i]
	some msg in check_cluster_scoped(s)
}

deny contains msg if {
	combined
	some i, s in input
	not input_index.objects[i]
	some msg in check_file_shape(s)
}

deny contains msg if {
	some b in bundles
	not bundle_has_quota(input, b)
	some msg in check_bundle_quota(input, b)
}

deny contains msg if {
	some b in bundles
	not bundle_has_limit_range(input, b)
	some msg in check_bundle_limit_range(input, b)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_namespace(input, b)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_identity(input, b)
}

basics_deny(s) := check_object_basics(s) if bundle_object(s.contents)

basics_deny(s) := check_file_shape(s) if not bundle_object(s.contents)

check_object_basics(s) := (check_required_labels(s) | check_pod_security_label(s)) | check_cluster_scoped(s)


# ---------------------------------------------------------------- required labels (per object)

required_labels := {
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/managed-by",
	"plugins.adapstory.io/tenant",
	"plugins.adapstory.io/plugin",
	"plugins.adapstory.io/env",
}

# Labels a workload's pods carry too (selectors, telemetry and the budget gateway read them).
required_pod_labels := {
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"plugins.adapstory.io/tenant",
	"plugins.adapstory.io/plugin",
	"plugins.adapstory.io/env",
}

# Every wanted label is there and not empty (one filter of the small labels map).
labels_complete(labels, wanted, n) if {
	present := object.filter(labels, wanted)
	count(present) == n
	not "" in present
}

required_label_count := count(required_labels)

required_pod_label_count := count(required_pod_labels)

# The entries (of `objects`, indexes of `ents`) whose labels are complete: labels_complete on
# required_labels, written out (one pass, no call per object). The gate applies it once per bundle.
labelled_entries := complete_labels(input, input_index.objects) if combined

complete_labels(ents, objects) := {i |
	some i in objects
	labels := ents[i].contents.metadata.labels
	labels["app.kubernetes.io/name"] != "" # undefined unless labels is an object
	labels["app.kubernetes.io/instance"] != ""
	labels["app.kubernetes.io/managed-by"] != ""
	labels["plugins.adapstory.io/tenant"] != ""
	labels["plugins.adapstory.io/plugin"] != ""
	labels["plugins.adapstory.io/env"] != ""
}

missing_labels(labels, wanted) := sort([l | some l in wanted; not non_empty_string(object.get(labels, l, ""))])

check_required_labels(s) := {finding(s, "required-labels", words(["missing label(s) ", concat(", ", missing)])) |
	not labels_complete(object_labels(s.contents), required_labels, required_label_count)
	missing := missing_labels(object_labels(s.contents), required_labels)
} | {finding(s, "required-labels", words(["pod template is missing label(s) ", concat(", ", missing)])) |
	template := pod_template(s.contents)
	not labels_complete(object_labels(template), required_pod_labels, required_pod_label_count)
	missing := missing_labels(object_labels(template), required_pod_labels)
}

object_labels(obj) := l if {
	l := obj.metadata.labels
	is_object(l)
} else := {}

# ---------------------------------------------------------------- namespace, scope, files (per object)

check_pod_security_label(s) := {finding(s, "namespace-pod-security", "the namespace must enforce the restricted Pod Security Standard: set label pod-security.kubernetes.io/enforce: restricted") |
	s.contents.kind == "Namespace"
	label(s.contents, "pod-security.kubernetes.io/enforce") != "restricted"
}

cluster_scoped_kinds := {
	"APIService", "CertificateSigningRequest", "ClusterExternalSecret", "ClusterIssuer", "ClusterPolicy",
	"ClusterRole", "ClusterRoleBinding", "ClusterSecretStore", "CustomResourceDefinition", "IngressClass",
	"MutatingWebhookConfiguration", "Node", "PersistentVolume", "PriorityClass", "RuntimeClass",
	"StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	"ValidatingWebhookConfiguration",
}

check_cluster_scoped(s) := {finding(s, "no-cluster-scoped", words(["a plugin bundle may not hold the cluster-wide kind ", s.contents.kind])) |
	s.contents.kind in cluster_scoped_kinds
}

# With --combine, a file with several YAML documents arrives as one array: the per-object rules
# would not see its objects, so it is refused (the renderer writes one object per file).
check_file_shape(s) := {finding(s, "one-object-per-file", "the file holds several documents: write one object per file") |
	s.path != ""
	s.contents[0]
}

# ---------------------------------------------------------------- quota and limits (per bundle)

check_bundle_quota(ents, b) := {finding(anchor(ents, b), "resource-quota", "the bundle has no ResourceQuota with spec.hard limits") |
	not bundle_has_quota(ents, b)
}

bundle_has_quota(ents, b) if {
	some i in of_kind(ents, b, "ResourceQuota")
	count(items_of(ents[i].contents.spec.hard)) > 0
}

check_bundle_limit_range(ents, b) := {finding(anchor(ents, b), "limit-range", "the bundle has no LimitRange with limits for type Container") |
	not bundle_has_limit_range(ents, b)
}

bundle_has_limit_range(ents, b) if {
	some i in of_kind(ents, b, "LimitRange")
	some limit in items_of(ents[i].contents.spec.limits)
	limit.type == "Container"
}

# ---------------------------------------------------------------- namespace (per bundle)

# KafkaUsers live in the Kafka cluster's namespace (Strimzi's User Operator reads them there).
outside_namespace_kinds := {"Namespace", "KafkaUser"}

# Objects that live outside the bundle's namespace; kafka.rego and secrets.rego check where:
# KafkaTopics and the Kafka secret's RBAC in the Kafka namespace, vault-config-operator's objects
# in the platform-admin namespace. (One definition: regorus plans a function's parameters per
# module, so the alternatives live together here.)
outside_namespace(obj) if obj.kind in {"KafkaUser", "KafkaTopic"}
else := true if rbac_object(obj)
else := true if vault_config_object(obj)

# The bundle's one Namespace entry (undefined unless there is exactly one).
the_namespace(ents, b) := b.namespace[0]

check_bundle_namespace(ents, b) := {finding(anchor(ents, b), "bundle-namespace", words(["the bundle holds ", count(of_kind(ents, b, "Namespace")), " Namespace objects, not exactly one"])) |
	count(of_kind(ents, b, "Namespace")) != 1
} | {finding(ents[i], "bundle-namespace", words(["is in namespace '", namespace_of(ents[i].contents), "', not the bundle's namespace ", ns])) |
	ns := name_of(the_namespace(ents, b).contents)
	outside_kinds := outside_namespace_kinds # one lookup of the rule, not one per member
	some i in b.members
	not ents[i].contents.metadata.namespace == ns
	not ents[i].contents.kind in outside_kinds
	not outside_namespace(ents[i].contents)
} | {finding(nsitem, "bundle-namespace", words(["the bundle's namespace is ", name_of(nsitem.contents), ", but bundle.json's isolation.namespace is ", want])) |
	nsitem := the_namespace(ents, b)
	want := isolation_field(ents, b, "namespace")
	name_of(nsitem.contents) != want
}

# ---------------------------------------------------------------- identity (per bundle)

identity_label_keys := {label_tenant, label_plugin, label_env}

check_bundle_identity(ents, b) := {finding(anchor(ents, b), "bundle-identity", "cannot tell whom the bundle belongs to: bundle.json (tenant, plugin, env) and the Namespace's identity labels are missing") |
	b.id == {}
} | {finding(ents[i], "bundle-identity", words(["label ", key, " is '", value, "', but the bundle's is '", b.labels[key], "'"])) |
	b.id != {}
	keys := identity_label_keys # one lookup of the rule, not one per member
	some i in b.members
	labels := ents[i].contents.metadata.labels
	some key in keys
	value := labels[key] # undefined unless labels is an object
	value != b.labels[key]
} | {finding(anchor(ents, b), "bundle-identity", words(["the bundle of ", want, " lies in folder '", b.dir, "'"])) |
	b.id != {}
	want := concat("/", [b.id.env, "plugins", b.id.tenant, b.id.plugin])
	not in_folder(b.dir, want)
}

identity_matches(labels, id) if {
	labels["plugins.adapstory.io/tenant"] == id.tenant
	labels["plugins.adapstory.io/plugin"] == id.plugin
	labels["plugins.adapstory.io/env"] == id.env
}

in_folder(dir, want) if dir == want

in_folder(dir, want) if endswith(dir, concat("", ["/", want]))
