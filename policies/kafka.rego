# Kafka objects beyond the KafkaUser's ACLs (isolation.rego): the bundle's KafkaTopics, and the one
# way its pod gets its credentials (an RBAC Role in the Kafka namespace that reads exactly its own
# KafkaUser's secret, bound to exactly its own ServiceAccount).
#
# Who "its own" is: the bundle's KafkaUser (its name is the name of the secret Strimzi writes, its
# namespace is the Kafka namespace, its topic-prefix annotation is the tenant's topic namespace),
# and bundle.json's isolation block (kafkaSecret, kafkaNamespace, topics) when the renderer wrote one.
# Cross-object rules only: none of them can be judged from one object.
package main

import rego.v1

deny contains msg if {
	some n
	b := bundles[n]
	topics := of_kind(input, b, "KafkaTopic")
	count(topics) > 0
	some msg in kafka_topics_with(input, bundle_kafka_facts[n], topics)
}

deny contains msg if {
	some n
	b := bundles[n]
	rbac := bundle_rbac(input, b)
	count(rbac) > 0
	some msg in kafka_secret_with(input, b, bundle_kafka_facts[n], rbac)
}

# kafka_of of each bundle of the combined input (by its position in bundles), once per evaluation:
# the rules above and secrets.rego's read it.
bundle_kafka_facts := {n: kafka_of(input, b) | some n; b := bundles[n]} if combined

# KafkaTopics and the Kafka secret's RBAC live in the Kafka cluster's namespace (bundle.rego's
# outside_namespace); the rules below check which namespace that is.

# (ClusterRole and ClusterRoleBinding are no-cluster-scoped's.)
rbac_object(obj) if {
	startswith(obj.apiVersion, "rbac.authorization.k8s.io/")
	obj.kind in {"Role", "RoleBinding"}
}

# The bundle's Kafka facts: its KafkaUser (name, namespace, topic prefix) and bundle.json's record.
bundle_kafka(ents, b) := {
	"user": name_of(u),
	"namespace": namespace_of(u),
	"topic_prefix": annotation(u, annotation_topic_prefix),
	"cluster": label(u, "strimzi.io/cluster"),
	"secret": object.get(iso, "kafkaSecret", name_of(u)),
	"kafka_namespace": object.get(iso, "kafkaNamespace", namespace_of(u)),
	"topics": object.get(iso, "topics", null),
	"written": {acl_of(acl).name | some acl in items_of(u.spec.authorization.acls); "Write" in acl_operations(acl)},
} if {
	users := of_kind(ents, b, "KafkaUser")
	count(users) == 1
	u := ents[users[0]].contents
	iso := bundle_isolation(ents, b)
}

# The same, or {} when the bundle has no single KafkaUser (computed once per check).
kafka_of(ents, b) := k if {
	k := bundle_kafka(ents, b)
} else := {}

bundle_isolation(ents, b) := object.get(b.json[0], "isolation", {}) if b.info >= 0

bundle_isolation(ents, b) := {} if b.info < 0

topic_name(obj) := n if {
	n := obj.spec.topicName
	is_string(n)
} else := name_of(obj)

# ---------------------------------------------------------------- KafkaTopic

check_bundle_kafka_topics(ents, b) := kafka_topics_with(ents, kafka_of(ents, b), of_kind(ents, b, "KafkaTopic"))

kafka_topics_with(ents, k, topics) := {finding(ents[i], "kafka-topic-scope", "the bundle has a KafkaTopic but no single KafkaUser to own it") |
	k == {}
	some i in topics
} | {finding(ents[i], "kafka-topic-scope", reason) |
	k != {}
	some i in topics
	some reason in topic_reasons(ents[i].contents, k)
}

topic_reasons(t, k) := {words(["is in namespace '", namespace_of(t), "', not the Kafka namespace ", k.namespace, " of the bundle's KafkaUser"]) |
	namespace_of(t) != k.namespace
} | {words(["label strimzi.io/cluster is '", label(t, "strimzi.io/cluster"), "', not the KafkaUser's cluster ", k.cluster]) |
	label(t, "strimzi.io/cluster") != k.cluster
} | {words(["topic '", topic_name(t), "' is outside the tenant's topic namespace ", k.topic_prefix]) |
	not topic_in_scope(topic_name(t), {"topic_prefix": k.topic_prefix, "tenant": label(t, label_tenant)})
} | {words(["topic '", topic_name(t), "' is not one the bundle produces (its KafkaUser has no Write ACL on it)"]) |
	not topic_name(t) in k.written
} | {words(["topic '", topic_name(t), "' is not in bundle.json's isolation.topics"]) |
	is_array(k.topics)
	not topic_name(t) in k.topics
}

# ---------------------------------------------------------------- the KafkaUser's secret (RBAC)

check_bundle_kafka_secret(ents, b) := kafka_secret_with(ents, b, kafka_of(ents, b), bundle_rbac(ents, b))

# The bundle's RBAC objects (rbac_object): its Roles and RoleBindings of rbac.authorization.k8s.io.
bundle_rbac(ents, b) := [i | some i in array.concat(of_kind(ents, b, "Role"), of_kind(ents, b, "RoleBinding")); b.member_set[i]; rbac_object(ents[i].contents)]

kafka_secret_with(ents, b, k, rbac) := {finding(ents[i], "kafka-secret-scope", "an RBAC object in a bundle without a single KafkaUser: the only RBAC a bundle holds reads its KafkaUser's secret") |
	k == {}
	some i in rbac
} | {finding(ents[i], "kafka-secret-scope", reason) |
	k != {}
	sa := bundle_service_accounts(ents, b)
	ns := name_of(the_namespace(ents, b).contents)
	roles := {name_of(ents[r].contents) | some r in rbac; ents[r].contents.kind == "Role"}
	some i in rbac
	some reason in rbac_reasons(ents[i].contents, k, sa, ns, roles)
}

bundle_service_accounts(ents, b) := {name_of(ents[i].contents) | some i in of_kind(ents, b, "ServiceAccount")}

rbac_reasons(obj, k, sa, ns, roles) := {words(["is in namespace '", namespace_of(obj), "', not the Kafka namespace ", k.kafka_namespace]) |
	namespace_of(obj) != k.kafka_namespace
} | role_reasons(obj, k) | binding_reasons(obj, sa, ns, roles)

role_reasons(obj, k) := {words(["rules[", i, "] ", why]) |
	obj.kind == "Role"
	some i
	rule := obj.rules[i]
	some why in rule_reasons(rule, k)
} | {"has no rules" |
	obj.kind == "Role"
	count(object.get(obj, "rules", [])) == 0
}

rule_reasons(rule, k) := {words(["reaches beyond secrets: apiGroups ", object.get(rule, "apiGroups", []), ", resources ", object.get(rule, "resources", [])]) |
	not object.get(rule, "apiGroups", []) == [""]
} | {words(["reaches beyond secrets: apiGroups ", object.get(rule, "apiGroups", []), ", resources ", object.get(rule, "resources", [])]) |
	object.get(rule, "apiGroups", []) == [""]
	not object.get(rule, "resources", []) == ["secrets"]
} | {words(["has verbs ", object.get(rule, "verbs", []), ": only get"]) |
	not object.get(rule, "verbs", []) == ["get"]
} | {words(["has resourceNames ", object.get(rule, "resourceNames", []), ": only the bundle's KafkaUser secret ", k.secret]) |
	not object.get(rule, "resourceNames", []) == [k.secret]
} | {"uses nonResourceURLs" |
	count(object.get(rule, "nonResourceURLs", [])) > 0
}

binding_reasons(obj, sa, ns, roles) := {words(["roleRef is ", object.get(obj.roleRef, "kind", "-"), "/", object.get(obj.roleRef, "name", "-"), ", not a Role of this bundle"]) |
	not binding_to_own_role(obj, roles)
} | {words(["subjects[", i, "] is ", object.get(sub, "kind", "-"), " ", object.get(sub, "namespace", "-"), "/", object.get(sub, "name", "-"), ", not a ServiceAccount of the bundle's namespace ", ns]) |
	some i
	sub := obj.subjects[i]
	not own_service_account(sub, sa, ns)
} | {"has no subjects" |
	count(object.get(obj, "subjects", [])) == 0
} if obj.kind == "RoleBinding"
else := set()

binding_to_own_role(obj, roles) if {
	obj.roleRef.kind == "Role"
	obj.roleRef.name in roles
}

own_service_account(sub, sa, ns) if {
	sub.kind == "ServiceAccount"
	sub.namespace == ns
	sub.name in sa
}
