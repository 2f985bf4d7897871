"""Typed, frozen models of every input file (CONTRACT §1), as pydantic v2 models.

``load`` parses YAML into these; nothing downstream sees a raw dict from the user. Unknown
fields are rejected (``extra="forbid"``), scalars are strict (a number is not a string), and
the rules that go beyond types live here as validators, so the message names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from renderer.core import quantity
from renderer.core.semver import is_semver
from renderer.pipeline.podmodels import DEFAULT_RUN_AS, DEFAULT_SHUTDOWN, LabelKey, LabelValue, RunAs, Shutdown
from renderer.pipeline import reserved
from renderer.pipeline.reserved import FIXED_OBJECT_NAMES, PLATFORM_ENV_NAMES, reserved_schema  # noqa: F401

API_VERSION = "plugins.adapstory.io/v1"

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
SECRET_NAME_RE = re.compile(r"^[-._a-zA-Z0-9]+\Z")
VAULT_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
PROBE_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*\Z")
# repository[:tag]@sha256:<64 hex>; repository = host[:port]/path, lowercase path components
IMAGE_RE = re.compile(
    r"^(?P<repo>(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)"
    r"(?P<path>(/[a-z0-9]+([._-][a-z0-9]+)*)+))"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?"
    r"(@(?P<digest>sha256:[0-9a-f]{64}))?\Z"
)


def _label(what: str, limit: int):
    """A lowercase DNS-label-shaped name of at most ``limit`` characters (names, tenant ids)."""

    def check(value: str) -> str:
        if len(value) > limit or not DNS_LABEL_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not {what} (lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit, at most {limit} characters)"
            )
        return value

    return check


_dns_label = _label("a DNS label", 63)
_tenant_id = _label("a tenant id", 36)


def _plugin_name(value: str) -> str:
    return reserved.plugin_name(_dns_label(value))


def _own_env_name(value: str) -> str:
    return reserved.own_env_name(value)


def _schema_name(value: str) -> str:
    return reserved.schema_name(value)


def _semver(value: str) -> str:
    if not is_semver(value):
        raise ValueError(f"{value!r} is not a semantic version (e.g. 1.3.0)")
    return value


def _quantity(value: str | int) -> str:
    quantity.parse(value)
    return str(value)


def _vault_key(value: str) -> str:
    segments = value.split("/")
    bad = [s for s in segments if not VAULT_SEGMENT_RE.fullmatch(s) or s in (".", "..")]
    if bad or not value:
        raise ValueError(
            f"{value!r} is not a Vault key: use '/'-separated segments of [A-Za-z0-9._-] that start "
            "with a letter or digit (no leading, trailing or doubled '/', no '.' or '..')"
        )
    return value


def _pattern(regex: re.Pattern, what: str):
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
PluginName = Annotated[str, AfterValidator(_plugin_name)]
TenantId = Annotated[str, AfterValidator(_tenant_id)]
SemVer = Annotated[str, AfterValidator(_semver)]
Quantity = Annotated[str | int, AfterValidator(_quantity)]
VaultKey = Annotated[str, AfterValidator(_vault_key)]
EnvName = Annotated[str, Field(max_length=256), AfterValidator(_pattern(ENV_NAME_RE, "an environment variable name")),
                    AfterValidator(_own_env_name)]
SecretName = Annotated[str, Field(max_length=253), AfterValidator(_pattern(SECRET_NAME_RE, "a secret name ([-._a-zA-Z0-9]+)"))]
Topic = Annotated[str, Field(max_length=200), AfterValidator(_pattern(TOPIC_RE, "a Kafka topic name ([A-Za-z0-9._-])"))]
ProbePath = Annotated[str, Field(max_length=256), AfterValidator(_pattern(PROBE_PATH_RE, "an HTTP path"))]
Port = Annotated[int, Field(ge=1, le=65535)]
ShortText = Annotated[str, Field(max_length=1024)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- publishers/<name>.yaml


class NameMeta(Strict):
    name: DnsLabel


class CosignKey(Strict):
    publicKey: Annotated[str, Field(min_length=1, max_length=16384)]


class KeylessIdentity(Strict):
    issuer: ShortText
    subject: ShortText


class PublisherSpec(Strict):
    cosign: Optional[CosignKey] = None
    keyless: Optional[KeylessIdentity] = None
    registries: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(min_length=1)]
    # the catalog plugin names this publisher owns: no other publisher may ship a version of them
    plugins: Annotated[list[PluginName], Field(max_length=1000)]

    @model_validator(mode="after")
    def _one_trust(self):
        if (self.cosign is None) == (self.keyless is None):
            raise ValueError("give exactly one of cosign.publicKey or keyless")
        for prefix in self.registries:
            if prefix.endswith("/") or "//" in prefix or "@" in prefix or ":" in prefix.split("/", 1)[-1]:
                raise ValueError(f"registry prefix {prefix!r} must be a repository path like registry.example.com/acme")
        return self


class Publisher(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["Publisher"]
    metadata: NameMeta
    spec: PublisherSpec


# ---------------------------------------------------------------- catalog/<plugin>/<version>/plugin.yaml


class PluginMeta(Strict):
    name: PluginName
    publisher: DnsLabel
    version: SemVer


class SecretRef(Strict):
    name: SecretName
    vaultKey: VaultKey
    env: Optional[EnvName] = None


class CpuMemory(Strict):
    cpu: Quantity
    memory: Quantity


class Resources(Strict):
    requests: CpuMemory
    limits: CpuMemory
    storage: Quantity = "0"

    @model_validator(mode="after")
    def _requests_within_limits(self):
        for res in ("cpu", "memory"):
            if quantity.parse(getattr(self.requests, res)) > quantity.parse(getattr(self.limits, res)):
                raise ValueError(f"requests.{res} is larger than limits.{res}")
        return self


MAX_COUNT = 2**53  # every count (tokens, requests) stays exact in JSON and float


class Budgets(Strict):
    llmTokensPerDay: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    requestsPerSecond: Annotated[int, Field(ge=1, le=MAX_COUNT)]


class Replicas(Strict):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1, le=1000)]

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is larger than replicas.max ({self.max})")
        return self


class Kafka(Strict):
    produces: list[Topic] = []
    consumes: list[Topic] = []


class Database(Strict):
    schema_: Optional[Annotated[str, Field(max_length=63), AfterValidator(_pattern(re.compile(r"[a-z_][a-z0-9_]*"), "a PostgreSQL schema name ([a-z_][a-z0-9_]*)")), AfterValidator(_schema_name)]] = Field(None, alias="schema")


class Probes(Strict):
    liveness: ProbePath
    readiness: ProbePath


def _image(value: str) -> str:
    m = IMAGE_RE.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a valid image reference (host/path[:tag]@sha256:<64 hex>)")
    if not m.group("digest"):
        raise ValueError(f"{value!r} must be pinned by digest (…@sha256:<64 hex>)")
    return value


class PluginSpec(Strict):
    image: Annotated[str, Field(max_length=512), AfterValidator(_image)]
    port: Port
    env: dict[EnvName, Annotated[str, Field(max_length=4096)]] = {}
    secrets: list[SecretRef] = []
    resources: Resources
    budgets: Budgets
    replicas: Replicas
    egress: list[DnsLabel] = []
    kafka: Optional[Kafka] = None
    database: Optional[Database] = None
    probes: Probes
    securityContext: Optional[RunAs] = None  # else platform.yaml defaults.securityContext
    shutdown: Optional[Shutdown] = None  # else platform.yaml defaults.shutdown

    @model_validator(mode="after")
    def _checks(self):
        for field, items in (("secrets.name", [s.name for s in self.secrets]),
                             ("secrets.env", [s.env for s in self.secrets if s.env]),
                             ("egress", self.egress)):
            dupes = sorted({x for x in items if items.count(x) > 1})
            if dupes:
                raise ValueError(f"{field} repeats {', '.join(dupes)}")
        clash = sorted(set(self.env) & {s.env for s in self.secrets if s.env})
        if clash:
            raise ValueError(f"env and secrets both set {', '.join(clash)}")
        return self


class Plugin(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["Plugin"]
    metadata: PluginMeta
    spec: PluginSpec


# ---------------------------------------------------------------- tenants


class TenantMeta(Strict):
    name: TenantId


class Ceilings(Strict):
    cpu: Quantity
    memory: Quantity
    storage: Quantity
    llmTokensPerDay: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    requestsPerSecond: Annotated[int, Field(ge=0, le=MAX_COUNT)]


class TenantSpec(Strict):
    tier: Annotated[str, Field(max_length=63)] = "standard"
    ceilings: Ceilings


class Tenant(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["Tenant"]
    metadata: TenantMeta
    spec: TenantSpec


class BudgetOverrides(Strict):
    llmTokensPerDay: Optional[Annotated[int, Field(ge=0, le=MAX_COUNT)]] = None
    requestsPerSecond: Optional[Annotated[int, Field(ge=1, le=MAX_COUNT)]] = None


class ReplicaOverrides(Strict):
    min: Optional[Annotated[int, Field(ge=1)]] = None
    max: Optional[Annotated[int, Field(ge=1, le=1000)]] = None


class Overrides(Strict):
    budgets: Optional[BudgetOverrides] = None
    replicas: Optional[ReplicaOverrides] = None
    env: dict[EnvName, Annotated[str, Field(max_length=4096)]] = {}


class InstallSpec(Strict):
    version: SemVer
    overrides: Overrides = Overrides()


class InstallMeta(Strict):
    name: PluginName


class PluginInstall(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["PluginInstall"]
    metadata: InstallMeta
    spec: InstallSpec


# ---------------------------------------------------------------- <env>/platform.yaml


class PortSpec(Strict):
    port: Port
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class Endpoint(Strict):
    """Where a symbolic egress target lives: a namespace, the pods' labels and the ports."""

    namespace: DnsLabel
    podLabels: Annotated[dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=63)]], Field(min_length=1)]
    ports: Annotated[list[PortSpec], Field(min_length=1)]


class SecretStore(Strict):
    kind: Literal["SecretStore", "ClusterSecretStore"] = "ClusterSecretStore"
    name: DnsLabel
    refreshInterval: Annotated[str, Field(pattern=r"^[0-9]+(s|m|h)$")] = "1h"


class TokenSpec(Strict):
    audience: Annotated[str, Field(min_length=1, max_length=253)]
    expirationSeconds: Annotated[int, Field(ge=600, le=3600)] = 3600


class KafkaPlatform(Strict):
    cluster: DnsLabel
    namespace: DnsLabel
    authentication: Literal["scram-sha-512", "tls"] = "scram-sha-512"
    topicPrefix: Annotated[str, Field(min_length=1, max_length=100)] = "tenant.{tenant}."
    groupPrefix: Annotated[str, Field(min_length=1, max_length=150)] = "tenant.{tenant}.{plugin}."

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
