# Pod security of every workload: non-root, no privilege escalation, no privileged containers,
# no host namespaces, ports or paths, dropped capabilities, a seccomp profile, and images pinned
# by digest. Per object: `input` may be a single object (conftest) or a bundle (see lib.rego).
package main

import rego.v1

deny contains msg if {
	some s in subjects
	some msg in check_workload(s)
}

warn contains msg if {
	some s in subjects
	some msg in check_workload_warnings(s)
}

check_workload(s) := ((((((((check_run_as_non_root(s) | check_privilege_escalation(s)) | check_privileged(s)) | check_capabilities(s)) | check_host_namespaces(s)) | check_host_ports(s)) | check_host_path(s)) | check_seccomp(s)) | check_image_digest(s))

check_workload_warnings(s) := check_read_only_root(s) | check_resource_limits(s)

# ---------------------------------------------------------------- pods and containers

controller_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

pod_spec(obj) := obj.spec if obj.kind == "Pod"

pod_spec(obj) := obj.spec.template.spec if obj.kind in controller_kinds

pod_spec(obj) := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

# Every container of a pod spec, init and ephemeral ones included.
containers(spec) := [c |
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some c in list_at(spec, field)
]

container_name(c) := n if {
	n := c.name
	is_string(n)
} else := "-"

# A container's security setting, falling back to the pod's (as the kubelet does).
security(spec, c, key) := v if {
	v := obj_at(c, "securityContext")[key]
} else := v if {
	v := obj_at(spec, "securityContext")[key]
} else := null

# ---------------------------------------------------------------- rules

check_run_as_non_root(s) := {violation(s, "run-as-non-root", words(["container ", container_name(c), " may run as root: set securityContext.runAsNonRoot: true (pod or container)"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	security(spec, c, "runAsNonRoot") != true
} | {violation(s, "run-as-non-root", words(["container ", container_name(c), " runs as UID 0: remove securityContext.runAsUser: 0"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	security(spec, c, "runAsUser") == 0
}

check_privilege_escalation(s) := {violation(s, "no-privilege-escalation", words(["container ", container_name(c), " allows privilege escalation: set securityContext.allowPrivilegeEscalation: false"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	object.get(obj_at(c, "securityContext"), "allowPrivilegeEscalation", null) != false
}

check_privileged(s) := {violation(s, "no-privileged", words(["container ", container_name(c), " is privileged: remove securityContext.privileged"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	object.get(obj_at(c, "securityContext"), "privileged", false) == true
}

check_capabilities(s) := {violation(s, "capabilities", words(["container ", container_name(c), " does not drop ALL capabilities: set securityContext.capabilities.drop: [ALL]"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	not "ALL" in list_at(obj_at(obj_at(c, "securityContext"), "capabilities"), "drop")
} | {violation(s, "capabilities", words(["container ", container_name(c), " adds capability ", cap, ": only NET_BIND_SERVICE may be added"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	some cap in list_at(obj_at(obj_at(c, "securityContext"), "capabilities"), "add")
	cap != "NET_BIND_SERVICE"
}

check_host_namespaces(s) := {violation(s, "no-host-namespaces", words(["the pod shares a namespace of the node: remove spec.", field])) |
	spec := pod_spec(s.obj)
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	object.get(spec, field, false) == true
}

check_host_ports(s) := {violation(s, "no-host-ports", words(["container ", container_name(c), " binds host port ", p.hostPort, ": remove hostPort"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	some p in list_at(c, "ports")
	object.get(p, "hostPort", 0) != 0
}

check_host_path(s) := {violation(s, "no-host-path", words(["volume ", object.get(v, "name", "-"), " mounts a path of the node (hostPath): use emptyDir or a PersistentVolumeClaim"])) |
	spec := pod_spec(s.obj)
	some v in list_at(spec, "volumes")
	v.hostPath
}

seccomp_type(spec, c) := t if {
	p := security(spec, c, "seccompProfile")
	is_object(p)
	t := str_at(p, "type")
} else := ""

check_seccomp(s) := {violation(s, "seccomp-profile", words(["container ", container_name(c), " has no seccomp profile: set securityContext.seccompProfile.type: RuntimeDefault"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	not seccomp_type(spec, c) in {"RuntimeDefault", "Localhost"}
}

pinned_by_digest(image) if regex.match(`^[^@\s]+@sha256:[a-f0-9]{64}$`, image)

check_image_digest(s) := {violation(s, "image-digest", words(["container ", container_name(c), " uses image ", object.get(c, "image", ""), ", which is not pinned by digest: use <repository>@sha256:<digest>"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	not pinned_by_digest(str_at(c, "image"))
}

# ---------------------------------------------------------------- warnings

check_read_only_root(s) := {violation(s, "read-only-root-filesystem", words(["container ", container_name(c), " can write to its root filesystem: set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes"])) |
	spec := pod_spec(s.obj)
	some c in containers(spec)
	object.get(obj_at(c, "securityContext"), "readOnlyRootFilesystem", false) != true
}

check_resource_limits(s) := {violation(s, "resource-limits", words(["container ", container_name(c), " has no ", r, " limit: set resources.limits.", r])) |
	spec := pod_spec(s.obj)
	some c in list_at(spec, "containers")
	some r in ["cpu", "memory"]
	not obj_at(obj_at(c, "resources"), "limits")[r]
}
