package main

import rego.v1

# A compliant Deployment and its PodDisruptionBudget, as the renderer writes them.
pod_fx_deployment := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": fx_meta("quiz"),
	"spec": {
		"selector": {"matchLabels": {"app.kubernetes.io/name": "quiz"}},
		"template": {
			"metadata": {"labels": fx_labels},
			"spec": {
				"terminationGracePeriodSeconds": 30,
				"securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
				"containers": [{
					"name": "plugin",
					"image": "registry.example.org/acme/quiz@sha256:5f020177d7ee8c6f4b827a5473ce489c3d5c7686c5de7cbc1d51d190624f95ed",
					"lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
					"securityContext": {"runAsNonRoot": true},
				}],
			},
		},
	},
}

pod_fx_budget := {
	"apiVersion": "policy/v1",
	"kind": "PodDisruptionBudget",
	"metadata": fx_meta("quiz"),
	"spec": {
		"maxUnavailable": 1,
		"unhealthyPodEvictionPolicy": "AlwaysAllow",
		"selector": {"matchLabels": {"app.kubernetes.io/name": "quiz", "app.kubernetes.io/instance": "plugin-acme-school-quiz"}},
	},
}

pod_fx_entries := [
	{"path": concat("/", [fx_dir, "deployment-quiz.yaml"]), "contents": pod_fx_deployment},
	{"path": concat("/", [fx_dir, "poddisruptionbudget-quiz.yaml"]), "contents": pod_fx_budget},
]

pod_fx_patched(patch) := json.patch(pod_fx_deployment, patch)

budget_patched(patch) := json.patch(pod_fx_budget, patch)

# ---------------------------------------------------------------- high UID

test_a_pod_with_high_uid_gid_and_fs_group_passes if {
	count(pod_deny(subject(pod_fx_deployment))) == 0
	count(pod_deny(subject(pod_fx_budget))) == 0
}

test_a_low_pod_uid_is_denied if {
	d := pod_fx_patched([{"op": "replace", "path": "/spec/template/spec/securityContext/runAsUser", "value": 1000}])
	rules_of(pod_deny(subject(d))) == {"high-uid"}
	some f in check_high_uid(subject(d))
	contains(f, "runAsUser 1000")
}

test_a_missing_uid_is_denied if {
	d := pod_fx_patched([{"op": "remove", "path": "/spec/template/spec/securityContext/runAsUser"}])
	rules_of(pod_deny(subject(d))) == {"high-uid"}
}

test_a_missing_group_is_denied if {
	d := pod_fx_patched([{"op": "remove", "path": "/spec/template/spec/securityContext/runAsGroup"}])
	rules_of(check_high_uid(subject(d))) == {"high-uid"}
}

test_a_missing_fs_group_is_denied if {
	d := pod_fx_patched([{"op": "remove", "path": "/spec/template/spec/securityContext/fsGroup"}])
	some f in check_high_uid(subject(d))
	contains(f, "fsGroup")
}

test_a_container_uid_overrides_the_pods if {
	d := pod_fx_patched([{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/runAsUser", "value": 999}])
	count(check_high_uid(subject(d))) == 1
}

test_a_high_container_uid_covers_a_pod_without_one if {
	d := pod_fx_patched([
		{"op": "remove", "path": "/spec/template/spec/securityContext/runAsUser"},
		{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/runAsUser", "value": 20000},
	])
	count(check_high_uid(subject(d))) == 0
}

test_a_uid_given_as_a_string_is_denied if {
	d := pod_fx_patched([{"op": "replace", "path": "/spec/template/spec/securityContext/runAsUser", "value": "10001"}])
	rules_of(check_high_uid(subject(d))) == {"high-uid"}
}

# ---------------------------------------------------------------- graceful shutdown

test_a_container_without_pre_stop_is_denied if {
	d := pod_fx_patched([{"op": "remove", "path": "/spec/template/spec/containers/0/lifecycle"}])
	rules_of(pod_deny(subject(d))) == {"graceful-shutdown"}
}

test_a_pre_stop_delay_as_long_as_the_grace_period_is_denied if {
	d := pod_fx_patched([{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop/sleep/seconds", "value": 30}])
	rules_of(check_graceful_shutdown(subject(d))) == {"graceful-shutdown"}
}

test_the_default_grace_period_of_30_seconds_applies_when_none_is_set if {
	d := pod_fx_patched([
		{"op": "remove", "path": "/spec/template/spec/terminationGracePeriodSeconds"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop/sleep/seconds", "value": 45},
	])
	rules_of(check_graceful_shutdown(subject(d))) == {"graceful-shutdown"}
	ok := pod_fx_patched([{"op": "remove", "path": "/spec/template/spec/terminationGracePeriodSeconds"}])
	count(check_graceful_shutdown(subject(ok))) == 0
}

test_an_exec_pre_stop_handler_counts if {
	d := pod_fx_patched([{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop", "value": {"exec": {"command": ["sleep", "5"]}}}])
	count(check_graceful_shutdown(subject(d))) == 0
}

# ---------------------------------------------------------------- PodDisruptionBudget

test_min_available_is_denied_because_it_blocks_drains if {
	p := budget_patched([
		{"op": "remove", "path": "/spec/maxUnavailable"},
		{"op": "add", "path": "/spec/minAvailable", "value": 1},
	])
	rules_of(pod_deny(subject(p))) == {"pod-disruption-budget"}
	count(check_disruption_budget(subject(p))) == 2
}

test_max_unavailable_zero_is_denied if {
	p := budget_patched([{"op": "replace", "path": "/spec/maxUnavailable", "value": 0}])
	rules_of(check_disruption_budget(subject(p))) == {"pod-disruption-budget"}
	q := budget_patched([{"op": "replace", "path": "/spec/maxUnavailable", "value": "0%"}])
	rules_of(check_disruption_budget(subject(q))) == {"pod-disruption-budget"}
	r := budget_patched([{"op": "remove", "path": "/spec/maxUnavailable"}])
	rules_of(check_disruption_budget(subject(r))) == {"pod-disruption-budget"}
}

test_a_percentage_that_lets_a_pod_go_passes if {
	p := budget_patched([{"op": "replace", "path": "/spec/maxUnavailable", "value": "50%"}])
	count(check_disruption_budget(subject(p))) == 0
}

test_an_unhealthy_pod_policy_other_than_always_allow_is_denied if {
	p := budget_patched([{"op": "replace", "path": "/spec/unhealthyPodEvictionPolicy", "value": "IfHealthyBudget"}])
	rules_of(check_disruption_budget(subject(p))) == {"pod-disruption-budget"}
	q := budget_patched([{"op": "remove", "path": "/spec/unhealthyPodEvictionPolicy"}])
	rules_of(check_disruption_budget(subject(q))) == {"pod-disruption-budget"}
}

test_a_budget_that_selects_nothing_is_denied if {
	p := budget_patched([{"op": "replace", "path": "/spec/selector", "value": {}}])
	rules_of(check_disruption_budget(subject(p))) == {"pod-disruption-budget"}
}

test_a_bundle_whose_deployment_has_a_budget_passes if {
	count(check_bundle_disruption_budget(pod_fx_entries, bundle_of(pod_fx_entries))) == 0
}

test_a_bundle_without_a_budget_is_denied_on_the_deployment if {
	ents := [pod_fx_entries[0]]
	findings := check_bundle_disruption_budget(ents, bundle_of(ents))
	rules_of(findings) == {"pod-disruption-budget"}
	some f in findings
	contains(f, "deployment-quiz.yaml: Deployment/quiz")
}

test_a_budget_selecting_other_pods_does_not_cover_the_deployment if {
	p := budget_patched([{"op": "replace", "path": "/spec/selector/matchLabels/app.kubernetes.io~1name", "value": "other"}])
	ents := [pod_fx_entries[0], {"path": pod_fx_entries[1].path, "contents": p}]
	rules_of(check_bundle_disruption_budget(ents, bundle_of(ents))) == {"pod-disruption-budget"}
}

# ---------------------------------------------------------------- the deny rule's fast path

# Edits that each break one check of check_pod_runtime.
pod_runtime_edits := [
	[{"op": "replace", "path": "/spec/template/spec/securityContext/runAsUser", "value": 1000}],
	[{"op": "remove", "path": "/spec/template/spec/securityContext/runAsGroup"}],
	[{"op": "remove", "path": "/spec/template/spec/securityContext/fsGroup"}],
	[{"op": "replace", "path": "/spec/template/spec/securityContext/runAsUser", "value": "10001"}],
	[{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/runAsUser", "value": 999}],
	[{"op": "remove", "path": "/spec/template/spec/containers/0/lifecycle"}],
	[{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop/sleep/seconds", "value": 30}],
	[
		{"op": "remove", "path": "/spec/template/spec/terminationGracePeriodSeconds"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop/sleep/seconds", "value": 45},
	],
]

# pod_runtime_clean holds exactly when check_pod_runtime finds nothing (on these workloads).
pod_fast_path_agrees(d) if {
	pod_runtime_clean(d)
	count(check_pod_runtime(subject(d))) == 0
}

pod_fast_path_agrees(d) if {
	not pod_runtime_clean(d)
	count(check_pod_runtime(subject(d))) > 0
}

test_a_workload_with_high_ids_and_a_short_pre_stop_is_clean if {
	pod_runtime_clean(pod_fx_deployment)
}

test_a_workload_with_any_runtime_finding_is_not_clean if {
	disagree := [n | some n; edit := pod_runtime_edits[n]; d := pod_fx_patched(edit); not pod_fast_path_agrees(d)]
	disagree == []
}

test_an_exec_pre_stop_handler_keeps_a_workload_clean if {
	d := pod_fx_patched([{"op": "replace", "path": "/spec/template/spec/containers/0/lifecycle/preStop", "value": {"exec": {"command": ["sleep", "5"]}}}])
	pod_runtime_clean(d)
}
