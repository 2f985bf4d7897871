package main

import rego.v1

test_dir_of_drops_the_file_name if {
	dir_of("dev/plugins/t/p/deployment-p.yaml") == "dev/plugins/t/p"
	dir_of("bundle.json") == ""
}

test_an_id_matches_only_as_a_whole_word if {
	contains_id("tenant.acme-school.quiz", "acme-school")
	contains_id("acme-school", "acme-school")
	not contains_id("tenant.acme-school-evil.quiz", "acme-school")
	not contains_id("tenant.big-acme-school.quiz", "acme-school")
	not contains_id("tenant.acme-school.quiz", "")
}

test_words_shows_numbers_and_strings if {
	words(["rule ", 3, " of ", "x"]) == "rule 3 of x"
}

test_a_finding_names_the_path_when_combined if {
	s := {"path": "dev/plugins/t/p/quota.yaml", "contents": fx_quota}
	finding(s, "resource-quota", "text") == "resource-quota: dev/plugins/t/p/quota.yaml: ResourceQuota/quiz: text"
	finding(subject(fx_quota), "resource-quota", "text") == "resource-quota: ResourceQuota/quiz: text"
}

test_bundle_json_is_described_as_the_bundle if {
	describe(fx_bundle_json) == "Bundle/quiz"
}

test_empty_selectors_select_everything if {
	empty_selector({})
	empty_selector({"matchLabels": {}})
	empty_selector({"matchExpressions": []})
	not empty_selector({"matchLabels": {"a": "b"}})
	not empty_selector(null)
}

test_a_bundle_knows_its_members_bundle_json_and_owner if {
	b := bundle_of(fx_entries)
	b.dir == fx_dir
	count(b.idx) == count(fx_entries)
	count(b.members) == count(fx_entries) - 1
	fx_entries[b.info].path == "dev/plugins/acme-school/quiz/bundle.json"
	b.id == {"tenant": "acme-school", "plugin": "quiz", "env": "dev"}
}

# ---------------------------------------------------------------- the index of the combined input

test_the_index_reads_folders_objects_and_bundle_json_once if {
	argo := {"path": "dev/argocd/application-x.yaml", "contents": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"}}}
	kustomization := fx_entry("kustomization.yaml", {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"})
	ents := array.concat(fx_entries, [argo, kustomization])
	index := entries_index(ents)
	index.dirs[0] == ["dev", "plugins", "acme-school", "quiz"]
	index.dirs[count(fx_entries)] == ["dev", "argocd"]
	index.jsons == {0}
	index.objects == {i | some i in numbers.range(1, count(fx_entries) - 1)}
	index.members == index.objects | index.jsons
	index.objects == {i | some i; e := ents[i]; bundle_object(e.contents)}
	index.jsons == {i | some i; e := ents[i]; is_bundle_json(e)}
}

test_the_kind_index_cuts_each_kinds_run_out_of_the_sorted_pairs if {
	ents := [{"contents": {"kind": "A"}}, {"contents": {"kind": "B"}}, {"contents": {"kind": "A"}}, {"contents": [1]}, {"contents": {"kind": "C"}}, {"contents": {"kind": "B"}}, {"contents": {"kind": "B"}}, {"path": "x"}]
	kind_index(ents) == {"A": [0, 2], "B": [1, 5, 6], "C": [4]}
	kind_index([]) == {}
}

test_the_index_lists_the_entries_of_each_kind_in_order if {
	index := entries_index(fx_entries)
	index.kinds.NetworkPolicy == [7, 8]
	index.kinds.Namespace == [6]
	not index.kinds.Bundle
	scanned := {k: l | some e in fx_entries; k := e.contents.kind; l := [i | some i; fx_entries[i].contents.kind == k]}
	index.kinds == scanned
}

test_a_bundle_lists_its_kinds_as_a_scan_would if {
	b := bundle_of(fx_entries)
	kinds := ["Namespace", "NetworkPolicy", "Role", "Schema", "Grant", "KafkaUser", "ServiceAccount", "Unknown"]
	looked_up := [l | some k in kinds; l := of_kind(fx_entries, b, k)]
	scanned := [l | some k in kinds; l := [i | some i in b.idx; fx_entries[i].contents.kind == k]]
	looked_up == scanned
	b.member_set == {i | some i in b.members}
}

test_each_folder_of_a_combined_input_gets_only_its_own_kinds if {
	other := [{"path": replace(e.path, "/quiz/", "/grades/"), "contents": e.contents} | some e in fx_entries]
	ents := array.concat(fx_entries, other)
	index := entries_index(ents)
	quiz := make_bundle(ents, index, ["dev", "plugins", "acme-school", "quiz"])
	grades := make_bundle(ents, index, ["dev", "plugins", "acme-school", "grades"])
	quiz.dir == fx_dir
	grades.dir == "dev/plugins/acme-school/grades"
	of_kind(ents, quiz, "NetworkPolicy") == [7, 8]
	of_kind(ents, grades, "NetworkPolicy") == [7 + count(fx_entries), 8 + count(fx_entries)]
	of_kind(ents, grades, "Namespace") == [6 + count(fx_entries)]
}

test_entries_of_kinds_lists_the_entries_of_the_wanted_kinds_only if {
	kinds := {"Deployment": [2, 5], "Namespace": [0], "ClusterRole": [3]}
	sort(entries_of_kinds(kinds, pod_kinds)) == [2, 5]
	entries_of_kinds(kinds, cluster_scoped_kinds) == [3]
	entries_of_kinds(kinds, {"Job"}) == []
	entries_of_kinds({}, pod_kinds) == []
}

test_a_bundle_carries_its_bundle_json_and_its_one_namespace if {
	b := bundle_of(fx_entries)
	b.json == [fx_bundle_json]
	b.namespace == [fx_entry("namespace-plugin-acme-school-quiz.yaml", fx_namespace)]
	the_namespace(fx_entries, b) == b.namespace[0]
	two := array.concat(fx_entries, [fx_entry("namespace-other.yaml", fx_namespace)])
	bundle_of(two).namespace == []
	none := bundle_of(fx_without(fx_entries, "bundle.json"))
	none.json == []
	bundle_isolation(fx_entries, b) == fx_bundle_json.isolation
	bundle_isolation(fx_entries, none) == {}
}
