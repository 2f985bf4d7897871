# Pod security of every workload: non-root, no privilege escalation, no privileged containers,
# no host namespaces, ports or paths, dropped capabilities, a seccomp profile, and images pinned
# by digest. Per object (see lib.rego for the input shapes).
package main

import rego.v1

deny contains msg if {
	some i in pod_entries
	s := input[i]
	not workload_clean(s.contents)
	some msg in check_workload(s)
}

warn contains msg if {
	combined
	kinds := pod_kinds # one lookup of the rule, not one per entry
	some s in input
	kinds[s.contents.kind]
	some msg in check_workload_warnings(s)
}

workload_deny(s) := check_workload(s) if s.contents.kind in pod_kinds
else := set()

workload_warn(s) := check_workload_warnings(s) if s.contents.kind in pod_kinds
else := set()

check_workload(s) := workload_in(s, pod_view(s.contents))

check_workload_warnings(s) := read_only_root_in(s, pv) | resource_limits_in(s, pv) if {
	pv := pod_view(s.contents)
}

# Every check_* below is <check>_in(s, pod_view(s.contents)): the pod spec and its containers are
# read once per object, not once per check. (The finding is bound in the body, `{msg | ...; msg :=
# finding(...)}`: rego-cpp returns nothing for a call on a parameter in the head of a comprehension
# of a two-parameter function.)
workload_in(s, pv) := ((((((((run_as_non_root_in(s, pv) | privilege_escalation_in(s, pv)) | privileged_in(s, pv)) | capabilities_in(s, pv)) | host_namespaces_in(s, pv)) | host_ports_in(s, pv)) | host_path_in(s, pv)) | seccomp_in(s, pv)) | image_digest_in(s, pv))

# The deny rule's fast path: a workload that check_workload finds nothing wrong with, in one pass
# over its containers, without building a finding set per check. Every condition is the opposite
# of one of check_workload's findings, written out; a workload that is not clean (or has no pod
# spec) goes through check_workload, which says what is wrong. So `not workload_clean(obj)` before
# check_workload changes no verdict; workload_test.rego holds the two together.
workload_clean(obj) if {
	spec := pod_spec(obj)
	not spec.hostNetwork == true
	not spec.hostPID == true
	not spec.hostIPC == true
	not host_path_volume(spec)
	not unclean_container(spec)
}

unclean_container(spec) if {
	some c in containers(spec)
	not container_clean(spec, c)
}

container_clean(spec, c) if {
	security(spec, c, "runAsNonRoot") == true
	security(spec, c, "runAsUser") != 0
	c.securityContext.allowPrivilegeEscalation == false
	not c.securityContext.privileged == true
	"ALL" in dropped_capabilities(c)
	not adds_capability(c)
	not binds_host_port(c)
	seccomp_confined(spec, c)
	pinned_plainly(c.image)
}

adds_capability(c) if {
	some cap in items_of(c.securityContext.capabilities.add)
	cap != "NET_BIND_SERVICE"
}

binds_host_port(c) if {
	some p in items_of(c.ports)
	p.hostPort != 0
}

host_path_volume(spec) if {
	some v in items_of(spec.volumes)
	v.hostPath
}

# ---------------------------------------------------------------- pods and containers

controller_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

pod_kinds := controller_kinds | {"Pod", "CronJob"}

# The pod template of a workload (one string comparison per kind: cheaper in rego-cpp than
# looking a kind up in a set inside a function; one chain of else, not one definition per kind:
# regorus evaluates every definition of a function on every call).
pod_template(obj) := obj.spec.template if obj.kind == "Deployment"
else := obj.spec.template if obj.kind == "StatefulSet"
else := obj.spec.jobTemplate.spec.template if obj.kind == "CronJob"
else := obj.spec.template if obj.kind == "Job"
else := obj.spec.template if obj.kind == "DaemonSet"
else := obj.spec.template if obj.kind == "ReplicaSet"
else := obj.spec.template if obj.kind == "ReplicationController"

pod_spec(obj) := obj.spec if obj.kind == "Pod"
else := pod_template(obj).spec

# A workload's pod spec (spec, absent when the object has none) and its containers, read once.
pod_view(obj) := {"spec": spec, "containers": containers(spec)} if {
	spec := pod_spec(obj)
} else := {"containers": []}

# Every container of a pod spec, init and ephemeral ones included.
containers(spec) := [c |
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some c in items_of(spec[field])
]

container_name(c) := n if {
	n := c.name
	is_string(n)
} else := "-"

# A container's security setting, else the pod's (as the kubelet does), else null.
security(spec, c, key) := v if {
	v := c.securityContext[key]
} else := v if {
	v := spec.securityContext[key]
} else := null

# A container's capabilities.drop list; [] when it has none.
dropped_capabilities(c) := d if {
	d := items_of(c.securityContext.capabilities.drop)
} else := []

# ---------------------------------------------------------------- rules

check_run_as_non_root(s) := run_as_non_root_in(s, pod_view(s.contents))

run_as_non_root_in(s, pv) := {msg |
	some c in pv.containers
	security(pv.spec, c, "runAsNonRoot") != true
	msg := finding(s, "run-as-non-root", words(["container ", container_name(c), " may run as root: set securityContext.runAsNonRoot: true (pod or container)"]))
} | {msg |
	some c in pv.containers
	security(pv.spec, c, "runAsUser") == 0
	msg := finding(s, "run-as-non-root", words(["container ", container_name(c), " runs as UID 0: remove securityContext.runAsUser: 0"]))
}

check_privilege_escalation(s) := privilege_escalation_in(s, pod_view(s.contents))

privilege_escalation_in(s, pv) := {msg |
	some c in pv.containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := finding(s, "no-privilege-escalation", words(["container ", container_name(c), " allows privilege escalation: set securityContext.allowPrivilegeEscalation: false"]))
}

check_privileged(s) := privileged_in(s, pod_view(s.contents))

privileged_in(s, pv) := {msg |
	some c in pv.containers
	c.securityContext.privileged == true
	msg := finding(s, "no-privileged", words(["container ", container_name(c), " is privileged: remove securityContext.privileged"]))
}

check_capabilities(s) := capabilities_in(s, pod_view(s.contents))

capabilities_in(s, pv) := {msg |
	some c in pv.containers
	not "ALL" in dropped_capabilities(c)
	msg := finding(s, "capabilities", words(["container ", container_name(c), " does not drop ALL capabilities: set securityContext.capabilities.drop: [ALL]"]))
} | {msg |
	some c in pv.containers
	some cap in items_of(c.securityContext.capabilities.add)
	cap != "NET_BIND_SERVICE"
	msg := finding(s, "capabilities", words(["container ", container_name(c), " adds capability ", cap, ": only NET_BIND_SERVICE may be added"]))
}

check_host_namespaces(s) := host_namespaces_in(s, pod_view(s.contents))

host_namespaces_in(s, pv) := {msg |
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	pv.spec[field] == true
	msg := finding(s, "no-host-namespaces", words(["the pod shares a namespace of the node: remove spec.", field]))
}

check_host_ports(s) := host_ports_in(s, pod_view(s.contents))

host_ports_in(s, pv) := {msg |
	some c in pv.containers
	some p in items_of(c.ports)
	p.hostPort != 0
	msg := finding(s, "no-host-ports", words(["container ", container_name(c), " binds host port ", get(p, "hostPort"), ": remove hostPort"]))
}

check_host_path(s) := host_path_in(s, pod_view(s.contents))

host_path_in(s, pv) := {msg |
	some v in items_of(pv.spec.volumes)
	v.hostPath
	msg := finding(s, "no-host-path", words(["volume ", get(v, "name"), " mounts a path of the node (hostPath): use emptyDir or a PersistentVolumeClaim"]))
}

seccomp_confined(spec, c) if security(spec, c, "seccompProfile").type in {"RuntimeDefault", "Localhost"}

check_seccomp(s) := seccomp_in(s, pod_view(s.contents))

seccomp_in(s, pv) := {msg |
	some c in pv.containers
	not seccomp_confined(pv.spec, c)
	msg := finding(s, "seccomp-profile", words(["container ", container_name(c), " has no seccomp profile: set securityContext.seccompProfile.type: RuntimeDefault"]))
}

pinned_by_digest(image) if {
	is_string(image)
	regex.match(`^[^@\s]+@sha256:[a-f0-9]{64}$`, image)
}

# A fast path of pinned_by_digest without its regular expression: <name>@sha256:<64 hex digits>,
# the name made only of letters, digits and . / : _ - (no space, no @). Any other image goes
# through pinned_by_digest (check_image_digest).
pinned_plainly(image) if {
	is_string(image)
	parts := split(image, "@sha256:")
	count(parts) == 2
	parts[0] != ""
	trim(parts[0], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./:_-") == ""
	count(parts[1]) == 64
	trim(parts[1], "0123456789abcdef") == ""
}

check_image_digest(s) := image_digest_in(s, pod_view(s.contents))

image_digest_in(s, pv) := {msg |
	some c in pv.containers
	image := get(c, "image")
	not pinned_by_digest(image)
	msg := finding(s, "image-digest", words(["container ", container_name(c), " uses image ", image, ", which is not pinned by digest: use <repository>@sha256:<digest>"]))
}

# ---------------------------------------------------------------- warnings

check_read_only_root(s) := read_only_root_in(s, pod_view(s.contents))

read_only_root_in(s, pv) := {msg |
	some c in pv.containers
	not c.securityContext.readOnlyRootFilesystem == true
	msg := finding(s, "read-only-root-filesystem", words(["container ", container_name(c), " can write to its root filesystem: set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes"]))
}

check_resource_limits(s) := resource_limits_in(s, pod_view(s.contents))

resource_limits_in(s, pv) := {msg |
	some c in items_of(pv.spec.containers)
	some r in ["cpu", "memory"]
	not c.resources.limits[r]
	msg := finding(s, "resource-limits", words(["container ", container_name(c), " has no ", r, " limit: set resources.limits.", r]))
}
