# Shared helpers of the policy gate: how the input is read and how a violation is worded.
#
# The policies run in two places with the same text:
#   - `conftest test` (CI). Without --combine, `input` is ONE Kubernetes object. With --combine,
#     `input` is an array of {"path": <file path>, "contents": <parsed file>}, one entry per file
#     (bundle.json and kustomization.yaml included).
#   - renderer/gates/policy.py (in process, regorus): always the combined shape, one array per
#     bundle, paths "<env>/plugins/<tenant>/<plugin>/<file>", bundle.json included when known.
#
# Per-object checks take a subject {"path", "contents"}: an entry of the combined input, or the one
# object wrapped as {"path": "", "contents": input}, so one evaluation covers a whole bundle.
# Cross-object checks take the combined input and one of its `bundles` (entries grouped by
# folder); they never fire on a single object.
#
# Every message is "<rule-id>: [<path>: ]<Kind>/<name>: <text>"; renderer/gates/policy.py turns it into
# "<bundle>/<file>: <Kind>/<name>: <rule-id>: <text>".
#
# Rules are functions of a subject (check_*(s)) or of the combined input and a bundle
# (check_bundle_*(ents, b)); the `deny`/`warn` rules of each file apply them. The unit tests
# (*_test.rego) call the functions directly (rego-cpp, measured by bench/, crashes on `with input as`).
#
# The same text must mean the same under regorus (the gate), OPA (conftest in CI; the tests use it
# as the reference: tests/test_policy_engines.py) and rego-cpp (regopy, the old engine, bench/):
#   - OPA evaluates every reference and call argument inside a `not` before negating, so a
#     missing field makes `not f(x.missing)`, `not "A" in x.missing` and `not f(g(x))` (g
#     undefined) false under OPA and true under the others. Inside `not`, pass only values that
#     are always defined: total helpers with `else` (object_labels, dropped_capabilities,
#     grant_database, get), object.get on a known object, or bind the value first (`x := ...`)
#     and negate on it. `not x.missing` and `not x.missing == v` mean the same everywhere.
#   - Iterate and count input fields through items_of(): regorus stops with an error on
#     `some x in 5`, and both engines on `count(5)`; check that a field is a string before a
#     string built-in (both stop on a type error). A bundle of odd shapes then gets verdicts,
#     the same under every engine, not an evaluation error.
#
# Kept from when rego-cpp (~10-30 us per evaluation step) was the gate's engine:
#   - `deny`/`warn` rules iterate `input` itself (iterating a rule whose value is the input copies
#     it each time) and test a cheap guard (the kind, a fast "all is well" check) before calling
#     a check_* function, so a compliant object costs a few steps per rule.
#   - Objects are read with references (obj.spec.template.spec); built-ins and collections that
#     are rules (sets of kinds) get copied on every call, so they are kept off the hot paths.
#   - Messages are joined with concat (words), not sprintf: rego-cpp's sprintf("%s") quotes a
#     string that came into a function as a literal argument.
#   - No `some k, v in x` inside comprehensions (rego-cpp cannot parse it), no `some i; f(x[i])`
#     (rego-cpp does not enumerate i inside a call's arguments: bind it first, `v := x[i]; f(v)`),
#     no variable named data or input (rego-cpp crashes) or all / any (OPA built-ins).
#   - No rule or function is named deny_*, warn_*, violation or violation_*: conftest would take
#     it for one of its rules.
package main

import rego.v1

label_tenant := "plugins.adapstory.io/tenant"

label_plugin := "plugins.adapstory.io/plugin"

label_env := "plugins.adapstory.io/env"

annotation_topic_prefix := "plugins.adapstory.io/topic-prefix"

annotation_group_prefix := "plugins.adapstory.io/group-prefix"

# ---------------------------------------------------------------- reading the input

# conftest --combine (and the renderer): an array of {path, contents}.
combined if input[0].path

# One object as a subject (conftest without --combine, and the unit tests).
subject(obj) := {"path": "", "contents": obj}

dir_of(path) := dir if {
	parts := split(path, "/")
	dir := concat("/", array.slice(parts, 0, count(parts) - 1))
}

# ---------------------------------------------------------------- the rules conftest reads
#
# With the combined input, each policy file's own `deny`/`warn` rules iterate `input` and pick the
# objects of their kinds (iterating a rule whose value is the input copies it in rego-cpp, and one
# rule per group of kinds is cheaper than one dispatch function). With a single object (conftest
# without --combine), the two rules below apply object_deny / object_warn, which gather the same
# checks; tests/test_policies.py checks that both ways report the same violations.

deny contains msg if {
	not combined
	some msg in object_deny(subject(input))
}

warn contains msg if {
	not combined
	some msg in object_warn(subject(input))
}

object_deny(s) := (((workload_deny(s) | network_deny(s)) | basics_deny(s)) | isolation_deny(s))

object_warn(s) := workload_warn(s)

# ---------------------------------------------------------------- reading objects

# A Kubernetes object: has apiVersion and kind (read by reference: cheap in rego-cpp).
is_k8s(obj) if {
	obj.apiVersion
	obj.kind
}

# Objects that are not part of a plugin bundle's workload: kustomize's own file and Argo CD's.
not_bundle_object(obj) if obj.kind == "Kustomization"

not_bundle_object(obj) if {
	is_string(obj.apiVersion)
	startswith(obj.apiVersion, "argoproj.io/")
}

bundle_object(obj) if {
	is_k8s(obj)
	not not_bundle_object(obj)
}

kind_of(obj) := k if {
	k := obj.kind
	is_string(k)
} else := "Bundle"

name_of(obj) := n if {
	n := obj.metadata.name
	is_string(n)
} else := n if {
	n := obj.plugin
	is_string(n)
} else := "-"

label(obj, key) := v if {
	v := obj.metadata.labels[key]
	is_string(v)
} else := ""

annotation(obj, key) := v if {
	v := obj.metadata.annotations[key]
	is_string(v)
} else := ""

namespace_of(obj) := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
} else := ""

# A field of an object for a message: the value, or "-" when it is missing.
get(x, key) := v if {
	v := x[key]
} else := "-"

# The elements of a field to iterate: the field when it is a collection, else none. (regorus
# stops with an error on `some x in <a number>`, where OPA finds nothing.)
items_of(x) := x if is_array(x)
else := x if is_object(x)
else := x if is_set(x)
else := []

non_empty_string(x) if {
	is_string(x)
	x != ""
}

# A label selector that selects everything: {} or one without matchLabels / matchExpressions.
empty_selector(sel) if {
	is_object(sel)
	not selector_has_terms(sel)
}

selector_has_terms(sel) if count(items_of(sel.matchLabels)) > 0

selector_has_terms(sel) if count(items_of(sel.matchExpressions)) > 0

# `name` contains `id` (a tenant id or plugin name: [a-z0-9-]) as a whole word, so that
# "riverside-academy" does not match "riverside-academy-evil".
contains_id(name, id) if {
	non_empty_string(id)
	regex.match(concat("", [`(^|[^a-z0-9-])`, id, `([^a-z0-9-]|$)`]), name)
}

# ---------------------------------------------------------------- wording

str(x) := x if is_string(x)
else := sprintf("%v", [x])

# The parts of a message, joined; parts that are not strings are shown as JSON.
words(parts) := concat("", [str(p) | some p in parts])

describe(obj) := concat("/", [kind_of(obj), name_of(obj)])

finding(s, rule, text) := concat(": ", [rule, describe(s.contents), text]) if s.path == ""

finding(s, rule, text) := concat(": ", [rule, str(s.path), describe(s.contents), text]) if s.path != ""

# ---------------------------------------------------------------- bundles (combined input only)

is_bundle_json(it) if {
	bundle_json_path(it.path)
	not is_k8s(it.contents)
}

bundle_json_path(path) if path == "bundle.json"

bundle_json_path(path) if endswith(path, "/bundle.json")

bundle_member(it) if is_bundle_json(it)

bundle_member(it) if bundle_object(it.contents)

# The entries of the combined input, read once per evaluation (a rule: a function is evaluated
# again on every call, a rule once).
input_index := entries_index(input) if combined

bundle_dirs := {input_index.dirs[i] | some i in input_index.members} if combined

bundles := [make_bundle(input, input_index, folder) | some folder in bundle_dirs] if combined

# The indexes of the workloads (pod_kinds) and of the cluster-wide objects (cluster_scoped_kinds)
# of the combined input, once per evaluation: the kinds the input holds, intersected with the
# set, instead of one lookup per kind of the set in every rule that reads them.
pod_entries := entries_of_kinds(input_index.kinds, pod_kinds) if combined

cluster_scoped_entries := entries_of_kinds(input_index.kinds, cluster_scoped_kinds) if combined

# The indexes listed under the kinds of `wanted` in a kinds index (entries_index's kinds).
entries_of_kinds(kinds, wanted) := [i | some kind in object.keys(kinds) & wanted; some i in kinds[kind]]

# A list of entries read once: the folder of each (as the list of its names: dir_of without its
# concat), the indexes of the bundle objects
# (bundle_object) and those of the bundle.json files (is_bundle_json), members (both), and the
# indexes of the entries of each kind (kinds: kind -> indexes, in order). The conditions are
# written out (not calls per entry): one pass over the entries each. The per-object rules of the
# combined input iterate input_index.kinds[<kind>], not every entry.
entries_index(ents) := {"dirs": dirs, "objects": objects, "jsons": jsons, "members": objects | jsons, "kinds": kinds} if {
	dirs := [d | some it in ents; parts := split(it.path, "/"); d := array.slice(parts, 0, count(parts) - 1)]
	k8s := {i | some i; obj := ents[i].contents; obj.apiVersion; obj.kind} # is_k8s
	argo := {v | some v in {ents[i].contents.apiVersion | some i in k8s}; is_string(v); startswith(v, "argoproj.io/")}
	objects := {i | some i in k8s; obj := ents[i].contents; obj.kind != "Kustomization"; not argo[obj.apiVersion]}
	jsons := {i | some i; it := ents[i]; not k8s[i]; bundle_json_path(it.path)}
	kinds := kind_index(ents)
}

# The indexes of the entries of each kind, in order, without a scan per kind: the [kind, index]
# pairs sorted, and each kind's run of them cut out where it starts and stops. (regorus iterates
# on `pairs[p - 1]`; rego-cpp's object.union is not recursive and it cannot parse `{k: p + 1 | ...}`.)
kind_index(ents) := {k: array.slice(idxs, starts[k], stop) | some k; stop := ends[k]} if {
	pairs := sort([[k, i] | some i; k := ents[i].contents.kind])
	ks := [pair[0] | some pair in pairs]
	idxs := [pair[1] | some pair in pairs]
	before := array.concat([null], ks)
	after := array.concat(array.slice(ks, 1, count(ks)), [null])
	starts := {k: p | some p; k := ks[p]; before[p] != k}
	ends := {k: stop | some p; k := ks[p]; after[p] != k; stop := p + 1}
}

# A bundle of the combined input `ents` (read through its entries_index) as small values: its
# folder, the indexes of its entries (idx) and of its Kubernetes objects (members, and as a set:
# member_set), the index of its
# bundle.json (-1 if none), whom it belongs to (id: tenant, plugin, env; {} if unknown), the
# identity labels its objects carry, and the indexes of its entries by kind (kinds: of_kind);
# and, read once here, bundle.json's contents (json: [] if none) and its one Namespace entry
# (namespace: [] unless exactly one). A function that indexes the input (ents[i]) costs regorus
# about as much as a scan of it on every call; the checks read these instead.
make_bundle(ents, index, folder) := {
	"dir": concat("/", folder),
	"idx": idx,
	"members": [i | some i in idx; index.objects[i]],
	"member_set": {i | some i in idx; index.objects[i]},
	"info": info,
	"id": id,
	"labels": identity_label_values(id),
	"kinds": kinds,
	"json": [ents[info].contents | info >= 0],
	"namespace": [ents[nss[0]] | count(nss) == 1],
} if {
	idx := [i | some i; index.dirs[i] == folder]
	info := bundle_info(index, idx)
	id := bundle_identity(ents, idx, info)
	kinds := bundle_kinds(index, idx, folder)
	nss := object.get(kinds, "Namespace", [])
}

# The bundle of a list of entries that share one folder (unit tests).
bundle_of(ents) := make_bundle(ents, index, index.dirs[0]) if index := entries_index(ents)

bundle_info(index, idx) := js[0] if {
	js := [i | some i in idx; index.jsons[i]]
	count(js) > 0
} else := -1

identity_label_values(id) := {label_tenant: id.tenant, label_plugin: id.plugin, label_env: id.env} if id != {}

identity_label_values(id) := {} if id == {}

# tenant, plugin and env of a bundle: from bundle.json, else from its Namespace's labels.
bundle_identity(ents, idx, info) := {"tenant": j.tenant, "plugin": j.plugin, "env": j.env} if {
	j := ents[info].contents
	non_empty_string(j.tenant)
	non_empty_string(j.plugin)
	non_empty_string(j.env)
} else := {"tenant": label(ns, label_tenant), "plugin": label(ns, label_plugin), "env": label(ns, label_env)} if {
	some i in idx
	ns := ents[i].contents
	ns.kind == "Namespace"
	label(ns, label_tenant) != ""
	label(ns, label_plugin) != ""
	label(ns, label_env) != ""
} else := {}

# The entries of each kind of one folder: the index's own when the input is that one folder.
bundle_kinds(index, idx, folder) := index.kinds if {
	count(idx) == count(index.dirs)
} else := {k: mine | some k; l := index.kinds[k]; mine := [i | some i in l; index.dirs[i] == folder]}

# Indexes of the bundle's entries that are objects of a kind (in order).
of_kind(ents, b, kind) := l if {
	l := b.kinds[kind]
} else := []

# Where a bundle-wide violation is reported: the Namespace, else bundle.json, else the first file.
anchor(ents, b) := ents[ns[0]] if {
	ns := of_kind(ents, b, "Namespace")
	count(ns) > 0
} else := ents[b.info] if {
	b.info >= 0
} else := ents[b.idx[0]]

# A field of bundle.json's "isolation" block, when the renderer wrote one.
isolation_field(ents, b, key) := v if {
	v := b.json[0].isolation[key]
	non_empty_string(v)
}
