# Removing an install keeps the tenant's data unless bundle.json's isolation.onUninstall says
# "delete" (the install's spec.onUninstall.deleteData): provider-sql's Role, Schema and Grant have
# managementPolicies without Delete (Crossplane then never drops them in PostgreSQL), and every
# KafkaTopic carries Argo CD's sync option Delete=false (deleting the Application leaves it, and
# so the topic, in place).
package main

import rego.v1

deny contains msg if {
	some b in bundles
	some msg in check_bundle_retention(input, b)
}

check_bundle_retention(ents, b) := retention_with(ents, b, object.get(bundle_isolation(ents, b), "onUninstall", "keep"))

retention_with(ents, b, mode) := set() if mode == "delete"

retention_with(ents, b, mode) := keeps_data(ents, b) if mode != "delete"

keeps_data(ents, b) := {finding(ents[i], "data-kept-on-uninstall", words(["spec.managementPolicies is ", object.get(ents[i].contents.spec, "managementPolicies", ["*"]), ": without an opt-in (spec.onUninstall.deleteData) it must not allow Delete"])) |
	some i in array.concat(array.concat(of_kind(ents, b, "Role"), of_kind(ents, b, "Schema")), of_kind(ents, b, "Grant"))
	b.member_set[i]
	obj := ents[i].contents
	startswith(obj.apiVersion, "postgresql.sql.")
	some p in object.get(obj.spec, "managementPolicies", ["*"])
	p in {"*", "Delete"}
} | {finding(ents[i], "data-kept-on-uninstall", "the topic would be deleted with the install: annotate argocd.argoproj.io/sync-options: Delete=false (or opt in with spec.onUninstall.deleteData)") |
	some i in of_kind(ents, b, "KafkaTopic")
	not "Delete=false" in {trim_space(o) | some o in split(annotation(ents[i].contents, "argocd.argoproj.io/sync-options"), ",")}
}
