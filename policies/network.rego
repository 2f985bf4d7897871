# Network isolation: no egress rule is open to every address, and (across objects) every bundle
# has its default-deny NetworkPolicy.
package main

import rego.v1

deny contains msg if {
	some s in subjects
	some msg in check_egress_open(s)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_default_deny(b)
}

# ---------------------------------------------------------------- egress open to all (per object)

check_egress_open(s) := {violation(s, "egress-open-to-all", words(["egress rule ", i, " ", reason, ": name the destination by namespace and pod labels"])) |
	s.obj.kind == "NetworkPolicy"
	rules := list_at(obj_at(s.obj, "spec"), "egress")
	some i
	rule := rules[i]
	some reason in egress_open_reasons(rule)
}

# Why an egress rule lets traffic out to everything; empty when it does not.
egress_open_reasons(rule) := {"has no destinations (to is empty or missing), so it allows every address" |
	count(list_at(rule, "to")) == 0
} | {reason |
	some peer in list_at(rule, "to")
	some reason in peer_open_reasons(peer)
}

peer_open_reasons(peer) := {"has an empty peer, which allows every address" |
	is_object(peer)
	count(peer) == 0
} | {words(["allows ipBlock ", peer.ipBlock.cidr, ", every address"]) |
	endswith(str(peer.ipBlock.cidr), "/0")
} | {"allows every pod of every namespace (empty namespaceSelector)" |
	empty_selector(peer.namespaceSelector)
	not peer.ipBlock
	every_pod(peer)
}

every_pod(peer) if not peer.podSelector

every_pod(peer) if empty_selector(peer.podSelector)

# ---------------------------------------------------------------- default deny (per bundle)

# Selects every pod of the namespace, covers both directions, and allows nothing.
default_deny(obj) if {
	obj.kind == "NetworkPolicy"
	spec := obj_at(obj, "spec")
	empty_selector(spec.podSelector)
	types := list_at(spec, "policyTypes")
	"Ingress" in types
	"Egress" in types
	count(list_at(spec, "ingress")) == 0
	count(list_at(spec, "egress")) == 0
}

check_bundle_default_deny(b) := {violation(anchor(b), "network-default-deny", "the bundle has no default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress, Egress], no rules)") |
	not bundle_has_default_deny(b)
}

bundle_has_default_deny(b) if {
	some it in of_kind(b, "NetworkPolicy")
	default_deny(it.obj)
}
