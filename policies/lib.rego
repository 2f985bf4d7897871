# Shared helpers of the policy gate: how the input is read and how a violation is worded.
#
# The policies run in two places with the same text:
#   - `conftest test` (CI). Without --combine, `input` is ONE Kubernetes object. With --combine,
#     `input` is an array of {"path": <file path>, "contents": <parsed file>}, one entry per file
#     (bundle.json and kustomization.yaml included).
#   - renderer/policy.py (in process, regopy): always the combined shape, one array per bundle,
#     paths "<env>/plugins/<tenant>/<plugin>/<file>", bundle.json included when known.
#
# Per-object rules iterate `subjects` (the one object, or every document of the combined input),
# so one evaluation covers a whole bundle. Cross-object rules iterate `bundles` (the combined
# input grouped by folder) and never fire on a single object.
#
# Every message is "<rule-id>: [<path>: ]<Kind>/<name>: <text>"; renderer/policy.py turns it into
# "<bundle>/<file>: <Kind>/<name>: <rule-id>: <text>".
#
# Rules are written as functions of a subject or bundle (check_*), which `deny`/`warn` apply to
# every subject or bundle. Unit tests call the check_* functions directly instead of
# `deny with input as ...`: rego-cpp (regopy 1.4-1.5) crashes the process when a rule that calls
# a built-in is evaluated under `with input as`. Function names never start with deny, warn or
# violation, which conftest would take for rules.
package main

import rego.v1

label_tenant := "plugins.adapstory.io/tenant"

label_plugin := "plugins.adapstory.io/plugin"

label_env := "plugins.adapstory.io/env"

annotation_topic_prefix := "plugins.adapstory.io/topic-prefix"

annotation_group_prefix := "plugins.adapstory.io/group-prefix"

# ---------------------------------------------------------------- reading the input

combined if is_array(input)

# Every document of the combined input, with its path and folder. A file holding several YAML
# documents (contents is an array) gives one entry per document.
items := [it |
	some entry in input
	some doc in documents(entry.contents)
	it := {"path": entry.path, "dir": dir_of(entry.path), "obj": doc}
] if combined

documents(contents) := [contents] if is_object(contents)

documents(contents) := [doc | some doc in contents; is_object(doc)] if is_array(contents)

# What the per-object rules look at.
subjects := items if combined

subjects := [{"path": "", "dir": "", "obj": input}] if not combined

# A subject for one object, as the unit tests build it.
subject(obj) := {"path": "", "dir": "", "obj": obj}

dir_of(path) := dir if {
	parts := split(path, "/")
	dir := concat("/", array.slice(parts, 0, count(parts) - 1))
}

# ---------------------------------------------------------------- reading objects

is_k8s(obj) if {
	is_string(obj.apiVersion)
	is_string(obj.kind)
}

# Objects that are not part of a plugin bundle's workload: kustomize's own file and Argo CD's.
not_bundle_object(obj) if obj.kind == "Kustomization"

not_bundle_object(obj) if startswith(obj.apiVersion, "argoproj.io/")

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

labels_of(obj) := l if {
	l := obj.metadata.labels
	is_object(l)
} else := {}

annotations_of(obj) := a if {
	a := obj.metadata.annotations
	is_object(a)
} else := {}

namespace_of(obj) := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
} else := ""

# A field that should hold an object or a list, or {} / [] when absent or of another type.
obj_at(x, key) := v if {
	v := x[key]
	is_object(v)
} else := {}

list_at(x, key) := v if {
	v := x[key]
	is_array(v)
} else := []

str_at(x, key) := v if {
	v := x[key]
	is_string(v)
} else := ""

# The value a label selector / pod selector selects everything with.
empty_selector(sel) if {
	is_object(sel)
	count(obj_at(sel, "matchLabels")) == 0
	count(list_at(sel, "matchExpressions")) == 0
}

# `name` contains `id` (a tenant id or plugin name: [a-z0-9-]) as a whole word, so that
# "riverside-academy" does not match "riverside-academy-evil".
contains_id(name, id) if {
	id != ""
	regex.match(concat("", [`(^|[^a-z0-9-])`, id, `([^a-z0-9-]|$)`]), name)
}

# ---------------------------------------------------------------- wording
#
# Messages are built with concat, not sprintf: rego-cpp's sprintf("%s") wraps a string in quotes
# when it came into a function as a literal argument.

str(x) := x if is_string(x)

str(x) := sprintf("%v", [x]) if not is_string(x)

# The parts of a message, joined; parts that are not strings are shown as JSON.
words(parts) := concat("", [str(p) | some p in parts])

describe(obj) := concat("/", [kind_of(obj), name_of(obj)])

violation(s, rule, text) := concat(": ", [rule, describe(s.obj), text]) if s.path == ""

violation(s, rule, text) := concat(": ", [rule, s.path, describe(s.obj), text]) if s.path != ""

# ---------------------------------------------------------------- bundles (combined input only)

is_bundle_json(it) if {
	endswith(concat("", ["/", it.path]), "/bundle.json")
	not is_k8s(it.obj)
}

bundle_member(it) if is_bundle_json(it)

bundle_member(it) if bundle_object(it.obj)

bundle_dirs contains it.dir if {
	some it in items
	bundle_member(it)
}

bundles := [make_bundle(its) |
	some dir in bundle_dirs
	its := [it | some it in items; it.dir == dir]
]

# A bundle: its folder, its documents, its bundle.json (or {}), and whom it belongs to.
make_bundle(its) := {"dir": its[0].dir, "items": its, "info": info, "id": bundle_identity(its, info)} if {
	info := bundle_info(its)
}

bundle_info(its) := it.obj if {
	some it in its
	is_bundle_json(it)
} else := {}

# tenant, plugin and env of a bundle: from bundle.json, else from its Namespace's labels.
bundle_identity(its, info) := {"tenant": info.tenant, "plugin": info.plugin, "env": info.env} if {
	is_string(info.tenant)
	is_string(info.plugin)
	is_string(info.env)
} else := {"tenant": l[label_tenant], "plugin": l[label_plugin], "env": l[label_env]} if {
	some it in its
	it.obj.kind == "Namespace"
	l := labels_of(it.obj)
} else := {}

# The bundle's documents that are Kubernetes objects of a kind.
of_kind(b, kind) := [it | some it in b.items; is_k8s(it.obj); it.obj.kind == kind]

# Where a bundle-wide violation is reported: the Namespace, else bundle.json, else the first file.
anchor(b) := ns[0] if {
	ns := of_kind(b, "Namespace")
	count(ns) > 0
} else := it if {
	some it in b.items
	is_bundle_json(it)
} else := b.items[0]

isolation_field(b, key) := v if {
	v := b.info.isolation[key]
	is_string(v)
	v != ""
}
