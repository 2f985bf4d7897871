# What every bundle must hold and whom it belongs to: a ResourceQuota and a LimitRange, one
# Namespace (pod security "restricted") that every object lives in, identity labels that agree
# with bundle.json and the bundle's folder, the required labels, and nothing cluster-wide.
package main

import rego.v1

deny contains msg if {
	some s in subjects
	some msg in check_object_basics(s)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_basics(b)
}

check_object_basics(s) := ((check_required_labels(s) | check_pod_security_label(s)) | check_cluster_scoped(s))

check_bundle_basics(b) := ((check_bundle_quota(b) | check_bundle_limit_range(b)) | check_bundle_namespace(b)) | check_bundle_identity(b)

# ---------------------------------------------------------------- required labels (per object)

required_labels := [
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/managed-by",
	"plugins.adapstory.io/tenant",
	"plugins.adapstory.io/plugin",
	"plugins.adapstory.io/env",
]

# Labels a workload's pods must carry too (selectors, telemetry and the budget gateway read them).
required_pod_labels := [
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"plugins.adapstory.io/tenant",
	"plugins.adapstory.io/plugin",
	"plugins.adapstory.io/env",
]

missing_labels(labels, wanted) := [l |
	some l in wanted
	not non_empty_string(labels[l])
]

non_empty_string(x) if {
	is_string(x)
	x != ""
}

check_required_labels(s) := {violation(s, "required-labels", words(["missing label(s) ", concat(", ", missing)])) |
	bundle_object(s.obj)
	missing := missing_labels(labels_of(s.obj), required_labels)
	count(missing) > 0
} | {violation(s, "required-labels", words(["pod template is missing label(s) ", concat(", ", missing)])) |
	bundle_object(s.obj)
	template := pod_template(s.obj)
	missing := missing_labels(labels_of(template), required_pod_labels)
	count(missing) > 0
}

pod_template(obj) := obj.spec.template if obj.kind in controller_kinds

pod_template(obj) := obj.spec.jobTemplate.spec.template if obj.kind == "CronJob"

# ---------------------------------------------------------------- namespace and scope (per object)

check_pod_security_label(s) := {violation(s, "namespace-pod-security", "the namespace must enforce the restricted Pod Security Standard: set label pod-security.kubernetes.io/enforce: restricted") |
	s.obj.kind == "Namespace"
	object.get(labels_of(s.obj), "pod-security.kubernetes.io/enforce", "") != "restricted"
}

cluster_scoped_kinds := {
	"APIService", "CertificateSigningRequest", "ClusterExternalSecret", "ClusterIssuer", "ClusterPolicy",
	"ClusterRole", "ClusterRoleBinding", "ClusterSecretStore", "CustomResourceDefinition", "IngressClass",
	"MutatingWebhookConfiguration", "Node", "PersistentVolume", "PriorityClass", "RuntimeClass",
	"StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	"ValidatingWebhookConfiguration",
}

check_cluster_scoped(s) := {violation(s, "no-cluster-scoped", words(["a plugin bundle may not hold the cluster-wide kind ", s.obj.kind])) |
	bundle_object(s.obj)
	s.obj.kind in cluster_scoped_kinds
}

# ---------------------------------------------------------------- quota and limits (per bundle)

check_bundle_quota(b) := {violation(anchor(b), "resource-quota", "the bundle has no ResourceQuota with spec.hard limits") |
	not bundle_has_quota(b)
}

bundle_has_quota(b) if {
	some it in of_kind(b, "ResourceQuota")
	count(obj_at(obj_at(it.obj, "spec"), "hard")) > 0
}

check_bundle_limit_range(b) := {violation(anchor(b), "limit-range", "the bundle has no LimitRange with limits for type Container") |
	not bundle_has_limit_range(b)
}

bundle_has_limit_range(b) if {
	some it in of_kind(b, "LimitRange")
	some limit in list_at(obj_at(it.obj, "spec"), "limits")
	limit.type == "Container"
}

# ---------------------------------------------------------------- namespace (per bundle)

# KafkaUsers live in the Kafka cluster's namespace (Strimzi's User Operator reads them there).
outside_namespace_kinds := {"Namespace", "KafkaUser"}

check_bundle_namespace(b) := {violation(anchor(b), "bundle-namespace", words(["the bundle holds ", count(of_kind(b, "Namespace")), " Namespace objects, not exactly one"])) |
	count(of_kind(b, "Namespace")) != 1
} | {violation(it, "bundle-namespace", words(["is in namespace '", namespace_of(it.obj), "', not the bundle's namespace ", ns])) |
	nsitem := the_namespace(b)
	ns := name_of(nsitem.obj)
	some it in b.items
	bundle_object(it.obj)
	not it.obj.kind in outside_namespace_kinds
	namespace_of(it.obj) != ns
} | {violation(nsitem, "bundle-namespace", words(["the bundle's namespace is ", name_of(nsitem.obj), ", but bundle.json says ", want])) |
	nsitem := the_namespace(b)
	want := isolation_field(b, "namespace")
	name_of(nsitem.obj) != want
}

# The bundle's one Namespace object (undefined unless there is exactly one).
the_namespace(b) := nss[0] if {
	nss := of_kind(b, "Namespace")
	count(nss) == 1
}

# ---------------------------------------------------------------- identity (per bundle)

identity_labels := {"tenant": label_tenant, "plugin": label_plugin, "env": label_env}

check_bundle_identity(b) := {violation(anchor(b), "bundle-identity", "cannot tell whom the bundle belongs to: bundle.json (tenant, plugin, env) and the Namespace's labels are missing") |
	count(b.id) == 0
} | {violation(it, "bundle-identity", words(["label ", label, " is '", value, "', but the bundle belongs to ", key, " ", b.id[key]])) |
	some it in b.items
	bundle_object(it.obj)
	some key
	label := identity_labels[key]
	value := labels_of(it.obj)[label]
	value != b.id[key]
} | {violation(anchor(b), "bundle-identity", words(["the bundle of ", want, " lies in folder '", b.dir, "'"])) |
	count(b.id) > 0
	want := concat("/", [b.id.env, "plugins", b.id.tenant, b.id.plugin])
	not in_folder(b.dir, want)
}

in_folder(dir, want) if dir == want

in_folder(dir, want) if endswith(dir, concat("", ["/", want]))
