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
