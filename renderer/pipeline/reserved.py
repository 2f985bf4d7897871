"""Names the platform keeps for itself (issue 9, class 3 and 7): a bundle's fixed object names,
PostgreSQL's own schemas and the environment variables ``render.bundle_context`` sets. ``models``
refuses them in every input file, so the message names the file, the line and the field.
"""

from __future__ import annotations

# Names of a bundle's objects that do not derive from the plugin's name (templates/): a plugin
# named like one of them would collide with it (`NetworkPolicy default-deny`), so they are
# reserved. tests/test_hardening_names.py checks this list against every rendered bundle.
FIXED_OBJECT_NAMES = frozenset({"default-deny", "plugin-budget", "verify-image-signature", "db-credentials"})
# Suffixes the templates append to the plugin name (PrometheusRule, Grant, Secret)
DERIVED_SUFFIXES = ("", "-consumer-lag", "-schema", "-secrets")


def plugin_name(value: str) -> str:
    clash = sorted(f for f in FIXED_OBJECT_NAMES for suffix in DERIVED_SUFFIXES if value + suffix == f)
    if clash:
        raise ValueError(f"{value!r} is reserved: a bundle's own object {clash[0]!r} has that name; choose another plugin name")
    return value


def reserved_schema(name: str) -> bool:
    """PostgreSQL's own schemas (``public``, ``information_schema``, every ``pg_*``) are never a plugin's."""
    return name in ("public", "information_schema") or name.startswith("pg_")


# Every variable render.bundle_context sets, plain or from a secret: never a manifest's or an
# override's to set (tests check bundle_context against this list).
PLATFORM_ENV_NAMES = frozenset({
    "LOG_FORMAT", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "PLATFORM_TOKEN_FILE", "TENANT_ID",
    "KAFKA_GROUP_PREFIX", "KAFKA_TOPIC_PREFIX", "PGDATABASE", "PGSCHEMA", "PGUSER", "PGPASSWORD", "PGHOST", "PGPORT",
})


def own_env_name(value: str) -> str:
    if value in PLATFORM_ENV_NAMES:
        raise ValueError(f"{value} is set by the platform ({', '.join(sorted(PLATFORM_ENV_NAMES))}); "
                         "it cannot be set or overridden here")
    return value


def schema_name(value: str) -> str:
    if reserved_schema(value):
        raise ValueError(f"{value!r} is a PostgreSQL system schema (public, information_schema, pg_*); "
                         "a plugin owns a schema of its own")
    return value
