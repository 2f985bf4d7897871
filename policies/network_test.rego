package main

import rego.v1

fx_with_egress(rule) := json.patch(fx_network_policy, [{"op": "add", "path": "/spec/egress/-", "value": rule}])

test_egress_to_named_destinations_passes if {
	count(check_egress_open(subject(fx_network_policy))) == 0
}

test_egress_to_0_0_0_0_slash_0_is_denied if {
	np := fx_with_egress({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_egress_to_every_ipv6_address_is_denied if {
	np := fx_with_egress({"to": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/8"]}}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_egress_to_a_narrow_ip_block_passes if {
	np := fx_with_egress({"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 5432}]})
	count(check_egress_open(subject(np))) == 0
}

test_an_egress_rule_with_empty_to_is_denied if {
	np := fx_with_egress({"to": [], "ports": [{"port": 443}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_an_egress_rule_without_to_is_denied if {
	np := fx_with_egress({"ports": [{"port": 443}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_an_empty_egress_peer_is_denied if {
	np := fx_with_egress({"to": [{}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_egress_to_every_namespace_is_denied if {
	np := fx_with_egress({"to": [{"namespaceSelector": {}}]})
	rules_of(check_egress_open(subject(np))) == {"egress-open-to-all"}
}

test_egress_to_chosen_pods_of_every_namespace_passes if {
	np := fx_with_egress({"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]})
	count(check_egress_open(subject(np))) == 0
}

test_the_finding_says_which_egress_rule_is_open if {
	np := fx_with_egress({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
	some f in check_egress_open(subject(np))
	contains(f, "egress rule 2 allows ipBlock 0.0.0.0/0")
}

test_a_bundle_with_its_default_deny_passes if {
	count(check_bundle_default_deny(fx_entries, bundle_of(fx_entries))) == 0
}

test_a_bundle_without_default_deny_is_denied if {
	ents := fx_without(fx_entries, "networkpolicy-default-deny.yaml")
	rules_of(check_bundle_default_deny(ents, bundle_of(ents))) == {"network-default-deny"}
}

test_a_default_deny_that_allows_something_does_not_count if {
	np := json.patch(fx_default_deny, [{"op": "add", "path": "/spec/egress", "value": [{}]}])
	ents := fx_replacing(fx_entries, "networkpolicy-default-deny.yaml", np)
	rules_of(check_bundle_default_deny(ents, bundle_of(ents))) == {"network-default-deny"}
}

test_a_default_deny_for_ingress_only_does_not_count if {
	np := json.patch(fx_default_deny, [{"op": "replace", "path": "/spec/policyTypes", "value": ["Ingress"]}])
	ents := fx_replacing(fx_entries, "networkpolicy-default-deny.yaml", np)
	rules_of(check_bundle_default_deny(ents, bundle_of(ents))) == {"network-default-deny"}
}

test_a_default_deny_for_some_pods_only_does_not_count if {
	np := json.patch(fx_default_deny, [{"op": "replace", "path": "/spec/podSelector", "value": {"matchLabels": {"a": "b"}}}])
	ents := fx_replacing(fx_entries, "networkpolicy-default-deny.yaml", np)
	rules_of(check_bundle_default_deny(ents, bundle_of(ents))) == {"network-default-deny"}
}

test_a_missing_default_deny_is_reported_on_the_namespace if {
	ents := fx_without(fx_entries, "networkpolicy-default-deny.yaml")
	some f in check_bundle_default_deny(ents, bundle_of(ents))
	startswith(f, "network-default-deny: dev/plugins/acme-school/quiz/namespace-plugin-acme-school-quiz.yaml: Namespace/plugin-acme-school-quiz: ")
}

# ---------------------------------------------------------------- the fast path

test_network_policies_whose_egress_names_namespaces_are_clean if {
	egress_clean(fx_network_policy)
	egress_clean(fx_default_deny)
	count(check_egress_open(subject(fx_network_policy))) == 0
}

test_a_network_policy_with_an_open_egress_rule_is_not_clean if {
	open_rules := [
		{"ports": [{"port": 443}]},
		{"to": []},
		{"to": [{}]},
		{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
		{"to": [{"namespaceSelector": {}}]},
		{"to": [{"namespaceSelector": {"matchLabels": "x"}}]},
		{"to": [{"namespaceSelector": {"matchLabels": {}}}]},
	]
	wrongly_clean := [r | some r in open_rules; egress_clean(fx_with_egress(r))]
	wrongly_clean == []
	found := [r | some r in open_rules; count(check_egress_open(subject(fx_with_egress(r)))) > 0]
	count(found) == count(open_rules)
}
