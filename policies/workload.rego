# Pod security of every workload: non-root, no privilege escalation, no privileged containers,
# no host namespaces, ports or paths, dropped capabilities, a seccomp profile, and images pinned
# by digest. Per object (see lib.rego for the input shapes).
package main

import rego.v1

deny contains msg if {
	combined
	some s in input
	s.contents.kind in pod_kinds
	some msg in check_workload(s)
}

warn contains msg if {
	combined
	some s in input
	s.contents.kind in pod_kinds
	some msg in check_workload_warnings(s)
}

workload_deny(s) := check_workload(s) if s.contents.kind in pod_kinds
else := set()

workload_warn(s) := check_workload_warnings(s) if s.contents.kind in pod_kinds
else := set()

check_workload(s) := ((((((((check_run_as_non_root(s) | check_privilege_escalation(s)) | check_privileged(s)) | check_capabilities(s)) | check_host_namespaces(s)) | check_host_ports(s)) | check_host_path(s)) | check_seccomp(s)) | check_image_digest(s))

check_workload_warnings(s) := check_read_only_root(s) | check_resource_limits(s)

# ---------------------------------------------------------------- pods and containers

controller_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

pod_kinds := controller_kinds | {"Pod", "CronJob"}

# The pod template of a workload (one definition per kind: comparing strings is cheaper in
# rego-cpp than looking a kind up in a set inside a function).
pod_template(obj) := obj.spec.template if obj.kind == "Deployment"

pod_template(obj) := obj.spec.template if obj.kind == "StatefulSet"

pod_template(obj) := obj.spec.template if obj.kind == "DaemonSet"

pod_template(obj) := obj.spec.template if obj.kind == "ReplicaSet"

pod_template(obj) := obj.spec.template if obj.kind == "Job"

pod_template(obj) := obj.spec.template if obj.kind == "ReplicationController"

pod_template(obj) := obj.spec.jobTemplate.spec.template if obj.kind == "CronJob"

pod_spec(obj) := obj.spec if obj.kind == "Pod"

pod_spec(obj) := pod_template(obj).spec if obj.kind != "Pod"

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

check_run_as_non_root(s) := {finding(s, "run-as-non-root", words(["container ", container_name(c), " may run as root: set securityContext.runAsNonRoot: true (pod or container)"])) |
	some c in containers(pod_spec(s.contents))
	security(pod_spec(s.contents), c, "runAsNonRoot") != true
} | {finding(s, "run-as-non-root", words(["container ", container_name(c), " runs as UID 0: remove securityContext.runAsUser: 0"])) |
	some c in containers(pod_spec(s.contents))
	security(pod_spec(s.contents), c, "runAsUser") == 0
}

check_privilege_escalation(s) := {finding(s, "no-privilege-escalation", words(["container ", container_name(c), " allows privilege escalation: set securityContext.allowPrivilegeEscalation: false"])) |
	some c in containers(pod_spec(s.contents))
	not c.securityContext.allowPrivilegeEscalation == false
}

check_privileged(s) := {finding(s, "no-privileged", words(["container ", container_name(c), " is privileged: remove securityContext.privileged"])) |
	some c in containers(pod_spec(s.contents))
	c.securityContext.privileged == true
}

check_capabilities(s) := {finding(s, "capabilities", words(["container ", container_name(c), " does not drop ALL capabilities: set securityContext.capabilities.drop: [ALL]"])) |
	some c in containers(pod_spec(s.contents))
	not "ALL" in dropped_capabilities(c)
} | {finding(s, "capabilities", words(["container ", container_name(c), " adds capability ", cap, ": only NET_BIND_SERVICE may be added"])) |
	some c in containers(pod_spec(s.contents))
	some cap in items_of(c.securityContext.capabilities.add)
	cap != "NET_BIND_SERVICE"
}

check_host_namespaces(s) := {finding(s, "no-host-namespaces", words(["the pod shares a namespace of the node: remove spec.", field])) |
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	pod_spec(s.contents)[field] == true
}

check_host_ports(s) := {finding(s, "no-host-ports", words(["container ", container_name(c), " binds host port ", get(p, "hostPort"), ": remove hostPort"])) |
	some c in containers(pod_spec(s.contents))
	some p in items_of(c.ports)
	p.hostPort != 0
}

check_host_path(s) := {finding(s, "no-host-path", words(["volume ", get(v, "name"), " mounts a path of the node (hostPath): use emptyDir or a PersistentVolumeClaim"])) |
	some v in items_of(pod_spec(s.contents).volumes)
	v.hostPath
}

seccomp_confined(spec, c) if security(spec, c, "seccompProfile").type in {"RuntimeDefault", "Localhost"}

check_seccomp(s) := {finding(s, "seccomp-profile", words(["container ", container_name(c), " has no seccomp profile: set securityContext.seccompProfile.type: RuntimeDefault"])) |
	some c in containers(pod_spec(s.contents))
	not seccomp_confined(pod_spec(s.contents), c)
}

pinned_by_digest(image) if {
	is_string(image)
	regex.match(`^[^@\s]+@sha256:[a-f0-9]{64}$`, image)
}

check_image_digest(s) := {finding(s, "image-digest", words(["container ", container_name(c), " uses image ", image, ", which is not pinned by digest: use <repository>@sha256:<digest>"])) |
	some c in containers(pod_spec(s.contents))
	image := get(c, "image")
	not pinned_by_digest(image)
}

# ---------------------------------------------------------------- warnings

check_read_only_root(s) := {finding(s, "read-only-root-filesystem", words(["container ", container_name(c), " can write to its root filesystem: set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes"])) |
	some c in containers(pod_spec(s.contents))
	not c.securityContext.readOnlyRootFilesystem == true
}

check_resource_limits(s) := {finding(s, "resource-limits", words(["container ", container_name(c), " has no ", r, " limit: set resources.limits.", r])) |
	some c in items_of(pod_spec(s.contents).containers)
	some r in ["cpu", "memory"]
	not c.resources.limits[r]
}
