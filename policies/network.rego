# Network isolation: no egress rule is open to every address (per object), and every bundle has
# its default-deny NetworkPolicy (across objects).
package main

import rego.v1

deny contains msg if {
	some i in input_index.kinds.NetworkPolicy
	s := input[i]
	not egress_clean(s.contents)
	some msg in check_egress_open(s)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_default_deny(input, b)
}

network_deny(s) := check_egress_open(s) if s.contents.kind == "NetworkPolicy"

network_deny(s) := set() if not s.contents.kind == "NetworkPolicy"

# ---------------------------------------------------------------- egress open to all (per object)

check_egress_open(s) := {finding(s, "egress-open-to-all", words(["egress rule ", i, " ", reason, ": name the destination by namespace and pod labels"])) |
	s.contents.kind == "NetworkPolicy"
	some i
	rule := s.contents.spec.egress[i]
	some reason in egress_open_reasons(rule)
}

# The deny rule's fast path (as workload.rego's workload_clean): a NetworkPolicy without egress
# rules, or whose every egress rule has destinations that each name a namespace by label (and no
# ipBlock), read by reference; check_egress_open finds nothing in it. Any other goes through
# check_egress_open, which says what is wrong. network_test.rego holds the two together.
egress_clean(obj) if not obj.spec.egress
else := true if {
	egress := obj.spec.egress
	is_array(egress)
	not open_egress_rule(egress)
}

open_egress_rule(egress) if {
	some rule in egress
	not egress_rule_clean(rule)
}

egress_rule_clean(rule) if {
	to := rule.to
	is_array(to)
	count(to) > 0
	not unnamed_peer(to)
}

unnamed_peer(to) if {
	some peer in to
	not peer_names_namespace(peer)
}

peer_names_namespace(peer) if {
	not peer.ipBlock
	labels := peer.namespaceSelector.matchLabels
	is_object(labels)
	labels != {}
}

# Why an egress rule lets traffic out to everything; empty when it does not.
egress_open_reasons(rule) := {"has no destinations (to is empty or missing), so it allows every address" |
	not has_peers(rule)
} | {reason |
	some peer in items_of(rule.to)
	some reason in peer_open_reasons(peer)
}

has_peers(rule) if count(items_of(rule.to)) > 0

peer_open_reasons(peer) := {"has an empty peer, which allows every address" |
	peer == {}
} | {words(["allows ipBlock ", peer.ipBlock.cidr, ", every address"]) |
	endswith(str(peer.ipBlock.cidr), "/0")
} | {"allows every pod of every namespace (empty namespaceSelector)" |
	empty_selector(peer.namespaceSelector)
	not peer.ipBlock
	selects_every_pod(peer)
}

selects_every_pod(peer) if not peer.podSelector

selects_every_pod(peer) if empty_selector(peer.podSelector)

# ---------------------------------------------------------------- default deny (per bundle)

# Selects every pod of the namespace, covers both directions, and allows nothing.
default_deny(obj) if {
	obj.kind == "NetworkPolicy"
	empty_selector(obj.spec.podSelector)
	"Ingress" in obj.spec.policyTypes
	"Egress" in obj.spec.policyTypes
	not has_rules(obj.spec, "ingress")
	not has_rules(obj.spec, "egress")
}

has_rules(spec, direction) if count(items_of(spec[direction])) > 0

check_bundle_default_deny(ents, b) := {finding(anchor(ents, b), "network-default-deny", "the bundle has no default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress, Egress], no rules)") |
	not bundle_has_default_deny(ents, b)
}

bundle_has_default_deny(ents, b) if {
	some i in of_kind(ents, b, "NetworkPolicy")
	default_deny(ents[i].contents)
}
