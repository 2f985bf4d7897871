# The fast paths of isolation.rego's checks (as workload.rego's workload_clean): conditions, read
# by reference and without regular expressions, under which a check finds nothing in the
# renderer's shape of an object or a bundle. The deny rules test them first; whatever they do not
# hold for goes through the check itself, which says what is wrong. isolation_test.rego holds
# each fast path and its check together.
package main

import rego.v1

# The fast path of acl_problems (as workload.rego's workload_clean): a literal topic ACL, or a
# group or transactionalId ACL, named without * under the owner's platform prefix, that lists
# its operations (without All), read by reference; acl_problems finds nothing in it. Any other
# ACL goes through acl_of and acl_problems, which say what is wrong.
acl_clean(acl, owner) if {
	r := acl.resource
	r.type == "topic"
	r.patternType == "literal"
	name := r.name
	is_string(name)
	owner.topic_prefix != ""
	startswith(name, owner.topic_prefix)
	count(name) > count(owner.topic_prefix)
	acl_operations_listed(acl, name)
} else := true if {
	r := acl.resource
	r.type in {"group", "transactionalId"}
	name := r.name
	is_string(name)
	owner.group_prefix != ""
	startswith(name, owner.group_prefix)
	name != ""
	acl_operations_listed(acl, name)
}

acl_operations_listed(acl, name) if {
	not contains(name, "*")
	ops := acl.operations
	is_array(ops)
	not "All" in ops
	not acl.operation
}

# A fast path of prefix_annotation_reasons, without its regular expressions: the platform's own
# prefixes (tenant.<tenant>. and tenant.<tenant>.<plugin>.) of ids made only of [a-z0-9-] name
# their tenant and plugin as whole words (contains_id), so they give no reason. Other prefixes go
# through prefix_annotation_reasons.
platform_prefixes(owner) if {
	plain_id(owner.tenant)
	plain_id(owner.plugin)
	owner.topic_prefix == concat("", ["tenant.", owner.tenant, "."])
	owner.group_prefix == concat("", ["tenant.", owner.tenant, ".", owner.plugin, "."])
}

# A non-empty string of [a-z0-9-] only (a literal in contains_id's regular expression).
plain_id(id) if {
	is_string(id)
	id != ""
	trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

# The fast path of check_bundle_kafka: the KafkaUser's prefix annotations are bundle.json's
# isolation.topicPrefix and groupPrefix, read by reference.
kafka_prefixes_recorded(u, b) if {
	iso := b.json[0].isolation
	u.metadata.annotations["plugins.adapstory.io/topic-prefix"] == iso.topicPrefix
	u.metadata.annotations["plugins.adapstory.io/group-prefix"] == iso.groupPrefix
}

# check_bundle_db_names, with a fast path: every Grant and Schema is in bundle.json's
# isolation.database, and the Schemas' and Roles' crossplane.io/external-name annotations are its
# schema and dbRole, read by reference (check_bundle_db_names then finds nothing).
db_names_with(ents, b, db) := set() if {
	iso := b.json[0].isolation
	want := iso.database
	count([i | some i in array.concat(db.grants, db.schemas); not ents[i].contents.spec.forProvider.database == want]) == 0
	schema := iso.schema
	count([i | some i in db.schemas; not ents[i].contents.metadata.annotations["crossplane.io/external-name"] == schema]) == 0
	role := iso.dbRole
	count([i | some i in db.roles; not ents[i].contents.metadata.annotations["crossplane.io/external-name"] == role]) == 0
} else := check_bundle_db_names(ents, b, db)
