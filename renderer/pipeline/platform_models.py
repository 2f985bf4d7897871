"""``<env>/platform.yaml``: where egress targets live, the secret store, Kafka, the database,
Argo CD, defaults and maxima (README "platform.yaml").

Where it sits: ``pipeline``, beside ``models`` (which re-exports it), above ``fields``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from renderer.pipeline.podmodels import DEFAULT_RUN_AS, DEFAULT_SHUTDOWN, LabelKey, LabelValue, RunAs, Shutdown
from renderer.pipeline.reserved import FIXED_OBJECT_NAMES, PLATFORM_ENV_NAMES, reserved_schema  # noqa: F401
from renderer.pipeline.fields import MAX_COUNT, CpuMemory, DnsLabel, Port, Quantity, Strict


# ---------------------------------------------------------------- <env>/platform.yaml


class PortSpec(Strict):
    port: Port
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class Endpoint(Strict):
    """Where a symbolic egress target lives: a namespace, the pods' labels and the ports."""

    namespace: DnsLabel
    podLabels: Annotated[dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=63)]], Field(min_length=1)]
    ports: Annotated[list[PortSpec], Field(min_length=1)]


VaultPath = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")]


class Vault(Strict):
    """The Vault every bundle's own SecretStore reads, logging in as the bundle's ServiceAccount."""

    server: Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")]
    path: VaultPath = "secret"  # the KV mount
    version: Literal["v1", "v2"] = "v2"
    authPath: VaultPath = "kubernetes"  # Vault's Kubernetes auth mount


class VaultAdminAuth(Strict):
    path: VaultPath = "kubernetes"
    role: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    serviceAccount: DnsLabel


class VaultConfig(Strict):
    """Where the vault-config-operator CRs (each bundle's Vault role and policy) live: a
    platform-admin namespace whose ServiceAccount may write Vault auth roles and policies."""

    namespace: DnsLabel
    authentication: VaultAdminAuth


class SecretStore(Strict):
    refreshInterval: Annotated[str, Field(pattern=r"^[0-9]+(s|m|h)$")] = "1h"
    vault: Vault
    vaultConfig: VaultConfig


class TokenSpec(Strict):
    audience: Annotated[str, Field(min_length=1, max_length=253)]
    expirationSeconds: Annotated[int, Field(ge=600, le=3600)] = 3600


class TopicDefaults(Strict):
    partitions: Annotated[int, Field(ge=1, le=1000)] = 3
    replicas: Annotated[int, Field(ge=1, le=10)] = 3


class KafkaPlatform(Strict):
    cluster: DnsLabel
    namespace: DnsLabel
    authentication: Literal["scram-sha-512", "tls"] = "scram-sha-512"
    topicPrefix: Annotated[str, Field(min_length=1, max_length=100)] = "tenant.{tenant}."
    groupPrefix: Annotated[str, Field(min_length=1, max_length=150)] = "tenant.{tenant}.{plugin}."
    bootstrapServers: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$")]
    securityProtocol: Literal["SASL_SSL", "SASL_PLAINTEXT", "SSL"] = "SASL_SSL"
    topicDefaults: TopicDefaults = TopicDefaults()

    @model_validator(mode="after")
    def _rules(self):
        if "{tenant}" not in self.topicPrefix:
            raise ValueError("kafka.topicPrefix must contain {tenant}: every topic belongs to one tenant")
        if "{tenant}" not in self.groupPrefix or "{plugin}" not in self.groupPrefix:
            raise ValueError("kafka.groupPrefix must contain {tenant} and {plugin}: a group prefix belongs to one bundle")
        for text in (self.topicPrefix, self.groupPrefix):
            bare = text.replace("{tenant}", "").replace("{plugin}", "")
            if "{" in bare or "}" in bare or "*" in bare or not re.fullmatch(r"[A-Za-z0-9._-]*", bare):
                raise ValueError(f"{text!r}: only {{tenant}}, {{plugin}} and [A-Za-z0-9._-] are allowed")
            # a placeholder must end where a tenant id or plugin name cannot go on ('.' or '_'):
            # else tenant "a"'s names ("a-...") would also be the prefix of tenant "a-b"'s
            if re.search(r"\{(tenant|plugin)\}(?![._])", text):
                raise ValueError(f"{text!r}: follow {{tenant}} and {{plugin}} with '.' or '_', so that one tenant's "
                                 "prefix is never the start of another's")
        if (self.authentication == "tls") != (self.securityProtocol == "SSL"):
            raise ValueError("kafka.securityProtocol is SSL exactly when kafka.authentication is tls "
                             "(scram-sha-512 goes with SASL_SSL or SASL_PLAINTEXT)")
        return self


class DatabasePlatform(Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)] = "tenant_{tenant}"
    providerConfig: DnsLabel
    providerConfigKind: Literal["ProviderConfig", "ClusterProviderConfig"] = "ClusterProviderConfig"

    @model_validator(mode="after")
    def _rule(self):
        if "{tenant}" not in self.name or not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name.replace("{tenant}", "x")):
            raise ValueError("database.name must contain {tenant} and otherwise only [a-z0-9_]")
        return self


class ArgoCD(Strict):
    namespace: DnsLabel = "argocd"
    project: DnsLabel = "plugins"
    repoURL: Annotated[str, Field(min_length=1, max_length=1024)]
    targetRevision: Annotated[str, Field(min_length=1, max_length=255)] = "HEAD"
    server: Annotated[str, Field(min_length=1, max_length=1024)] = "https://kubernetes.default.svc"


class Defaults(Strict):
    # what the LimitRange gives containers that set nothing (the injected OTel collector sidecar);
    # the ResourceQuota makes room for one such sidecar per pod
    sidecarRequests: CpuMemory = CpuMemory(cpu="50m", memory="64Mi")
    sidecarLimits: CpuMemory = CpuMemory(cpu="200m", memory="256Mi")
    targetCPUUtilization: Annotated[int, Field(ge=10, le=100)] = 80
    maxContainerCPU: Quantity = "4"
    maxContainerMemory: Quantity = "8Gi"
    securityContext: RunAs = DEFAULT_RUN_AS  # for plugins whose manifest names no UID
    shutdown: Shutdown = DEFAULT_SHUTDOWN  # for plugins whose manifest says nothing


class Maxima(Strict):
    """What the platform lets a tenant claim at most: a tenant.yaml's ceilings above these, or a
    plugin's (or override's) replicas.max above ``replicas``, are rejected."""

    cpu: Quantity = "64"
    memory: Quantity = "256Gi"
    storage: Quantity = "1Ti"
    llmTokensPerDay: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 100_000_000
    requestsPerSecond: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 5_000
    replicas: Annotated[int, Field(ge=1, le=1000)] = 50


class Observability(Strict):
    otelSidecar: Annotated[str, Field(min_length=1, max_length=253)]
    consumerLagMetric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] = "kafka_consumergroup_lag_seconds"
    collector: Optional[Endpoint] = None  # where the sidecar exports OTLP to; required while it is injected
    ruleLabels: dict[LabelKey, LabelValue] = {}  # what the platform Prometheus' ruleSelector matches

    @model_validator(mode="after")
    def _collector(self):
        if self.otelSidecar != "false" and self.collector is None:
            raise ValueError("observability.collector is required while the OpenTelemetry sidecar is injected: "
                             "give the collector's namespace, podLabels and OTLP ports (4317, 4318)")
        return self


class PlatformMeta(Strict):
    name: DnsLabel


class PlatformSpec(Strict):
    kubernetesVersion: Annotated[str, Field(pattern=r"^1\.[0-9]+$")]
    argocd: ArgoCD
    secretStore: SecretStore
    serviceAccountToken: TokenSpec
    egressTargets: dict[DnsLabel, Endpoint]
    ingressFrom: DnsLabel = "plugin-gateway"
    kafka: KafkaPlatform
    database: DatabasePlatform
    observability: Observability
    defaults: Defaults = Defaults()
    maxima: Maxima = Maxima()

    @model_validator(mode="after")
    def _targets(self):
        for required in ("dns", self.ingressFrom):
            if required not in self.egressTargets:
                raise ValueError(f"egressTargets must define {required!r}")
        return self


class Platform(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["Platform"]
    metadata: PlatformMeta
    spec: PlatformSpec
