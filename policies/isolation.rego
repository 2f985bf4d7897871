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
	some i in input_index.kinds.ExternalSecret
	s := input[i]
	some msg in check_vault_prefix(s)
}

deny contains msg if {
	some i in input_index.kinds.KafkaUser
	s := input[i]
	some msg in check_kafka_acls(s)
}

deny contains msg if {
	some i in input_index.kinds.Grant
	s := input[i]
	some msg in check_db_grant(s)
}

deny contains msg if {
	some i in input_index.kinds.Role
	s := input[i]
	some msg in check_db_role(s)
}

deny contains msg if {
	some b in bundles
	some msg in check_bundle_isolation(input, b)
}

isolation_deny(s) := check_isolation(s) if s.contents.kind in isolation_kinds
else := set()

isolation_kinds := {"ExternalSecret", "KafkaUser", "Grant", "Role"}

check_isolation(s) := ((check_vault_prefix(s) | check_kafka_acls(s)) | check_db_grant(s)) | check_db_role(s)

check_bundle_isolation(ents, b) := check_bundle_kafka(ents, b) | check_bundle_db(ents, b)

# ---------------------------------------------------------------- Vault (ExternalSecret)

vault_root := "adapstory/plugins/"

# adapstory/plugins/<plugin>/<tenant-id>/, from the object's identity labels.
vault_prefix(obj) := concat("", [vault_root, label(obj, label_plugin), "/", label(obj, label_tenant), "/"]) if {
	label(obj, label_plugin) != ""
	label(obj, label_tenant) != ""
}

# The Vault key an entry of spec.data / spec.dataFrom reads; "" when it reads something other
# than a key under a path (a generator, or a find without a path).
remote_key(entry) := k if {
	k := entry.remoteRef.key
	is_string(k)
} else := ""

data_from_key(entry) := k if {
	k := entry.extract.key
	is_string(k)
} else := k if {
	not entry.extract
	k := entry.find.path
	is_string(k)
} else := ""

# An ExternalSecret reads Vault unless it says it reads the bundle's kubernetes store (the Kafka
# credentials); secrets.rego checks across objects that this annotation tells the truth.
reads_vault(es) if not annotation(es, "plugins.adapstory.io/secret-store-provider") == "kubernetes"

under_prefix(key, prefix) if {
	startswith(key, prefix)
	count(key) > count(prefix)
	not path_tricks(key)
}

path_tricks(key) if {
	some segment in split(trim_suffix(key, "/"), "/")
	segment in {"", ".", ".."}
}

check_vault_prefix(s) := {finding(s, "vault-prefix", words(["spec.data[", i, "].remoteRef.key reads '", key, "', outside the bundle's Vault prefix ", prefix])) |
	s.contents.kind == "ExternalSecret"
	reads_vault(s.contents)
	prefix := vault_prefix(s.contents)
	some i
	entry := s.contents.spec.data[i]
	key := remote_key(entry)
	not under_prefix(key, prefix)
} | {finding(s, "vault-prefix", words(["spec.dataFrom[", i, "] reads '", key, "', outside the bundle's Vault prefix ", prefix])) |
	s.contents.kind == "ExternalSecret"
	reads_vault(s.contents)
	prefix := vault_prefix(s.contents)
	some i
	entry := s.contents.spec.dataFrom[i]
	key := data_from_key(entry)
	not under_prefix(key, prefix)
}

# ---------------------------------------------------------------- Kafka (Strimzi KafkaUser)

# One ACL rule as small values. Strimzi's rule type defaults to allow; deny rules only take away,
# so only allow rules are checked.
acl_of(acl) := {"name": get_str(r, "name"), "type": get_str(r, "type"), "pattern": pattern_of(r), "ops": acl_operations(acl)} if {
	r := acl_resource(acl)
}

acl_resource(acl) := r if {
	r := acl.resource
	is_object(r)
} else := {}

allow_acl(acl) if not acl.type == "deny"

get_str(x, key) := v if {
	v := x[key]
	is_string(v)
} else := ""

pattern_of(r) := p if {
	p := r.patternType
	is_string(p)
} else := "literal"

acl_operations(acl) := array.concat([op | some op in items_of(acl.operations)], [op | op := acl.operation])

acl_where(i, a) := words(["ACL ", i, " (", a.type, " '", a.name, "', ", a.pattern, ")"])

# Every finding on a KafkaUser's ACLs, in one pass over them: [rule, reason] pairs per ACL.
check_kafka_acls(s) := {finding(s, problem[0], words([acl_where(i, a), " ", problem[1]])) |
	s.contents.kind == "KafkaUser"
	owner := kafka_owner(s.contents)
	some i
	acl := s.contents.spec.authorization.acls[i]
	allow_acl(acl)
	not acl_clean(acl, owner)
	a := acl_of(acl)
	some problem in acl_problems(a, owner)
} | {finding(s, "kafka-acl-scope", reason) |
	s.contents.kind == "KafkaUser"
	owner := kafka_owner(s.contents)
	owner.tenant != ""
	owner.plugin != ""
	not platform_prefixes(owner)
	some reason in prefix_annotation_reasons(owner)
}

acl_problems(a, owner) := {["kafka-acl-wildcard", reason] | some reason in wildcard_reasons(a)} | {["kafka-acl-scope", reason] |
	owner.tenant != ""
	owner.plugin != ""
	some reason in scope_reasons(a, owner)
}

check_kafka_wildcards(s) := {f | some f in check_kafka_acls(s); startswith(f, "kafka-acl-wildcard: ")}

check_kafka_scope(s) := {f | some f in check_kafka_acls(s); startswith(f, "kafka-acl-scope: ")}

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

# Whom a KafkaUser belongs to, and the platform's prefixes for its tenant's topics and its groups.
kafka_owner(obj) := {"tenant": label(obj, label_tenant), "plugin": label(obj, label_plugin), "topic_prefix": annotation(obj, annotation_topic_prefix), "group_prefix": annotation(obj, annotation_group_prefix)}

scope_reasons(a, owner) := {"grants cluster-wide operations" |
	a.type == "cluster"
} | {words(["has resource type '", a.type, "', not topic, group or transactionalId"]) |
	not a.type in {"topic", "group", "transactionalId", "cluster"}
} | {words(["is not a topic of tenant ", owner.tenant, topic_rule(owner)]) |
	a.type == "topic"
	not topic_in_scope(a.name, owner)
} | {words(["is not a ", a.type, " of plugin ", owner.plugin, " of tenant ", owner.tenant, group_rule(owner)]) |
	a.type in {"group", "transactionalId"}
	not group_in_scope(a.name, owner)
}

topic_rule(owner) := words([": topic names start with ", owner.topic_prefix]) if owner.topic_prefix != ""

topic_rule(owner) := ": topic names contain the tenant id" if owner.topic_prefix == ""

group_rule(owner) := words([": names start with ", owner.group_prefix]) if owner.group_prefix != ""

group_rule(owner) := ": names contain the tenant id and the plugin name" if owner.group_prefix == ""

# With the platform's prefix (annotation, itself checked to name the tenant): the name starts with
# it and goes on. Without it: the contract's minimum, the tenant id as a whole word.
topic_in_scope(name, owner) if {
	owner.topic_prefix != ""
	startswith(name, owner.topic_prefix)
	count(name) > count(owner.topic_prefix)
}

topic_in_scope(name, owner) if {
	owner.topic_prefix == ""
	contains_id(name, owner.tenant)
}

group_in_scope(name, owner) if {
	owner.group_prefix != ""
	startswith(name, owner.group_prefix)
}

group_in_scope(name, owner) if {
	owner.group_prefix == ""
	contains_id(name, owner.tenant)
	contains_id(name, owner.plugin)
}

# The prefixes themselves belong to the tenant (topics) and to the plugin (groups).
prefix_annotation_reasons(owner) := {words(["annotation ", annotation_topic_prefix, " is '", owner.topic_prefix, "', which does not name tenant ", owner.tenant]) |
	owner.topic_prefix != ""
	not contains_id(owner.topic_prefix, owner.tenant)
} | {words(["annotation ", annotation_group_prefix, " is '", owner.group_prefix, "', which does not name tenant ", owner.tenant, " and plugin ", owner.plugin]) |
	owner.group_prefix != ""
	not group_prefix_owned(owner)
}

group_prefix_owned(owner) if {
	contains_id(owner.group_prefix, owner.tenant)
	contains_id(owner.group_prefix, owner.plugin)
}

kafka_isolation_fields := {"topicPrefix": annotation_topic_prefix, "groupPrefix": annotation_group_prefix}

# Across objects: the KafkaUser's prefixes are the ones bundle.json records.
check_bundle_kafka(ents, b) := {finding(it, "kafka-acl-scope", words(["annotation ", key, " is '", annotation(it.contents, key), "', but bundle.json's isolation.", field, " is ", want])) |
	some i in of_kind(ents, b, "KafkaUser")
	it := ents[i]
	not kafka_prefixes_recorded(it.contents, b)
	some field
	key := kafka_isolation_fields[field]
	want := isolation_field(ents, b, field)
	annotation(it.contents, key) != want
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

grant_forbidden_keys := {k | grant_forbidden_fields[k]}

# provider-sql's PostgreSQL kinds (postgresql.sql.crossplane.io, and .m. for Crossplane v2).
sql_object(obj, kind) if {
	obj.kind == kind
	is_string(obj.apiVersion)
	startswith(obj.apiVersion, "postgresql.sql.")
}

check_db_grant(s) := {finding(s, "db-grant-scope", words(["spec.forProvider.", field, " ", why])) |
	sql_object(s.contents, "Grant")
	provider := s.contents.spec.forProvider
	is_object(provider)
	some field in object.keys(provider) & grant_forbidden_keys
	why := grant_forbidden_fields[field]
} | {finding(s, "db-grant-scope", "the grant is not limited to a schema: name the bundle's schema with spec.forProvider.schemaRef") |
	sql_object(s.contents, "Grant")
	not s.contents.spec.forProvider.schema
	not s.contents.spec.forProvider.schemaRef.name
} | {finding(s, "db-grant-scope", "the grant names no database: write spec.forProvider.database") |
	sql_object(s.contents, "Grant")
	not non_empty_string(grant_database(s.contents))
}

# The database a provider-sql Grant names; null when it names none.
grant_database(obj) := d if {
	d := obj.spec.forProvider.database
} else := null

role_privileges := ["superUser", "createDb", "createRole", "replication", "bypassRls"]

check_db_role(s) := {finding(s, "db-role-privileges", words(["the role has privilege ", p, ": a plugin's role only logs in"])) |
	sql_object(s.contents, "Role")
	some p in role_privileges
	s.contents.spec.forProvider.privileges[p] == true
}

# The database-side name of a provider-sql object: crossplane.io/external-name, else its name.
external_name(obj) := n if {
	n := annotation(obj, "crossplane.io/external-name")
	n != ""
} else := name_of(obj)

sql_of_kind(ents, b, kind) := [i | some i in of_kind(ents, b, kind); sql_object(ents[i].contents, kind)]

# The bundle's provider-sql objects by kind, and the names its Grants may use.
bundle_db(ents, b) := {
	"grants": sql_of_kind(ents, b, "Grant"),
	"schemas": schemas,
	"schema_names": {name_of(ents[i].contents) | some i in schemas},
	"schema_external": {external_name(ents[i].contents) | some i in schemas},
	"roles": roles,
	"role_names": {name_of(ents[i].contents) | some i in roles},
	"role_external": {external_name(ents[i].contents) | some i in roles},
} if {
	schemas := sql_of_kind(ents, b, "Schema")
	roles := sql_of_kind(ents, b, "Role")
}

# Across objects: a Grant names this bundle's Role and Schema, in the Schema's database, and the
# names agree with bundle.json's isolation block when there is one.
check_bundle_db(ents, b) := check_bundle_db_with(ents, b, bundle_db(ents, b))

check_bundle_db_with(ents, b, db) := ((check_bundle_grant_refs(ents, db) | check_bundle_grant_database(ents, db)) | db_names_with(ents, b, db)) if {
	count(db.grants) + count(db.schemas) + count(db.roles) > 0
} else := set()

check_bundle_grant_refs(ents, db) := {finding(ents[g], "db-grant-scope", words(["schemaRef names '", ref, "', which is not a Schema of this bundle"])) |
	some g in db.grants
	ref := ents[g].contents.spec.forProvider.schemaRef.name
	not ref in db.schema_names
} | {finding(ents[g], "db-grant-scope", words(["schema '", schema, "' is not the schema of this bundle"])) |
	some g in db.grants
	schema := ents[g].contents.spec.forProvider.schema
	not schema in db.schema_external
} | {finding(ents[g], "db-grant-scope", words(["roleRef names '", ref, "', which is not a Role of this bundle"])) |
	some g in db.grants
	ref := ents[g].contents.spec.forProvider.roleRef.name
	not ref in db.role_names
} | {finding(ents[g], "db-grant-scope", words(["role '", role, "' is not the role of this bundle"])) |
	some g in db.grants
	role := ents[g].contents.spec.forProvider.role
	not role in db.role_external
}

check_bundle_grant_database(ents, db) := {finding(ents[g], "db-grant-scope", words(["the grant is on database '", get(grant, "database"), "', but the bundle's schema is in database '", get(schema, "database"), "'"])) |
	some g in db.grants
	grant := ents[g].contents.spec.forProvider
	some i in db.schemas
	name_of(ents[i].contents) == grant.schemaRef.name
	schema := ents[i].contents.spec.forProvider
	not grant.database == schema.database
}

check_bundle_db_names(ents, b, db) := {finding(ents[i], "db-grant-scope", words(["database '", get(ents[i].contents.spec.forProvider, "database"), "' is not the bundle's database ", want])) |
	want := isolation_field(ents, b, "database")
	some i in array.concat(db.grants, db.schemas)
	not ents[i].contents.spec.forProvider.database == want
} | {finding(ents[i], "db-grant-scope", words(["schema '", external_name(ents[i].contents), "' is not the bundle's schema ", want])) |
	want := isolation_field(ents, b, "schema")
	some i in db.schemas
	external_name(ents[i].contents) != want
} | {finding(ents[i], "db-grant-scope", words(["role '", external_name(ents[i].contents), "' is not the bundle's role ", want])) |
	want := isolation_field(ents, b, "dbRole")
	some i in db.roles
	external_name(ents[i].contents) != want
}
