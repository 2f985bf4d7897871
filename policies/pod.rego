# How a workload's pods run and stop: a high, fixed UID and GID (per object), a preStop delay
# inside the grace period (per object), a PodDisruptionBudget that never blocks a node drain (per
# object) and one that covers every workload of a bundle (across objects). See lib.rego for the
# input shapes. Fields are read with object.get and a default, so a missing field is a value the
# rules compare, never an undefined that silently skips a rule (the same under OPA and rego-cpp).
package main

import rego.v1

# Per object: the combined input (renderer, conftest --combine) and a single object (conftest).
deny contains msg if {
	some i in pod_entries
	s := input[i]
	not pod_runtime_clean(s.contents)
	some msg in check_pod_runtime(s)
}

deny contains msg if {
	some i in input_index.kinds.PodDisruptionBudget
	s := input[i]
	some msg in check_disruption_budget(s)
}

deny contains msg if {
	not combined
	some msg in pod_deny(subject(input))
}

# Across objects: every workload of a bundle has a PodDisruptionBudget.
deny contains msg if {
	some b in bundles
	some msg in check_bundle_disruption_budget(input, b)
}

pod_deny(s) := check_pod_runtime(s) if s.contents.kind in pod_kinds

pod_deny(s) := check_disruption_budget(s) if s.contents.kind == "PodDisruptionBudget"

pod_deny(s) := set() if {
	not s.contents.kind in pod_kinds
	s.contents.kind != "PodDisruptionBudget"
}

check_pod_runtime(s) := check_high_uid(s) | check_graceful_shutdown(s)

min_uid := 10000

# The deny rule's fast path (as workload_clean): a workload that check_pod_runtime finds nothing
# wrong with, every condition the opposite of one of its findings; one that is not clean goes
# through check_pod_runtime. pod_test.rego holds the two together.
pod_runtime_clean(obj) if {
	spec := pod_spec(obj)
	high_id(spec.securityContext.fsGroup) # fsGroup of pod_security(spec), read by reference
	not low_id_container(spec)
	grace := oget(spec, "terminationGracePeriodSeconds", default_grace_seconds)
	is_number(grace)
	not stops_badly(oget(spec, "containers", []), grace)
}

# The clean path reads fields by reference (workload.rego's security(spec, c, key) is
# effective_id(spec, c, key) without the object.get calls): a reference that is undefined, or a
# value of another type, only sends the workload through check_pod_runtime.
low_id_container(spec) if {
	some c in containers(spec)
	some key in ["runAsUser", "runAsGroup"]
	not high_id(security(spec, c, key))
}

# A container without a preStop handler, or one that sleeps for the whole grace period (or that
# the clean path cannot judge by reference: check_pod_runtime says which).
stops_badly(cs, grace) if {
	some c in cs
	not stops_in_time(c, grace)
}

stops_in_time(c, grace) if {
	c.lifecycle.preStop != null
	delay := pre_stop_delay(c)
	is_number(delay)
	delay < grace
}

# pre_stop_sleep(c), read by reference.
pre_stop_delay(c) := d if {
	d := c.lifecycle.preStop.sleep.seconds
} else := 0

# ---------------------------------------------------------------- high UID and GID (checkov CKV_K8S_40)

high_id(v) if {
	is_number(v)
	v >= min_uid
}

pod_security(spec) := oget(spec, "securityContext", {})

# A container's setting, else the pod's (as the kubelet does), else null.
effective_id(spec, c, key) := oget(oget(c, "securityContext", {}), key, oget(pod_security(spec), key, null))

check_high_uid(s) := {finding(s, "high-uid", words(["container ", container_name(c), " runs with ", key, " ", v, ": set securityContext.", key, " to ", min_uid, " or more, so that it shares no identity with a user of the node"])) |
	spec := pod_spec(s.contents)
	some c in containers(spec)
	some key in ["runAsUser", "runAsGroup"]
	v := effective_id(spec, c, key)
	not high_id(v)
} | {finding(s, "high-uid", words(["the pod's securityContext.fsGroup is ", v, ": set it to ", min_uid, " or more"])) |
	v := oget(pod_security(pod_spec(s.contents)), "fsGroup", null)
	not high_id(v)
}

# object.get on anything: the default when x is not an object (OPA and regorus stop with a type
# error on object.get of a string or a number; an odd input must give a verdict, not an error).
oget(x, k, d) := object.get(x, k, d) if is_object(x)
else := d

# ---------------------------------------------------------------- graceful shutdown

default_grace_seconds := 30

pre_stop(c) := oget(oget(c, "lifecycle", {}), "preStop", null)

pre_stop_sleep(c) := oget(oget(oget(oget(c, "lifecycle", {}), "preStop", {}), "sleep", {}), "seconds", 0)

check_graceful_shutdown(s) := {finding(s, "graceful-shutdown", words(["container ", container_name(c), " has no lifecycle.preStop handler: add lifecycle.preStop.sleep.seconds, so that it keeps serving while endpoints stop sending to it"])) |
	some c in oget(pod_spec(s.contents), "containers", [])
	pre_stop(c) == null
} | {finding(s, "graceful-shutdown", words(["container ", container_name(c), " sleeps ", delay, " s before stopping, which is not less than terminationGracePeriodSeconds (", grace, "): the process would be killed before it can finish"])) |
	spec := pod_spec(s.contents)
	grace := oget(spec, "terminationGracePeriodSeconds", default_grace_seconds)
	some c in oget(spec, "containers", [])
	delay := pre_stop_sleep(c)
	delay >= grace
}

# ---------------------------------------------------------------- PodDisruptionBudget

# maxUnavailable lets at least one pod go: an integer >= 1 or a percentage other than 0%.
allows_a_disruption(v) if {
	is_number(v)
	v >= 1
}

allows_a_disruption(v) if {
	is_string(v)
	regex.match(`^[0-9]+%$`, v)
	not regex.match(`^0+%$`, v)
}

check_disruption_budget(s) := {finding(s, "pod-disruption-budget", "sets minAvailable, which blocks every node drain while only that many pods run (one replica): use maxUnavailable: 1") |
	oget(s.contents.spec, "minAvailable", null) != null
} | {finding(s, "pod-disruption-budget", words(["maxUnavailable is ", v, ": allow at least one pod to go (maxUnavailable: 1), or a node drain waits forever"])) |
	v := oget(s.contents.spec, "maxUnavailable", null)
	not allows_a_disruption(v)
} | {finding(s, "pod-disruption-budget", words(["unhealthyPodEvictionPolicy is ", v, ": set AlwaysAllow, so that a pod that is not Ready never blocks a drain"])) |
	v := oget(s.contents.spec, "unhealthyPodEvictionPolicy", null)
	v != "AlwaysAllow"
} | {finding(s, "pod-disruption-budget", "selects no pods by label: set spec.selector.matchLabels to the workload's selector") |
	count(oget(oget(s.contents.spec, "selector", {}), "matchLabels", {})) == 0
}

# The budget's selector picks the workload's pods: every matchLabels entry is a label of the template.
budget_covers(pdb, obj) if {
	sel := oget(oget(pdb.spec, "selector", {}), "matchLabels", {})
	count(sel) > 0
	labels := oget(oget(pod_template(obj), "metadata", {}), "labels", {})
	matched := {k | v := sel[k]; labels[k] == v}
	count(matched) == count(sel)
}

check_bundle_disruption_budget(ents, b) := {finding(ents[i], "pod-disruption-budget", "no PodDisruptionBudget of the bundle selects this workload's pods: a drain or a rollback may take them all at once") |
	some i in array.concat(of_kind(ents, b, "Deployment"), of_kind(ents, b, "StatefulSet"))
	b.member_set[i]
	obj := ents[i].contents
	count(items_of(oget(oget(pod_template(obj), "metadata", {}), "labels", {}))) > 0  # no labels: required-labels says so
	not bundle_budget_covers(ents, b, obj)
}

bundle_budget_covers(ents, b, obj) if {
	some j in of_kind(ents, b, "PodDisruptionBudget")
	budget_covers(ents[j].contents, obj)
}
