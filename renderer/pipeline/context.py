"""Everything a bundle's templates read, as plain values: the templates hold no logic.

Where it sits: ``pipeline``, below ``render`` (which feeds ``bundle_context(plan)`` to every
template), above ``plan`` and ``stores``.
"""

from __future__ import annotations

import re


from renderer.core import quantity
from renderer.core.errors import RendererBroken
from renderer.pipeline import stores
from renderer.pipeline.plan import BundlePlan, label_value
from renderer.trust.signatures import TLOG_SETTINGS

MANAGED_BY = "plugin-bundle-renderer"
TOKEN_DIR = "/var/run/secrets/adapstory"
# Admission checks the transparency log exactly as `render` does (signatures.TLOG_SETTINGS): a
# key-signed image with no Rekor entry passes `render`, so the cluster must not ask for one.
KYVERNO_TLOG = {"ignore_tlog": TLOG_SETTINGS["rekor"]["ignoreTlog"], "ignore_sct": TLOG_SETTINGS["ctlog"]["ignoreSCT"]}


class TemplateError(RendererBroken):
    """A template produced something other than the object it is for: a bug in templates/."""

    hint = "this is a bug in templates/, not in your input; nothing was written"



def _argocd_labels(env: str) -> dict:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, "plugins.adapstory.io/env": env}


def _uses_kafka(plan: BundlePlan) -> bool:
    k = plan.spec.kafka
    return bool(k and (k.produces or k.consumes))


def _identity(plan: BundlePlan) -> dict:
    return {
        "plugins.adapstory.io/tenant": label_value(plan.tenant),
        "plugins.adapstory.io/plugin": label_value(plan.plugin),
    }


def bundle_context(plan: BundlePlan) -> dict:
    """Everything the bundle templates read, as plain values (the templates hold no logic)."""
    spec, platform, names = plan.spec, plan.platform, plan.names
    selector = {"app.kubernetes.io/name": label_value(plan.plugin), "app.kubernetes.io/instance": names.app}
    labels = {
        **selector,
        **_identity(plan),
        "app.kubernetes.io/version": label_value(plan.version),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "plugins.adapstory.io/env": plan.env,
    }
    res = spec.resources
    side = platform.defaults
    pods = spec.replicas.max + 1  # one surge pod during a rolling update
    sidecar_req = {"cpu": quantity.parse(side.sidecarRequests.cpu), "memory": quantity.parse(side.sidecarRequests.memory)}
    sidecar_lim = {"cpu": quantity.parse(side.sidecarLimits.cpu), "memory": quantity.parse(side.sidecarLimits.memory)}

    def per_pod(which: str, res_name: str, sidecar: dict):
        return quantity.parse(getattr(getattr(res, which), res_name)) + sidecar[res_name]

    quota = {
        "requests.cpu": quantity.cpu(per_pod("requests", "cpu", sidecar_req) * pods),
        "limits.cpu": quantity.cpu(per_pod("limits", "cpu", sidecar_lim) * pods),
        "requests.memory": quantity.size(per_pod("requests", "memory", sidecar_req) * pods),
        "limits.memory": quantity.size(per_pod("limits", "memory", sidecar_lim) * pods),
        "requests.storage": quantity.size(quantity.parse(res.storage)),
        "pods": str(pods),
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    otel = ",".join([f"tenant.id={plan.tenant}", f"service.name={plan.plugin}", f"service.version={plan.version}",
                     f"deployment.environment={plan.env}"])
    env = [
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": otel},
        {"name": "OTEL_SERVICE_NAME", "value": plan.plugin},
        {"name": "PLATFORM_TOKEN_FILE", "value": f"{TOKEN_DIR}/token"},
        {"name": "TENANT_ID", "value": plan.tenant},
    ]
    if _uses_kafka(plan):
        env += stores.kafka_env(plan)
    if spec.database is not None:
        env += [{"name": "PGDATABASE", "value": names.database}, {"name": "PGSCHEMA", "value": names.schema}]
    # models.PLATFORM_ENV_NAMES keeps the manifest's and the overrides' names apart from these:
    # a name set twice is never silently dropped or shadowed
    env += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    secret_env = [{"name": s.env, "secret": names.secret, "key": s.name} for s in spec.secrets if s.env]
    if spec.database is not None:
        secret_env += [{"name": "PGUSER", "secret": "db-credentials", "key": "username"},
                       {"name": "PGPASSWORD", "secret": "db-credentials", "key": "password"},
                       {"name": "PGHOST", "secret": "db-credentials", "key": "endpoint"},
                       {"name": "PGPORT", "secret": "db-credentials", "key": "port"}]
    if _uses_kafka(plan):
        secret_env += stores.kafka_secret_env(plan)
    secret_env.sort(key=lambda e: e["name"])
    names_set = [e["name"] for e in env + secret_env]
    if len(names_set) != len(set(names_set)):
        raise TemplateError(f"{plan.path}: environment variables set twice: "
                            f"{', '.join(sorted({n for n in names_set if names_set.count(n) > 1}))}")
    kafka = None
    if _uses_kafka(plan):
        acls = []
        for topic in spec.kafka.produces:
            acls.append({"type": "topic", "name": names.topic_prefix + topic, "pattern": "literal",
                         "operations": ["Describe", "Write"]})
        for topic in spec.kafka.consumes:
            acls.append({"type": "topic", "name": names.topic_prefix + topic, "pattern": "literal",
                         "operations": ["Describe", "Read"]})
        if spec.kafka.consumes:
            acls.append({"type": "group", "name": names.group_prefix, "pattern": "prefix", "operations": ["Read"]})
        kafka = {
            "namespace": platform.kafka.namespace,
            "labels": {**labels, "strimzi.io/cluster": platform.kafka.cluster},
            "authentication": platform.kafka.authentication,
            "topic_prefix": names.topic_prefix,
            "group_prefix": names.group_prefix,
            "acls": sorted(acls, key=lambda a: (a["type"], a["name"], a["operations"])),
            **stores.kafka_context(plan),
        }
    group_re = re.sub(r"([.+*?()|\[\]{}^$\\])", r"\\\1", names.group_prefix)
    metric = platform.observability.consumerLagMetric
    lag = {
        "expr": f'quantile(0.99, {metric}{{group=~"{_promql_string(group_re)}.*"}}) > 60',
        "summary": f"Consumer lag of {plan.plugin} for tenant {plan.tenant} is above 60 s (p99) for 5 minutes",
        "description": "The runtime does not autoscale on lag: raise replicas.max in the manifest or an override, "
                       "or make the consumer faster.",
    }
    run_as = spec.securityContext or side.securityContext  # the manifest's UID (>= 10000), else the platform's
    shutdown = spec.shutdown or side.shutdown
    obs = platform.observability
    egress = [{"namespace": r.namespace, "pod_labels": dict(r.pod_labels),
               "ports": [{"port": p, "protocol": proto} for p, proto in r.ports]}
              for r in (plan.dns,) + plan.egress]
    if obs.otelSidecar != "false":  # the injected sidecar exports OTLP to the collector, and only there
        egress.append({"namespace": obs.collector.namespace, "pod_labels": dict(sorted(obs.collector.podLabels.items())),
                       "ports": [{"port": p.port, "protocol": p.protocol} for p in obs.collector.ports]})
    return {
        "plugin": plan.plugin,
        "tenant": plan.tenant,
        "namespace": names.namespace,
        "app": names.app,
        "labels": labels,
        "selector": selector,
        "namespace_labels": {
            **labels,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
        "annotations": {"plugins.adapstory.io/jwt-subject": names.jwt_subject,
                        "plugins.adapstory.io/vault-prefix": names.vault_prefix},
        "budget_labels": {**labels, "plugins.adapstory.io/budget": "true"},
        "jwt_subject": names.jwt_subject,
        "token_audience": platform.serviceAccountToken.audience,
        "token_seconds": platform.serviceAccountToken.expirationSeconds,
        "token_dir": TOKEN_DIR,
        "refresh_interval": platform.secretStore.refreshInterval,
        **stores.secret_context(plan),
        "secrets": [{"name": s.name, "vault_path": names.vault_prefix + s.vaultKey} for s in spec.secrets],
        "quota": quota,
        "limit_range": {
            "default": {"cpu": side.sidecarLimits.cpu, "memory": side.sidecarLimits.memory},
            "defaultRequest": {"cpu": side.sidecarRequests.cpu, "memory": side.sidecarRequests.memory},
            "max": {"cpu": str(side.maxContainerCPU), "memory": str(side.maxContainerMemory)},
            "storage": quantity.size(max(quantity.parse(res.storage), 1)),
        },
        "ingress": {"namespace": plan.ingress.namespace, "pod_labels": dict(plan.ingress.pod_labels)},
        "egress": egress,
        "port": spec.port,
        "image": spec.image,
        "pod_annotations": {
            "sidecar.opentelemetry.io/inject": obs.otelSidecar,
            "fluentbit.io/parser": "json",
            "kubectl.kubernetes.io/default-container": "plugin",
        },
        "env": env,
        "secret_env": secret_env,
        "resources": {"requests": {"cpu": str(res.requests.cpu), "memory": str(res.requests.memory)},
                      "limits": {"cpu": str(res.limits.cpu), "memory": str(res.limits.memory)}},
        "probes": spec.probes.model_dump(),
        "replicas": spec.replicas.model_dump(),
        "cpu_target": platform.defaults.targetCPUUtilization,
        "budgets": spec.budgets.model_dump(),
        "kafka": kafka,
        "db": None if spec.database is None else {
            "role": names.db_role, "database": names.database, "schema": names.schema, "secret": "db-credentials",
            "connection_limit": spec.replicas.max * 5 + 5,
            "management_policies": stores.management_policies(plan),
            "provider": {"kind": platform.database.providerConfigKind, "name": platform.database.providerConfig},
        },
        "kyverno": {
            "references": [f"{plan.image_repo}@*", f"{plan.image_repo}:*"],
            "public_key": plan.public_key.strip() + "\n",
            **KYVERNO_TLOG,
        },
        "lag": lag,
        "rule_labels": {**labels, **obs.ruleLabels},
        "pod": {"run_as_user": run_as.runAsUser, "run_as_group": run_as.group, "fs_group": run_as.group,
                "pre_stop_seconds": shutdown.preStopSeconds, "grace_seconds": shutdown.terminationGracePeriodSeconds},
        # a voluntary disruption (a node drain) takes at most one pod at a time, and never waits for
        # a pod that is not Ready: with one replica a drain proceeds (README, "PodDisruptionBudget")
        "disruption": {"max_unavailable": 1, "unhealthy_pod_eviction_policy": "AlwaysAllow"},
    }


def _promql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
