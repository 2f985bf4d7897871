# Fixtures of the policy unit tests: one compliant bundle of tenant acme-school's plugin quiz, as
# the renderer writes it, and helpers to break it. Loaded with the tests only (conftest verify,
# renderer.policy.run_policy_unit_tests), never by the policy gate itself.
#
# The tests call the check_* functions with a subject or a bundle rather than
# `deny with input as ...`, which crashes rego-cpp (see lib.rego).
package main

import rego.v1

fx_tenant := "acme-school"

fx_plugin := "quiz"

fx_env := "dev"

fx_ns := "plugin-acme-school-quiz"

fx_dir := "dev/plugins/acme-school/quiz"

fx_digest := "sha256:5f020177d7ee8c6f4b827a5473ce489c3d5c7686c5de7cbc1d51d190624f95ed"

fx_labels := {
	"app.kubernetes.io/name": "quiz",
	"app.kubernetes.io/instance": "plugin-acme-school-quiz",
	"app.kubernetes.io/managed-by": "plugin-bundle-renderer",
	"plugins.adapstory.io/tenant": "acme-school",
	"plugins.adapstory.io/plugin": "quiz",
	"plugins.adapstory.io/env": "dev",
}

fx_meta(name) := {"name": name, "namespace": "plugin-acme-school-quiz", "labels": fx_labels}

fx_container := {
	"name": "plugin",
	"image": concat("@", ["registry.example.org/acme/quiz", fx_digest]),
	"ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
	"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
	"lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]},
		"privileged": false,
		"readOnlyRootFilesystem": true,
		"runAsNonRoot": true,
		"seccompProfile": {"type": "RuntimeDefault"},
	},
}

fx_deployment := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": fx_meta("quiz"),
	"spec": {
		"selector": {"matchLabels": {"app.kubernetes.io/name": "quiz"}},
		"template": {
			"metadata": {"labels": fx_labels},
			"spec": {
				"automountServiceAccountToken": false,
				"securityContext": {
					"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"},
					"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
				},
				"terminationGracePeriodSeconds": 30,
				"containers": [fx_container],
				"volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
			},
		},
	},
}

fx_namespace := {
	"apiVersion": "v1",
	"kind": "Namespace",
	"metadata": {
		"name": "plugin-acme-school-quiz",
		"labels": object.union(fx_labels, {"pod-security.kubernetes.io/enforce": "restricted"}),
	},
}

fx_quota := {
	"apiVersion": "v1",
	"kind": "ResourceQuota",
	"metadata": fx_meta("quiz"),
	"spec": {"hard": {"limits.cpu": "2", "limits.memory": "2Gi", "pods": "3"}},
}

fx_limit_range := {
	"apiVersion": "v1",
	"kind": "LimitRange",
	"metadata": fx_meta("quiz"),
	"spec": {"limits": [{"type": "Container", "default": {"cpu": "200m", "memory": "256Mi"}}]},
}

fx_default_deny := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "NetworkPolicy",
	"metadata": fx_meta("default-deny"),
	"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}

fx_network_policy := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "NetworkPolicy",
	"metadata": fx_meta("quiz"),
	"spec": {
		"podSelector": {"matchLabels": {"app.kubernetes.io/name": "quiz"}},
		"policyTypes": ["Ingress", "Egress"],
		"egress": [
			{
				"ports": [{"port": 53, "protocol": "UDP"}],
				"to": [{
					"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
					"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
				}],
			},
			{
				"ports": [{"port": 9092, "protocol": "TCP"}],
				"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}],
			},
		],
	},
}

fx_external_secret := {
	"apiVersion": "external-secrets.io/v1",
	"kind": "ExternalSecret",
	"metadata": fx_meta("quiz"),
	"spec": {
		"secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-plugins"},
		"target": {"name": "quiz-secrets"},
		"data": [{"secretKey": "openai-api-key", "remoteRef": {"key": "adapstory/plugins/quiz/acme-school/openai"}}],
	},
}

fx_kafka_user := {
	"apiVersion": "kafka.strimzi.io/v1",
	"kind": "KafkaUser",
	"metadata": {
		"name": "plugin-acme-school-quiz",
		"namespace": "kafka",
		"labels": object.union(fx_labels, {"strimzi.io/cluster": "platform-kafka"}),
		"annotations": {
			"plugins.adapstory.io/topic-prefix": "tenant.acme-school.",
			"plugins.adapstory.io/group-prefix": "tenant.acme-school.quiz.",
		},
	},
	"spec": {
		"authentication": {"type": "scram-sha-512"},
		"authorization": {
			"type": "simple",
			"acls": [
				{"operations": ["Read"], "resource": {"type": "group", "name": "tenant.acme-school.quiz.", "patternType": "prefix"}},
				{"operations": ["Describe", "Read"], "resource": {"type": "topic", "name": "tenant.acme-school.lesson.published", "patternType": "literal"}},
				{"operations": ["Describe", "Write"], "resource": {"type": "topic", "name": "tenant.acme-school.quiz.generated"}},
			],
		},
	},
}

fx_sql_api := "postgresql.sql.m.crossplane.io/v1alpha1"

fx_schema := {
	"apiVersion": fx_sql_api,
	"kind": "Schema",
	"metadata": object.union(fx_meta("quiz"), {"annotations": {"crossplane.io/external-name": "quiz"}}),
	"spec": {"forProvider": {"database": "tenant_acme_school", "roleRef": {"name": "quiz"}}},
}

fx_role := {
	"apiVersion": fx_sql_api,
	"kind": "Role",
	"metadata": object.union(fx_meta("quiz"), {"annotations": {"crossplane.io/external-name": "plugin_quiz_acme_school"}}),
	"spec": {"forProvider": {"privileges": {"login": true, "superUser": false, "createDb": false, "createRole": false}}},
}

fx_grant := {
	"apiVersion": fx_sql_api,
	"kind": "Grant",
	"metadata": fx_meta("quiz-schema"),
	"spec": {"forProvider": {
		"database": "tenant_acme_school",
		"privileges": ["USAGE", "CREATE"],
		"roleRef": {"name": "quiz"},
		"schemaRef": {"name": "quiz"},
	}},
}

fx_bundle_json := {
	"tenant": "acme-school",
	"plugin": "quiz",
	"env": "dev",
	"pluginVersion": "1.0.0",
	"isolation": {
		"namespace": "plugin-acme-school-quiz",
		"vaultPrefix": "adapstory/plugins/quiz/acme-school/",
		"topicPrefix": "tenant.acme-school.",
		"groupPrefix": "tenant.acme-school.quiz.",
		"database": "tenant_acme_school",
		"schema": "quiz",
		"dbRole": "plugin_quiz_acme_school",
	},
}

fx_entry(file, obj) := {"path": concat("/", [fx_dir, file]), "contents": obj}

fx_entries := [
	fx_entry("bundle.json", fx_bundle_json),
	fx_entry("deployment-quiz.yaml", fx_deployment),
	fx_entry("externalsecret-quiz.yaml", fx_external_secret),
	fx_entry("grant-quiz-schema.yaml", fx_grant),
	fx_entry("kafkauser-plugin-acme-school-quiz.yaml", fx_kafka_user),
	fx_entry("limitrange-quiz.yaml", fx_limit_range),
	fx_entry("namespace-plugin-acme-school-quiz.yaml", fx_namespace),
	fx_entry("networkpolicy-default-deny.yaml", fx_default_deny),
	fx_entry("networkpolicy-quiz.yaml", fx_network_policy),
	fx_entry("resourcequota-quiz.yaml", fx_quota),
	fx_entry("role-quiz.yaml", fx_role),
	fx_entry("schema-quiz.yaml", fx_schema),
]

# The rule ids of a set of findings ("<rule-id>: ...").
rules_of(findings) := {split(f, ": ")[0] | some f in findings}

# The entries without one file / with one file's object replaced.
fx_without(ents, file) := [e | some e in ents; e.path != concat("/", [fx_dir, file])]

fx_replacing(ents, file, obj) := array.concat(fx_without(ents, file), [fx_entry(file, obj)])

# Every finding of every check, on one object (as conftest without --combine) or a bundle.
object_findings(obj) := object_deny(subject(obj))

bundle_findings(ents) := (((((check_bundle_default_deny(ents, b) | check_bundle_quota(ents, b)) | check_bundle_limit_range(ents, b)) | check_bundle_namespace(ents, b)) | check_bundle_identity(ents, b)) | check_bundle_isolation(ents, b)) if {
	b := bundle_of(ents)
}

# Every finding on a bundle: the per-object checks of each object and the cross-object checks.
all_findings(ents) := {f | some e in ents; some f in object_deny(e)} | bundle_findings(ents)
