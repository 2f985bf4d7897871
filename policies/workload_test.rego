package main

import rego.v1

test_a_secure_deployment_passes_every_workload_check if {
	count(check_workload(subject(fx_deployment))) == 0
	count(check_workload_warnings(subject(fx_deployment))) == 0
}

test_a_container_that_may_run_as_root_is_denied if {
	d := json.patch(fx_deployment, [
		{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/runAsNonRoot", "value": false},
		{"op": "remove", "path": "/spec/template/spec/securityContext/runAsNonRoot"},
	])
	rules_of(check_workload(subject(d))) == {"run-as-non-root"}
}

test_run_as_non_root_on_the_pod_covers_its_containers if {
	d := json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/runAsNonRoot"}])
	count(check_run_as_non_root(subject(d))) == 0
}

test_a_container_setting_overrides_the_pod_setting if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/runAsNonRoot", "value": false}])
	"run-as-non-root" in rules_of(check_run_as_non_root(subject(d)))
}

test_uid_0_is_denied_even_with_run_as_non_root if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/securityContext/runAsUser", "value": 0}])
	rules_of(check_workload(subject(d))) == {"run-as-non-root"}
}

test_privilege_escalation_is_denied if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation", "value": true}])
	rules_of(check_workload(subject(d))) == {"no-privilege-escalation"}
}

test_privilege_escalation_must_be_switched_off_explicitly if {
	d := json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation"}])
	rules_of(check_workload(subject(d))) == {"no-privilege-escalation"}
}

test_a_privileged_container_is_denied if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": true}])
	rules_of(check_workload(subject(d))) == {"no-privileged"}
}

test_added_capabilities_are_denied if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/capabilities/add", "value": ["SYS_ADMIN"]}])
	rules_of(check_workload(subject(d))) == {"capabilities"}
}

test_net_bind_service_may_be_added if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/capabilities/add", "value": ["NET_BIND_SERVICE"]}])
	count(check_workload(subject(d))) == 0
}

test_capabilities_must_drop_all if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/capabilities/drop", "value": ["NET_RAW"]}])
	rules_of(check_workload(subject(d))) == {"capabilities"}
}

test_host_network_is_denied if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/hostNetwork", "value": true}])
	rules_of(check_workload(subject(d))) == {"no-host-namespaces"}
}

test_host_pid_and_ipc_are_denied if {
	d := json.patch(fx_deployment, [
		{"op": "add", "path": "/spec/template/spec/hostPID", "value": true},
		{"op": "add", "path": "/spec/template/spec/hostIPC", "value": true},
	])
	count(check_host_namespaces(subject(d))) == 2
}

test_a_host_port_is_denied if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/containers/0/ports/0/hostPort", "value": 8080}])
	rules_of(check_workload(subject(d))) == {"no-host-ports"}
}

test_a_host_path_volume_is_denied if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "root", "hostPath": {"path": "/"}}}])
	rules_of(check_workload(subject(d))) == {"no-host-path"}
}

test_a_container_without_seccomp_profile_is_denied if {
	d := json.patch(fx_deployment, [
		{"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/seccompProfile"},
		{"op": "remove", "path": "/spec/template/spec/securityContext/seccompProfile"},
	])
	rules_of(check_workload(subject(d))) == {"seccomp-profile"}
}

test_an_unconfined_seccomp_profile_is_denied if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/seccompProfile/type", "value": "Unconfined"}])
	rules_of(check_workload(subject(d))) == {"seccomp-profile"}
}

test_an_image_by_tag_is_denied if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "registry.example.org/acme/quiz:1.0.0"}])
	rules_of(check_workload(subject(d))) == {"image-digest"}
}

test_an_image_with_a_tag_and_a_digest_passes if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": concat("@", ["registry.example.org/acme/quiz:1.0.0", fx_digest])}])
	count(check_image_digest(subject(d))) == 0
}

test_a_short_digest_is_denied if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "registry.example.org/acme/quiz@sha256:5f02"}])
	"image-digest" in rules_of(check_image_digest(subject(d)))
}

test_a_container_without_an_image_is_denied if {
	d := json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template/spec/containers/0/image"}])
	"image-digest" in rules_of(check_image_digest(subject(d)))
}

test_init_containers_are_checked_too if {
	bad := json.patch(fx_container, [
		{"op": "replace", "path": "/name", "value": "init"},
		{"op": "replace", "path": "/securityContext/privileged", "value": true},
	])
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/initContainers", "value": [bad]}])
	findings := check_privileged(subject(d))
	count(findings) == 1
	some f in findings
	contains(f, "container init is privileged")
}

test_pods_and_cronjobs_are_checked_too if {
	pod := {"apiVersion": "v1", "kind": "Pod", "metadata": fx_meta("p"), "spec": json.patch(fx_deployment.spec.template.spec, [{"op": "add", "path": "/hostNetwork", "value": true}])}
	cron := {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": fx_meta("c"), "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": fx_labels}, "spec": json.patch(fx_deployment.spec.template.spec, [{"op": "add", "path": "/hostPID", "value": true}])}}}}}
	rules_of(check_workload(subject(pod))) == {"no-host-namespaces"}
	rules_of(check_workload(subject(cron))) == {"no-host-namespaces"}
}

test_objects_without_pods_are_not_workloads if {
	count(check_workload(subject(fx_quota))) == 0
}

test_a_writable_root_filesystem_is_a_warning if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem", "value": false}])
	rules_of(check_workload_warnings(subject(d))) == {"read-only-root-filesystem"}
	count(check_workload(subject(d))) == 0
}

test_a_container_without_limits_is_a_warning if {
	d := json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template/spec/containers/0/resources/limits"}])
	rules_of(check_workload_warnings(subject(d))) == {"resource-limits"}
}

test_a_workload_finding_names_the_rule_the_object_and_the_fix if {
	d := json.patch(fx_deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": true}])
	check_privileged(subject(d)) == {"no-privileged: Deployment/quiz: container plugin is privileged: remove securityContext.privileged"}
}

test_the_pod_view_holds_the_spec_and_every_container if {
	pv := pod_view(fx_deployment)
	pv.spec == fx_deployment.spec.template.spec
	pv.containers == containers(fx_deployment.spec.template.spec)
	count(pv.containers) > 0
	bare := pod_view(json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template"}]))
	not bare.spec
	bare.containers == []
	count(check_workload(subject(json.patch(fx_deployment, [{"op": "remove", "path": "/spec/template"}])))) == 0
}

test_every_workload_kind_has_its_pod_template if {
	t := {"spec": {"containers": []}}
	every kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"] {
		pod_template({"kind": kind, "spec": {"template": t}}) == t
	}
	pod_template({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": t}}}}) == t
	pod_spec({"kind": "Pod", "spec": t.spec}) == t.spec
	not pod_template({"kind": "Service", "spec": {"template": t}})
}

# ---------------------------------------------------------------- the deny rule's fast path

# Edits that each break one check of check_workload (one per finding it can report).
workload_edits := [
	[{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/runAsNonRoot", "value": false}],
	[{"op": "add", "path": "/spec/template/spec/securityContext/runAsUser", "value": 0}],
	[{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation", "value": true}],
	[{"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation"}],
	[{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": true}],
	[{"op": "remove", "path": "/spec/template/spec/containers/0/securityContext/capabilities"}],
	[{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/capabilities/add", "value": ["SYS_ADMIN"]}],
	[{"op": "add", "path": "/spec/template/spec/containers/0/ports/0/hostPort", "value": 8080}],
	[{"op": "add", "path": "/spec/template/spec/hostNetwork", "value": true}],
	[{"op": "add", "path": "/spec/template/spec/hostPID", "value": true}],
	[{"op": "add", "path": "/spec/template/spec/hostIPC", "value": true}],
	[{"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "node", "hostPath": {"path": "/"}}}],
	[
		{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/seccompProfile/type", "value": "Unconfined"},
		{"op": "remove", "path": "/spec/template/spec/securityContext/seccompProfile"},
	],
	[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "registry.example.org/acme/quiz:1.0"}],
	[{"op": "remove", "path": "/spec/template/spec/containers/0/image"}],
	[{"op": "add", "path": "/spec/template/spec/initContainers", "value": [{"name": "init", "image": "busybox"}]}],
]

# workload_clean holds exactly when check_workload finds nothing (on these workloads).
workload_fast_path_agrees(d) if {
	workload_clean(d)
	count(check_workload(subject(d))) == 0
}

workload_fast_path_agrees(d) if {
	not workload_clean(d)
	count(check_workload(subject(d))) > 0
}

test_a_secure_deployment_is_clean if {
	workload_clean(fx_deployment)
}

test_a_workload_with_any_finding_is_not_clean if {
	disagree := [n | some n; edit := workload_edits[n]; d := json.patch(fx_deployment, edit); not workload_fast_path_agrees(d)]
	disagree == []
}

test_an_added_net_bind_service_capability_keeps_a_workload_clean if {
	d := json.patch(fx_deployment, [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/capabilities/add", "value": ["NET_BIND_SERVICE"]}])
	workload_clean(d)
	count(check_workload(subject(d))) == 0
}

test_an_object_without_a_pod_spec_is_not_clean if {
	not workload_clean(fx_namespace)
}

test_an_image_pinned_plainly_by_digest_is_pinned if {
	image := concat("", ["ghcr.io/acme/quiz:1.0.0@", fx_digest])
	pinned_plainly(image)
	pinned_by_digest(image)
}

test_an_image_not_pinned_plainly_takes_the_regular_expression if {
	images := [
		"ghcr.io/acme/quiz:1.0.0",
		concat("", ["ghcr.io/acme/quiz@", fx_digest, "0"]),
		concat("", ["ghcr.io/acme/quiz@x@", fx_digest]),
		concat("", ["ghcr.io/acme/quiz @", fx_digest]),
		concat("", ["@", fx_digest]),
		"ghcr.io/acme/quiz@sha256:5F020177D7EE8C6F4B827A5473CE489C3D5C7686C5DE7CBC1D51D190624F95ED",
		5,
	]
	[i | some i in images; pinned_plainly(i)] == []
	[i | some i in images; pinned_by_digest(i)] == []
}
