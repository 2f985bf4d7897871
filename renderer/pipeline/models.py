"""Typed, frozen models of every input file (CONTRACT §1), as pydantic v2 models.

``load`` parses YAML into these; nothing downstream sees a raw dict from the user. Unknown
fields are rejected (``extra="forbid"``), scalars are strict (a number is not a string), and
the rules that go beyond types live here as validators, so the message names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, model_validator

from renderer.core import quantity
from renderer.pipeline.podmodels import RunAs, Shutdown
from renderer.pipeline.reserved import FIXED_OBJECT_NAMES, PLATFORM_ENV_NAMES, reserved_schema  # noqa: F401
from renderer.pipeline.fields import (  # noqa: F401  (re-exported: the input models' field types)
    API_VERSION,
    DNS_LABEL_RE,
    SECRET_NAME_RE,
    VAULT_SEGMENT_RE,
    ENV_NAME_RE,
    TOPIC_RE,
    PROBE_PATH_RE,
    IMAGE_RE,
    MAX_COUNT,
    DnsLabel,
    EnvName,
    PluginName,
    Port,
    ProbePath,
    Quantity,
    SecretName,
    SemVer,
    ShortText,
    Strict,
    CpuMemory,
    TenantId,
    Topic,
    VaultKey,
    _pattern,
    _schema_name,
    _quantity,
    _label,
)

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


class OnUninstall(Strict):
    """What removing the install does to the tenant's data (schema, role, topics): kept unless this
    says deleteData: true (set it, let Argo CD sync, then remove the install)."""

    deleteData: bool = False


class InstallSpec(Strict):
    version: SemVer
    overrides: Overrides = Overrides()
    onUninstall: OnUninstall = OnUninstall()


class InstallMeta(Strict):
    name: PluginName


class PluginInstall(Strict):
    apiVersion: Literal["plugins.adapstory.io/v1"]
    kind: Literal["PluginInstall"]
    metadata: InstallMeta
    spec: InstallSpec


# <env>/platform.yaml's models live in platform_models; the input models are all reachable from here.
from renderer.pipeline.platform_models import (  # noqa: E402,F401
    PortSpec,
    Endpoint,
    Vault,
    VaultAdminAuth,
    VaultConfig,
    SecretStore,
    TokenSpec,
    TopicDefaults,
    KafkaPlatform,
    DatabasePlatform,
    ArgoCD,
    Defaults,
    Maxima,
    Observability,
    PlatformMeta,
    PlatformSpec,
    Platform,
)
