# What belongs to whom: a bundle reads only its own Vault prefix, its KafkaUser's ACLs stay inside
# its tenant's topic prefix and its own consumer-group prefix, and its database grants name only
# its own role, schema and database.
#
# Who "its own" is comes from the objects' identity labels (plugins.adapstory.io/tenant, /plugin;
# checked against bundle.json and the folder by bundle-identity), from the KafkaUser's annotations
# plugins.adapstory.io/topic-prefix and /group-prefix (the platform's configurable naming rule),
# and, across objects, from bundle.json's "isolation" block when the renderer writes one.
package main

import rego.v1

deny contains msg if {
	some s in subjects
	some msg in check_isolation(s)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_isolation(b)
}

check_isolation(s) := (((check_vault_prefix(s) | check_kafka_acls(s)) | check_db_grant(s)) | check_db_role(s))

check_bundle_isolation(b) := check_bundle_kafka(b) | check_bundle_db(b)

# ---------------------------------------------------------------- Vault (ExternalSecret)

vault_root := "adapstory/plugins/"

# adapstory/plugins/<plugin>/<tenant-id>/, from the object's identity labels.
vault_prefix(obj) := concat("", [vault_root, l[label_plugin], "/", l[label_tenant], "/"]) if {
	l := labels_of(obj)
	non_empty_string(l[label_plugin])
	non_empty_string(l[label_tenant])
}

# Every Vault key an ExternalSecret reads, with where it is written; "" when an entry reads
# something else than a key (a generator, or a find without a path).
external_secret_keys(obj) := array.concat(
	[{"field": words(["spec.data[", i, "].remoteRef.key"]), "key": str_at(obj_at(d, "remoteRef"), "key")} |
		entries := list_at(obj_at(obj, "spec"), "data")
		some i
		d := entries[i]
	],
	[{"field": words(["spec.dataFrom[", i, "]"]), "key": data_from_key(d)} |
		from := list_at(obj_at(obj, "spec"), "dataFrom")
		some i
		d := from[i]
	],
)

data_from_key(d) := str_at(d.extract, "key") if d.extract

data_from_key(d) := str_at(d.find, "path") if {
	not d.extract
	d.find
}

data_from_key(d) := "" if {
	not d.extract
	not d.find
}

under_prefix(key, prefix) if {
	startswith(key, prefix)
	count(key) > count(prefix)
	not path_tricks(key)
}

path_tricks(key) if {
	some segment in split(trim_suffix(key, "/"), "/")
	segment in {"", ".", ".."}
}

check_vault_prefix(s) := {violation(s, "vault-prefix", words([e.field, " reads '", e.key, "', outside the bundle's Vault prefix ", prefix])) |
	s.obj.kind == "ExternalSecret"
	prefix := vault_prefix(s.obj)
	some e in external_secret_keys(s.obj)
	not under_prefix(e.key, prefix)
}

# ---------------------------------------------------------------- Kafka (Strimzi KafkaUser)

kafka_acls(obj) := list_at(obj_at(obj_at(obj, "spec"), "authorization"), "acls")

acl_operations(acl) := array.concat(list_at(acl, "operations"), [op | op := acl.operation])

# The ACL rules that grant something (Strimzi's type defaults to allow; deny rules only take away).
allow_acls(obj) := [{"i": i, "name": str_at(r, "name"), "type": str_at(r, "type"), "pattern": pattern_of(r), "ops": acl_operations(acl)} |
	acls := kafka_acls(obj)
	some i
	acl := acls[i]
	object.get(acl, "type", "allow") != "deny"
	r := obj_at(acl, "resource")
]

pattern_of(r) := p if {
	p := r.patternType
	is_string(p)
} else := "literal"

acl_where(a) := words(["ACL ", a.i, " (", a.type, " ", a.name, ", ", a.pattern, ")"])

check_kafka_acls(s) := check_kafka_wildcards(s) | check_kafka_scope(s)

check_kafka_wildcards(s) := {violation(s, "kafka-acl-wildcard", words([acl_where(a), " ", reason])) |
	s.obj.kind == "KafkaUser"
	some a in allow_acls(s.obj)
	some reason in wildcard_reasons(a)
}

wildcard_reasons(a) := {"uses the wildcard *: name the topics and groups" |
	contains(a.name, "*")
} | {"has an empty resource name, which matches everything" |
	a.name == ""
	a.type != "cluster"
} | {"is a prefix pattern on topics: list topics literally (prefix patterns are for consumer groups and transactional ids)" |
	a.type == "topic"
	a.pattern == "prefix"
} | {"grants operation All: list the operations" |
	"All" in a.ops
}

check_kafka_scope(s) := {violation(s, "kafka-acl-scope", words([acl_where(a), " ", reason])) |
	s.obj.kind == "KafkaUser"
	tenant := labels_of(s.obj)[label_tenant]
	plugin := labels_of(s.obj)[label_plugin]
	some a in allow_acls(s.obj)
	some reason in scope_reasons(a, tenant, plugin, annotations_of(s.obj))
} | {violation(s, "kafka-acl-scope", reason) |
	s.obj.kind == "KafkaUser"
	tenant := labels_of(s.obj)[label_tenant]
	plugin := labels_of(s.obj)[label_plugin]
	some reason in prefix_annotation_reasons(tenant, plugin, annotations_of(s.obj))
}

topic_prefix(ann) := str_at(ann, annotation_topic_prefix)

group_prefix(ann) := str_at(ann, annotation_group_prefix)

scope_reasons(a, tenant, plugin, ann) := {"grants cluster-wide operations" |
	a.type == "cluster"
} | {words(["has resource type '", a.type, "', not topic, group or transactionalId"]) |
	not a.type in {"topic", "group", "transactionalId", "cluster"}
} | {words(["is not a topic of tenant ", tenant, topic_rule(ann)]) |
	a.type == "topic"
	not topic_in_scope(a.name, tenant, ann)
} | {words(["is not a ", a.type, " of plugin ", plugin, " of tenant ", tenant, group_rule(ann)]) |
	a.type in {"group", "transactionalId"}
	not group_in_scope(a, tenant, plugin, ann)
}

topic_rule(ann) := words([": topic names start with ", topic_prefix(ann)]) if topic_prefix(ann) != ""

topic_rule(ann) := ": topic names contain the tenant id" if topic_prefix(ann) == ""

group_rule(ann) := words([": names start with ", group_prefix(ann)]) if group_prefix(ann) != ""

group_rule(ann) := ": names contain the tenant id and the plugin name" if group_prefix(ann) == ""

# With the platform's prefix (annotation): the name starts with it and goes on. Without it: the
# contract's minimum, the tenant id as a whole word.
topic_in_scope(name, tenant, ann) if {
	prefix := topic_prefix(ann)
	prefix != ""
	startswith(name, prefix)
	count(name) > count(prefix)
	contains_id(name, tenant)
}

topic_in_scope(name, tenant, ann) if {
	topic_prefix(ann) == ""
	contains_id(name, tenant)
}

group_in_scope(a, tenant, plugin, ann) if {
	prefix := group_prefix(ann)
	prefix != ""
	startswith(a.name, prefix)
	contains_id(a.name, tenant)
}

group_in_scope(a, tenant, plugin, ann) if {
	group_prefix(ann) == ""
	contains_id(a.name, tenant)
	contains_id(a.name, plugin)
}

# The prefixes themselves must belong to the tenant (topics) and to the plugin (groups).
prefix_annotation_reasons(tenant, plugin, ann) := {words(["annotation ", annotation_topic_prefix, " is '", topic_prefix(ann), "', which does not name tenant ", tenant]) |
	topic_prefix(ann) != ""
	not contains_id(topic_prefix(ann), tenant)
} | {words(["annotation ", annotation_group_prefix, " is '", group_prefix(ann), "', which does not name tenant ", tenant, " and plugin ", plugin]) |
	group_prefix(ann) != ""
	not group_prefix_owned(group_prefix(ann), tenant, plugin)
}

group_prefix_owned(prefix, tenant, plugin) if {
	contains_id(prefix, tenant)
	contains_id(prefix, plugin)
}

# Across objects: the KafkaUser's prefixes are the ones bundle.json records.
check_bundle_kafka(b) := {violation(it, "kafka-acl-scope", words(["annotation ", annotation, " is '", str_at(annotations_of(it.obj), annotation), "', but bundle.json's isolation.", field, " is ", want])) |
	some it in of_kind(b, "KafkaUser")
	some field in ["topicPrefix", "groupPrefix"]
	want := isolation_field(b, field)
	annotation := {"topicPrefix": annotation_topic_prefix, "groupPrefix": annotation_group_prefix}[field]
	str_at(annotations_of(it.obj), annotation) != want
}

# ---------------------------------------------------------------- PostgreSQL (provider-sql Grant, Role)

# Fields that reach outside the bundle's schema, or that the policy cannot check statically.
grant_forbidden_fields := {
	"memberOf": "makes the role a member of another role",
	"memberOfRef": "makes the role a member of another role",
	"memberOfSelector": "makes the role a member of another role",
	"foreignDataWrappers": "grants on database-wide objects (foreign data wrappers)",
	"foreignServers": "grants on database-wide objects (foreign servers)",
	"schemaSelector": "picks its schema by selector: name it with schemaRef",
	"roleSelector": "picks its role by selector: name it with roleRef",
	"databaseRef": "picks its database by reference: write spec.forProvider.database",
	"databaseSelector": "picks its database by selector: write spec.forProvider.database",
}

for_provider(obj) := obj_at(obj_at(obj, "spec"), "forProvider")

check_db_grant(s) := {violation(s, "db-grant-scope", words(["spec.forProvider.", field, " ", why])) |
	sql_object(s.obj, "Grant")
	fp := for_provider(s.obj)
	some field
	why := grant_forbidden_fields[field]
	fp[field]
} | {violation(s, "db-grant-scope", "the grant is not limited to a schema: name the bundle's schema with spec.forProvider.schemaRef") |
	sql_object(s.obj, "Grant")
	fp := for_provider(s.obj)
	not fp.schema
	not fp.schemaRef.name
} | {violation(s, "db-grant-scope", "the grant names no database: write spec.forProvider.database") |
	sql_object(s.obj, "Grant")
	not non_empty_string(for_provider(s.obj).database)
}

role_privileges := ["superUser", "createDb", "createRole", "replication", "bypassRls"]

check_db_role(s) := {violation(s, "db-role-privileges", words(["the role has privilege ", p, ": a plugin's role only logs in"])) |
	sql_object(s.obj, "Role")
	privileges := obj_at(for_provider(s.obj), "privileges")
	some p in role_privileges
	privileges[p] == true
}

# The database-side name of a provider-sql object: crossplane.io/external-name, else its name.
external_name(obj) := n if {
	n := annotations_of(obj)["crossplane.io/external-name"]
	is_string(n)
} else := name_of(obj)

# provider-sql's PostgreSQL kinds (postgresql.sql.crossplane.io, and .m. for Crossplane v2).
sql_object(obj, kind) if {
	obj.kind == kind
	startswith(obj.apiVersion, "postgresql.sql.")
}

sql_objects(b, kind) := [it |
	some it in of_kind(b, kind)
	sql_object(it.obj, kind)
]

# Across objects: a Grant names this bundle's Role and Schema, in the Schema's database, and the
# names agree with bundle.json's isolation block when there is one.
check_bundle_db(b) := {violation(g, "db-grant-scope", words(["schemaRef names '", ref, "', which is not a Schema of this bundle"])) |
	some g in sql_objects(b, "Grant")
	ref := for_provider(g.obj).schemaRef.name
	not ref in {name_of(sc.obj) | some sc in sql_objects(b, "Schema")}
} | {violation(g, "db-grant-scope", words(["schema '", schema, "' is not the schema of this bundle"])) |
	some g in sql_objects(b, "Grant")
	schema := for_provider(g.obj).schema
	not schema in {external_name(sc.obj) | some sc in sql_objects(b, "Schema")}
} | {violation(g, "db-grant-scope", words(["roleRef names '", ref, "', which is not a Role of this bundle"])) |
	some g in sql_objects(b, "Grant")
	ref := for_provider(g.obj).roleRef.name
	not ref in {name_of(r.obj) | some r in sql_objects(b, "Role")}
} | {violation(g, "db-grant-scope", words(["role '", role, "' is not the role of this bundle"])) |
	some g in sql_objects(b, "Grant")
	role := for_provider(g.obj).role
	not role in {external_name(r.obj) | some r in sql_objects(b, "Role")}
} | {violation(g, "db-grant-scope", words(["the grant is on database '", db, "', but the bundle's schema is in database '", want, "'"])) |
	some g in sql_objects(b, "Grant")
	db := str_at(for_provider(g.obj), "database")
	some sc in sql_objects(b, "Schema")
	name_of(sc.obj) == for_provider(g.obj).schemaRef.name
	want := str_at(for_provider(sc.obj), "database")
	db != want
} | {violation(it, "db-grant-scope", words(["database '", db, "' is not the bundle's database ", want])) |
	want := isolation_field(b, "database")
	some kind in ["Grant", "Schema"]
	some it in sql_objects(b, kind)
	db := str_at(for_provider(it.obj), "database")
	db != want
} | {violation(it, "db-grant-scope", words(["schema '", external_name(it.obj), "' is not the bundle's schema ", want])) |
	want := isolation_field(b, "schema")
	some it in sql_objects(b, "Schema")
	external_name(it.obj) != want
} | {violation(it, "db-grant-scope", words(["role '", external_name(it.obj), "' is not the bundle's role ", want])) |
	want := isolation_field(b, "dbRole")
	some it in sql_objects(b, "Role")
	external_name(it.obj) != want
}
