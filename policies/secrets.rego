# Secrets are isolated by the store, not only by the text: every ExternalSecret reads through a
# SecretStore of its own bundle (never a ClusterSecretStore); the Vault store logs in as the
# bundle's ServiceAccount under the bundle's Vault role; that role (vault-config-operator's
# KubernetesAuthEngineRole, in the platform-admin namespace) admits only that ServiceAccount in
# the bundle's namespace and carries only the bundle's Policy, which reads only the bundle's
# prefix; the kubernetes store reads only the Kafka namespace, and only the KafkaUser's secret.
# Cross-object rules only.
package main

import rego.v1

deny contains msg if {
	some n
	b := bundles[n]
	count(of_kind(input, b, "ExternalSecret")) + count(of_kind(input, b, "SecretStore")) > 0
	some msg in secret_stores_with(input, b, bundle_secret_facts_of[n])
}

deny contains msg if {
	some n
	b := bundles[n]
	count(of_kind(input, b, "KubernetesAuthEngineRole")) + count(of_kind(input, b, "Policy")) > 0
	some msg in vault_config_with(input, b, bundle_secret_facts_of[n])
}

# bundle_secret_facts of each bundle of the combined input (by its position in bundles; none for a
# bundle without exactly one Namespace), once per evaluation.
bundle_secret_facts_of := {n: f |
	some n
	b := bundles[n]
	f := secret_facts_with(input, b, bundle_isolation(input, b), bundle_kafka_facts[n], name_of(the_namespace(input, b).contents))
} if combined

# vault-config-operator's objects live in the platform-admin namespace (bundle.rego's
# outside_namespace; checked below).

vault_config_object(obj) if startswith(obj.apiVersion, "redhatcop.redhat.io/")

bundle_stores(ents, b) := {name_of(ents[i].contents): ents[i].contents.spec.provider | some i in of_kind(ents, b, "SecretStore")}

# What the bundle's stores may name: its ServiceAccounts, its Vault role, its Kafka namespace and secret.
bundle_secret_facts(ents, b) := secret_facts_with(ents, b, bundle_isolation(ents, b), kafka_of(ents, b), name_of(the_namespace(ents, b).contents))

secret_facts_with(ents, b, iso, k, ns) := {
	"sa": bundle_service_accounts(ents, b),
	"vault_role": object.get(iso, "vaultRole", ns),
	"vault_prefix": object.get(iso, "vaultPrefix", ""),
	"vault_ns": object.get(iso, "vaultConfigNamespace", ""),
	"kafka_ns": object.get(iso, "kafkaNamespace", object.get(k, "namespace", "")),
	"kafka_secret": object.get(iso, "kafkaSecret", object.get(k, "user", "")),
	"ns": ns,
}

# ---------------------------------------------------------------- SecretStore, ExternalSecret

check_bundle_secret_stores(ents, b) := secret_stores_with(ents, b, bundle_secret_facts(ents, b))

secret_stores_with(ents, b, f) := {finding(ents[i], "secret-store-scope", reason) |
	stores := bundle_stores(ents, b)
	some i in of_kind(ents, b, "ExternalSecret")
	es := ents[i].contents
	not external_secret_clean(es, stores, f)
	some reason in external_secret_reasons(es, stores, f)
} | {finding(ents[i], "secret-store-scope", reason) |
	some i in of_kind(ents, b, "SecretStore")
	p := ents[i].contents.spec.provider
	not store_clean(p, f)
	some reason in store_reasons(p, f)
}

# The fast paths of external_secret_reasons and store_reasons (as workload.rego's
# workload_clean): an ExternalSecret that names a SecretStore of the bundle (and, through a
# kubernetes store, reads only the KafkaUser's secret, by name), and a store with one vault or
# kubernetes provider that logs in as a ServiceAccount of the bundle (under the bundle's Vault
# role; reading the Kafka namespace), read by reference, without building the reasons. Anything
# else goes through the reasons, which say what is wrong. secrets_test.rego holds the two together.
external_secret_clean(es, stores, f) if {
	ref := es.spec.secretStoreRef
	ref.kind == "SecretStore"
	stores[ref.name]
	store_serves(es, stores[ref.name], f)
}

store_serves(es, store, f) if {
	not store.kubernetes
	not es.metadata.annotations["plugins.adapstory.io/secret-store-provider"] == "kubernetes"
} else := true if {
	store.kubernetes
	object.get(es.spec, "dataFrom", []) == []
	not foreign_remote_key(object.get(es.spec, "data", []), f.kafka_secret)
}

foreign_remote_key(entries, key) if {
	some entry in entries
	not entry.remoteRef.key == key
}

store_clean(p, f) if {
	object.keys(p) == {"vault"}
	object.keys(p.vault.auth) == {"kubernetes"}
	kube := p.vault.auth.kubernetes
	kube.role == f.vault_role
	kube.serviceAccountRef.name in f.sa
	not kube.secretRef
	not kube.serviceAccountRef.namespace
} else := true if {
	object.keys(p) == {"kubernetes"}
	k := p.kubernetes
	k.remoteNamespace == f.kafka_ns
	object.keys(k.auth) == {"serviceAccount"}
	k.auth.serviceAccount.name in f.sa
	not k.auth.serviceAccount.namespace
}

store_ref(es) := {"kind": object.get(ref, "kind", "SecretStore"), "name": object.get(ref, "name", "")} if {
	ref := object.get(es.spec, "secretStoreRef", {})
}

external_secret_reasons(es, stores, f) := {words(["reads through ", ref.kind, "/", ref.name, ": only a SecretStore of this bundle"]) |
	ref := store_ref(es)
	not own_store(ref, stores)
} | {words(["spec.data[", i, "].remoteRef.key reads secret '", object.get(entry.remoteRef, "key", ""), "' of namespace ", f.kafka_ns, ": only the bundle's KafkaUser secret ", f.kafka_secret]) |
	ref := store_ref(es)
	own_store(ref, stores)
	stores[ref.name].kubernetes
	some i
	entry := es.spec.data[i]
	not object.get(object.get(entry, "remoteRef", {}), "key", "") == f.kafka_secret
} | {words(["is annotated plugins.adapstory.io/secret-store-provider: kubernetes, but ", ref.kind, "/", ref.name, " is not a kubernetes SecretStore of this bundle"]) |
	not reads_vault(es)
	ref := store_ref(es)
	not kubernetes_store(ref, stores)
} | {"spec.dataFrom reads the Kafka namespace in bulk: name the KafkaUser's secret in spec.data" |
	ref := store_ref(es)
	own_store(ref, stores)
	stores[ref.name].kubernetes
	count(object.get(es.spec, "dataFrom", [])) > 0
}

kubernetes_store(ref, stores) if {
	own_store(ref, stores)
	stores[ref.name].kubernetes
}

own_store(ref, stores) if {
	ref.kind == "SecretStore"
	stores[ref.name]
}

store_reasons(p, f) := {words(["provider ", object.keys(p), ": a bundle's stores are one vault or kubernetes provider"]) |
	not count(object.keys(p)) == 1
} | {words(["provider ", k, " is not allowed: a bundle's stores are vault or kubernetes"]) |
	some k in object.keys(p)
	not k in {"vault", "kubernetes"}
} | vault_store_reasons(p, f) | kube_store_reasons(p, f)

vault_store_reasons(p, f) := {words(["the Vault store logs in with ", object.keys(object.get(p.vault, "auth", {})), ": only auth.kubernetes as the bundle's ServiceAccount"]) |
	not object.keys(object.get(p.vault, "auth", {})) == {"kubernetes"}
} | {words(["the Vault store logs in under role '", object.get(kube, "role", ""), "', not the bundle's Vault role ", f.vault_role]) |
	not object.get(kube, "role", "") == f.vault_role
} | {words(["the Vault store logs in as ServiceAccount '", object.get(sa, "name", ""), "', not one of the bundle's"]) |
	not object.get(sa, "name", "") in f.sa
} | {"the Vault store names a ServiceAccount namespace or a token secret: it logs in as the bundle's own ServiceAccount" |
	some k in {"secretRef"}
	kube[k]
} | {"the Vault store names a ServiceAccount namespace or a token secret: it logs in as the bundle's own ServiceAccount" |
	sa.namespace
} if {
	p.vault
	kube := object.get(object.get(p.vault, "auth", {}), "kubernetes", {})
	sa := object.get(kube, "serviceAccountRef", {})
}

vault_store_reasons(p, f) := set() if not p.vault

kube_store_reasons(p, f) := {words(["the kubernetes store reads namespace '", object.get(p.kubernetes, "remoteNamespace", "default"), "', not the Kafka namespace ", f.kafka_ns]) |
	not object.get(p.kubernetes, "remoteNamespace", "default") == f.kafka_ns
} | {words(["the kubernetes store logs in with ", object.keys(auth), ": only auth.serviceAccount, the bundle's own"]) |
	not object.keys(auth) == {"serviceAccount"}
} | {words(["the kubernetes store logs in as ServiceAccount '", object.get(sa, "name", ""), "', not one of the bundle's"]) |
	not object.get(sa, "name", "") in f.sa
} | {"the kubernetes store names a ServiceAccount namespace: it logs in as the bundle's own ServiceAccount" |
	sa.namespace
} if {
	p.kubernetes
	auth := object.get(p.kubernetes, "auth", {})
	sa := object.get(auth, "serviceAccount", {})
}

kube_store_reasons(p, f) := set() if not p.kubernetes

# ---------------------------------------------------------------- vault-config-operator

check_bundle_vault_config(ents, b) := vault_config_with(ents, b, bundle_secret_facts(ents, b))

vault_config_with(ents, b, f) := {finding(ents[i], "vault-role-scope", reason) |
	policies := {vault_object_name(ents[p].contents) | some p in of_kind(ents, b, "Policy"); vault_config_object(ents[p].contents)}
	some i in b.members
	startswith(ents[i].contents.apiVersion, "redhatcop.redhat.io/") # vault_config_object, written out
	not vault_object_clean(ents[i].contents, f, policies)
	some reason in vault_config_reasons(ents[i].contents, f, policies)
}

# The fast path of vault_config_reasons (as workload.rego's workload_clean): a
# KubernetesAuthEngineRole or a Policy in the platform-admin namespace, named as the bundle's Vault
# role, that admits only the bundle's namespace, ServiceAccounts and Policies, or whose policy text
# is the one path block the renderer writes (read under the bundle's prefix); read by reference,
# without building the reasons. Anything else goes through vault_config_reasons, which says what
# is wrong. secrets_test.rego holds the two together.
vault_object_clean(obj, f, policies) if {
	ns := obj.metadata.namespace
	is_string(ns)
	ns == f.vault_ns
	name := obj.spec.name
	is_string(name)
	name == f.vault_role
	vault_kind_clean(obj, f, policies)
}

vault_kind_clean(obj, f, policies) if {
	obj.kind == "KubernetesAuthEngineRole"
	obj.spec.targetNamespaces == {"targetNamespaces": [f.ns]}
	sas := obj.spec.targetServiceAccounts
	count({sa | some sa in sas} - f.sa) == 0
	count({p | some p in object.get(obj.spec, "policies", [])} - policies) == 0
} else := true if {
	obj.kind == "Policy"
	prefix := f.vault_prefix
	is_string(prefix)
	prefix != ""
	not contains(prefix, "\"")
	not contains(prefix, "}")
	path := concat("", ["secret/data/", prefix, "*"])
	obj.spec.policy == concat("", ["path \"", path, "\" {\n  capabilities = [\"read\"]\n}\n"])
	not path_tricks(trim_suffix(path, "*"))
}

vault_object_name(obj) := n if {
	n := obj.spec.name
	is_string(n)
} else := name_of(obj)

vault_config_reasons(obj, f, policies) := {words(["is in namespace '", namespace_of(obj), "', not the platform-admin namespace ", f.vault_ns]) |
	f.vault_ns != ""
	namespace_of(obj) != f.vault_ns
} | {words(["names Vault object '", vault_object_name(obj), "', not the bundle's Vault role ", f.vault_role]) |
	vault_object_name(obj) != f.vault_role
} | {words(["kind ", obj.kind, " is not allowed: a bundle's Vault side is one KubernetesAuthEngineRole and one Policy"]) |
	not obj.kind in {"KubernetesAuthEngineRole", "Policy"}
} | auth_role_reasons(obj, f, policies) | vault_policy_reasons(obj, f)

auth_role_reasons(obj, f, policies) := {words(["spec.targetNamespaces admits ", object.get(obj.spec, "targetNamespaces", {}), ": only {targetNamespaces: [", f.ns, "]}"]) |
	not object.get(obj.spec, "targetNamespaces", {}) == {"targetNamespaces": [f.ns]}
} | {words(["spec.targetServiceAccounts admits '", sa, "', not a ServiceAccount of the bundle"]) |
	some sa in object.get(obj.spec, "targetServiceAccounts", ["default"])
	not sa in f.sa
} | {words(["spec.policies names '", p, "', not the bundle's Policy"]) |
	some p in object.get(obj.spec, "policies", [])
	not p in policies
} if obj.kind == "KubernetesAuthEngineRole"
else := set()

# Each `path "..." { capabilities = ["read"] }` block of the HCL: the path lies under the bundle's
# prefix (".../<prefix>*") and the block grants read only.
vault_policy_reasons(obj, f) := {words(["the policy's path '", path, "' is outside the bundle's Vault prefix ", prefix]) |
	prefix := policy_prefix(obj, f)
	some block in policy_blocks(obj)
	path := split(block, "\"")[0]
	not policy_path_owned(path, prefix)
} | {words(["the policy grants more than read: '", trim(block, " \t\n"), "'"]) |
	some block in policy_blocks(obj)
	not endswith(replace(replace(split(block, "}")[0], " ", ""), "\n", ""), "{capabilities=[\"read\"]")
} | {"the policy has no path block" |
	count(policy_blocks(obj)) == 0
} | {"the policy text holds something besides path blocks" |
	not trim(split(object.get(obj.spec, "policy", ""), "path \"")[0], " \t\n") == ""
} if obj.kind == "Policy"
else := set()

# The prefix from bundle.json, else from the object's identity labels (isolation.rego's rule).
policy_prefix(obj, f) := f.vault_prefix if {
	f.vault_prefix != ""
} else := vault_prefix(obj) if {
	vault_prefix(obj)
} else := ""

policy_blocks(obj) := array.slice(parts, 1, count(parts)) if {
	parts := split(object.get(obj.spec, "policy", ""), "path \"")
}

policy_path_owned(path, prefix) if {
	prefix != ""
	endswith(path, concat("", ["/", prefix, "*"]))
	not path_tricks(trim_suffix(path, "*"))
}
