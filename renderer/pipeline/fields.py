"""The field types every input model shares: strict models, DNS labels, quantities, semver,
Vault keys, environment-variable and secret names, each matched as a whole string.

Where it sits: ``pipeline``, below ``models`` and ``platform_models``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from renderer.core import quantity
from renderer.core.semver import is_semver
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


MAX_COUNT = 2**53  # every count (tokens, requests) stays exact in JSON and float


class CpuMemory(Strict):
    cpu: Quantity
    memory: Quantity
