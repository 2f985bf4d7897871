"""What ``render.bundle_context`` needs for a bundle's credentials and data: its own SecretStores
(Vault, and the Kafka namespace), the Vault side of its role (vault-config-operator), its Kafka
credentials and topics, and what removing it keeps. Pure values; the templates hold no logic.

The design, in short (README, "The output"): a bundle reads secrets only through SecretStores in
its own namespace, logging in as its own ServiceAccount, so that Vault (a role named after the
bundle, whose policy reads only the bundle's prefix) and the Kubernetes API (a Role in the Kafka
namespace that can ``get`` exactly the bundle's KafkaUser secret) refuse everything else.
"""

from __future__ import annotations

import hashlib
import re

from renderer.pipeline.plan import BundlePlan, label_value

VAULT_STORE = "vault"  # SecretStore names, in the bundle's namespace
KAFKA_STORE = "kafka"
KAFKA_CREDENTIALS = "kafka-credentials"  # the Secret the Kafka ExternalSecret writes
SCRAM_KEYS = ["password", "sasl.jaas.config"]  # what Strimzi's User Operator writes for scram-sha-512
TLS_KEYS = ["user.crt", "user.key"]  # ... and for tls
# Crossplane may do everything but delete: removing an install keeps the tenant's schema and role.
KEEP_POLICIES = ["Observe", "Create", "Update", "LateInitialize"]
# Argo CD leaves the object in the cluster when its Application is deleted (an uninstall).
KEEP_ANNOTATIONS = {"argocd.argoproj.io/sync-options": "Delete=false"}


def _uses_kafka(plan: BundlePlan) -> bool:
    k = plan.spec.kafka
    return bool(k and (k.produces or k.consumes))


def produced_topics(plan: BundlePlan) -> list[str]:
    """The full names of the topics the bundle produces (and owns: one KafkaTopic each)."""
    k = plan.spec.kafka
    return sorted({plan.names.topic_prefix + t for t in (k.produces if k else ())})


def topic_object_name(topic: str) -> str:
    """A KafkaTopic's metadata.name: the topic name when it is a valid one (lowercase, at most 63
    characters), else a cleaned head plus a hash of the full topic name (spec.topicName is exact)."""
    clean = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip("-.")
    if clean != topic:
        clean = f"{clean[:40].rstrip('-.')}-{hashlib.sha256(topic.encode()).hexdigest()[:10]}"
    return label_value(clean)


def vault_policy(vault, prefix: str) -> str:
    """The bundle's Vault ACL policy (HCL): read its own prefix, nothing else."""
    data = f"{vault.path}/data/{prefix}" if vault.version == "v2" else f"{vault.path}/{prefix}"
    return f'path "{data}*" {{\n  capabilities = ["read"]\n}}\n'


def kafka_env(plan: BundlePlan) -> list[dict]:
    """Plain Kafka settings of the container, in name order."""
    k, names = plan.platform.kafka, plan.names
    env = [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": k.bootstrapServers},
           {"name": "KAFKA_GROUP_PREFIX", "value": names.group_prefix}]
    if k.authentication == "scram-sha-512":
        env.append({"name": "KAFKA_SASL_MECHANISM", "value": "SCRAM-SHA-512"})
    return env + [{"name": "KAFKA_SECURITY_PROTOCOL", "value": k.securityProtocol},
                  {"name": "KAFKA_TOPIC_PREFIX", "value": names.topic_prefix},
                  {"name": "KAFKA_USERNAME", "value": names.app}]


def kafka_secret_env(plan: BundlePlan) -> list[dict]:
    """The user's credentials, from the Secret the Kafka ExternalSecret writes."""
    if plan.platform.kafka.authentication == "scram-sha-512":
        pairs = [("KAFKA_PASSWORD", "password"), ("KAFKA_SASL_JAAS_CONFIG", "sasl.jaas.config")]
    else:
        pairs = [("KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN", "user.crt"), ("KAFKA_SSL_KEYSTORE_KEY", "user.key")]
    return [{"name": n, "secret": KAFKA_CREDENTIALS, "key": key} for n, key in pairs]


def kafka_context(plan: BundlePlan) -> dict:
    """The Kafka template values beyond the KafkaUser's ACLs."""
    k, names = plan.platform.kafka, plan.names
    return {
        # Strimzi's User Operator names the user's secret after the KafkaUser
        "secret": names.app, "reader": names.app, "store": KAFKA_STORE, "credentials": KAFKA_CREDENTIALS,
        "secret_keys": SCRAM_KEYS if k.authentication == "scram-sha-512" else TLS_KEYS,
        "topics": [{"topic": t, "name": topic_object_name(t)} for t in produced_topics(plan)],
        "partitions": k.topicDefaults.partitions, "replicas": k.topicDefaults.replicas,
    }


def secret_context(plan: BundlePlan) -> dict:
    """The bundle's Vault SecretStore and the vault-config-operator role and policy behind it."""
    names, vault, admin = plan.names, plan.platform.secretStore.vault, plan.platform.secretStore.vaultConfig
    has = bool(plan.spec.secrets)
    return {
        "secret_name": names.secret,
        "vault_store": None if not has else {
            "name": VAULT_STORE, "server": vault.server, "path": vault.path, "version": vault.version,
            "auth_path": vault.authPath, "role": names.app,
        },
        "vault_admin": None if not has else {
            "name": names.app, "namespace": admin.namespace, "prefix": names.vault_prefix,
            "authentication": {"path": admin.authentication.path, "role": admin.authentication.role,
                               "serviceAccount": {"name": admin.authentication.serviceAccount}},
            "auth_path": vault.authPath, "policy": vault_policy(vault, names.vault_prefix),
        },
        "retain_annotations": {} if plan.delete_data else dict(KEEP_ANNOTATIONS),
    }


def management_policies(plan: BundlePlan) -> list[str]:
    return ["*"] if plan.delete_data else list(KEEP_POLICIES)


def owned(plan: BundlePlan) -> dict:
    """bundle.json's record of the rest of what the bundle owns, and what an uninstall keeps."""
    out: dict = {"onUninstall": "delete" if plan.delete_data else "keep"}
    if _uses_kafka(plan):
        out.update(kafkaNamespace=plan.platform.kafka.namespace, kafkaUser=plan.names.app,
                   kafkaSecret=plan.names.app, topics=produced_topics(plan))
    if plan.spec.secrets:
        out.update(vaultRole=plan.names.app, vaultConfigNamespace=plan.platform.secretStore.vaultConfig.namespace)
    return out
