"""Stage 4: from a ``BundlePlan`` to a ``Bundle`` of Kubernetes objects and the bytes of its files.

load -> plan -> verify -> **render** -> validate -> write.  One Jinja2 template per kind in
``templates/``; every value reaches the text through ``quoting.quote`` (Jinja's ``finalize``),
and the text is parsed back and checked (one object, the expected kind and name) before it
becomes part of a bundle: the output is built from objects, never trusted as text.
Pure: no file is written and no git is touched here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jinja2
import yaml

from renderer.core import quantity
from renderer.core.kinds import WAVE_ANNOTATION, sync_wave
from renderer.core.errors import RendererBroken
from renderer.pipeline.plan import BundlePlan, EnvironmentPlan, label_value
from renderer.core.quoting import quote
from renderer.trust.signatures import TLOG_SETTINGS
from renderer.core.yamlio import dump, parse_rendered

MANAGED_BY = "plugin-bundle-renderer"
TOKEN_DIR = "/var/run/secrets/adapstory"
# Admission checks the transparency log exactly as `render` does (signatures.TLOG_SETTINGS): a
# key-signed image with no Rekor entry passes `render`, so the cluster must not ask for one.
KYVERNO_TLOG = {"ignore_tlog": TLOG_SETTINGS["rekor"]["ignoreTlog"], "ignore_sct": TLOG_SETTINGS["ctlog"]["ignoreSCT"]}

# template -> kinds it may produce (a template may emit several documents of its kind)
TEMPLATE_KINDS = {
    "namespace.yaml.j2": "Namespace",
    "serviceaccount.yaml.j2": "ServiceAccount",
    "externalsecret.yaml.j2": "ExternalSecret",
    "resourcequota.yaml.j2": "ResourceQuota",
    "limitrange.yaml.j2": "LimitRange",
    "networkpolicy.yaml.j2": "NetworkPolicy",
    "deployment.yaml.j2": "Deployment",
    "service.yaml.j2": "Service",
    "horizontalpodautoscaler.yaml.j2": "HorizontalPodAutoscaler",
    "configmap.yaml.j2": "ConfigMap",
    "kafkauser.yaml.j2": "KafkaUser",
    "sql-role.yaml.j2": "Role",
    "sql-schema.yaml.j2": "Schema",
    "sql-grant.yaml.j2": "Grant",
    "policy.yaml.j2": "Policy",
    "prometheusrule.yaml.j2": "PrometheusRule",
    "poddisruptionbudget.yaml.j2": "PodDisruptionBudget",
    "appproject.yaml.j2": "AppProject",
    "application.yaml.j2": "Application",
    "root-application.yaml.j2": "Application",
}
ROOT_APPLICATION = "plugins-root"  # <env>/bootstrap/application-plugins-root.yaml
ROOT_PROJECT = "default"  # the root needs a project that may create AppProjects and Applications


# Every (apiVersion, kind) the templates can emit: the schema gate's preflight checks that each
# has a schema before anything is rendered (tests check that no emitted object is missing here).
EMITTED = (
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "Service"),
    ("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("external-secrets.io/v1", "ExternalSecret"),
    ("kafka.strimzi.io/v1", "KafkaUser"), ("postgresql.sql.m.crossplane.io/v1alpha1", "Role"),
    ("postgresql.sql.m.crossplane.io/v1alpha1", "Schema"), ("postgresql.sql.m.crossplane.io/v1alpha1", "Grant"),
    ("kyverno.io/v1", "Policy"), ("monitoring.coreos.com/v1", "PrometheusRule"), ("policy/v1", "PodDisruptionBudget"),
    ("argoproj.io/v1alpha1", "AppProject"), ("argoproj.io/v1alpha1", "Application"),
)
# What an Application of the `plugins` project may create besides the Namespace: exactly the
# namespaced kinds of a bundle, (group, kind). A fixed list, so the AppProject does not change
# when one bundle starts or stops using Kafka or a database.
NAMESPACED_KINDS = frozenset((api.rpartition("/")[0], kind) for api, kind in EMITTED
                             if kind != "Namespace" and not api.startswith("argoproj.io/"))


class TemplateError(RendererBroken):
    """A template produced something other than the object it is for: a bug in templates/."""

    hint = "this is a bug in templates/, not in your input; nothing was written"


@dataclass(frozen=True)
class Bundle:
    plan: BundlePlan
    objects: tuple  # ((file name, object), ...) in file-name order
    files: tuple  # ((file name, bytes), ...) including kustomization.yaml and bundle.json

    @property
    def path(self) -> str:
        return self.plan.path

    @classmethod
    def from_files(cls, plan: BundlePlan, files: tuple) -> "Optional[Bundle]":
        """A bundle written before from the same inputs (same inputDigest): its files as they
        are, its objects parsed back for the gates. None when the files are not byte for byte
        what render wrote (bundle.json's filesDigest): such a bundle is rendered afresh."""
        try:
            recorded = json.loads(dict(files)["bundle.json"]).get("filesDigest")
        except (KeyError, ValueError, AttributeError):
            return None
        if recorded != files_digest(files):
            return None
        objects = []
        for name, data in files:
            if name.endswith(".yaml") and name != "kustomization.yaml":
                docs = parse_rendered(data.decode("utf-8"))
                if len(docs) != 1 or not isinstance(docs[0], dict):
                    raise TemplateError(f"{plan.path}/{name}: expected one object in a file written by render")
                objects.append((name, docs[0]))
        return cls(plan, tuple(sorted(objects)), tuple(sorted(files)))


def with_sync_wave(obj: dict) -> dict:
    """The object with its Argo CD sync wave (``core.kinds``) among its annotations."""
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    meta["annotations"] = {**annotations, WAVE_ANNOTATION: str(sync_wave(obj["apiVersion"], obj["kind"]))}
    return obj


def file_name(obj: dict) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


class Renderer:
    """Holds the compiled templates; one per process."""

    def __init__(self, templates_dir: Path):
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            finalize=quote,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        missing = sorted(set(TEMPLATE_KINDS) - set(env.list_templates()))
        if missing:
            raise TemplateError(f"templates missing from {templates_dir}: {', '.join(missing)}")
        self._templates = {name: env.get_template(name) for name in TEMPLATE_KINDS}

    def _objects(self, template: str, **context) -> list[dict]:
        try:
            text = self._templates[template].render(**context)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"templates/{template}: {exc.message}") from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:  # quoting refuses what it cannot quote
            raise TemplateError(f"templates/{template}: {exc}") from None
        try:
            docs = parse_rendered(text)
        except (yaml.YAMLError, ValueError) as exc:
            raise TemplateError(f"templates/{template} produced invalid YAML: {exc}") from None
        kind = TEMPLATE_KINDS[template]
        for doc in docs:
            if not (isinstance(doc, dict) and doc.get("kind") == kind and isinstance(doc.get("metadata"), dict)
                    and isinstance(doc["metadata"].get("name"), str)):
                raise TemplateError(f"templates/{template} must produce {kind} objects with metadata.name")
        return docs

    def render_bundle(self, plan: BundlePlan) -> Bundle:
        ctx = bundle_context(plan)
        spec = plan.spec
        wanted = ["namespace", "serviceaccount", "resourcequota", "limitrange", "networkpolicy", "deployment",
                  "service", "horizontalpodautoscaler", "configmap", "policy", "poddisruptionbudget"]
        if spec.secrets:
            wanted.append("externalsecret")
        if ctx["kafka"]:
            wanted.append("kafkauser")
        if spec.database is not None:
            wanted += ["sql-role", "sql-schema", "sql-grant"]
        if spec.kafka and spec.kafka.consumes:
            wanted.append("prometheusrule")
        objects: dict[str, dict] = {}
        for name in wanted:
            for obj in self._objects(f"{name}.yaml.j2", b=ctx):
                fname = file_name(obj)
                if fname in objects:
                    raise TemplateError(f"two objects of bundle {plan.path} map to the file {fname}")
                objects[fname] = with_sync_wave(obj)
        ordered = tuple(sorted(objects.items()))
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f for f, _ in ordered],
        }
        files = [(f, dump(o)) for f, o in ordered]
        files.append(("kustomization.yaml", dump(kustomization)))
        files.append(("bundle.json", bundle_json(plan, ordered, files_digest(files))))
        return Bundle(plan, ordered, tuple(sorted(files)))

    def render_project(self, env: EnvironmentPlan) -> tuple[str, dict]:
        """The environment's `plugins` AppProject: destinations are exactly the bundles' namespaces
        (plus the Kafka namespace when a KafkaUser lives there); Namespace is the only cluster-scoped kind."""
        platform = env.platform
        argo = platform.argocd
        destinations = sorted({b.names.namespace for b in env.bundles}
                              | ({platform.kafka.namespace} if any(_uses_kafka(b) for b in env.bundles) else set()))
        project = self._objects("appproject.yaml.j2", p={
            "name": argo.project, "namespace": argo.namespace, "labels": _argocd_labels(env.name), "repo": argo.repoURL,
            "server": argo.server, "destinations": destinations,
            "description": f"Plugin bundles of environment {env.name}, written by {MANAGED_BY}",
            "kinds": sorted(NAMESPACED_KINDS),
        })
        return f"appproject-{argo.project}.yaml", with_sync_wave(project[0])

    def render_application(self, b: BundlePlan) -> tuple[str, dict]:
        """The bundle's Argo CD Application (it lives in the environment's argocd/ folder)."""
        argo = b.platform.argocd
        app = self._objects("application.yaml.j2", a={
            "name": b.names.app, "namespace": argo.namespace, "labels": {**_argocd_labels(b.env), **_identity(b)},
            "project": argo.project, "repo": argo.repoURL, "revision": argo.targetRevision, "path": b.path,
            "generate_paths": f"/{b.path}", "server": argo.server, "destination_namespace": b.names.namespace,
        })
        return f"application-{b.names.app}.yaml", with_sync_wave(app[0])

    def render_root(self, env: EnvironmentPlan) -> tuple[str, dict]:
        """The environment's root Application (``<env>/bootstrap/``): applied once by a platform
        admin, it syncs ``<env>/argocd/`` (the AppProject first, then every bundle's Application)."""
        argo = env.platform.argocd
        root = self._objects("root-application.yaml.j2", r={
            "name": ROOT_APPLICATION, "namespace": argo.namespace, "labels": _argocd_labels(env.name),
            "project": ROOT_PROJECT, "repo": argo.repoURL, "revision": argo.targetRevision,
            "path": f"{env.name}/argocd", "server": argo.server,
        })
        return f"application-{ROOT_APPLICATION}.yaml", root[0]


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
        env += [{"name": "KAFKA_GROUP_PREFIX", "value": names.group_prefix},
                {"name": "KAFKA_TOPIC_PREFIX", "value": names.topic_prefix}]
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
        "secret_store": platform.secretStore.model_dump(),
        "secret_name": names.secret,
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


def same_inputs(plan: BundlePlan, previous_bundle_json: bytes) -> bool:
    """Whether a bundle written before came from exactly this plan's inputs and signature, so
    that its files can be kept without rendering it again."""
    try:
        doc = json.loads(previous_bundle_json)
    except ValueError:
        return False
    sig = plan.signature
    want_sig = None if sig is None else {"keyFingerprint": sig.key_fingerprint, "payloadDigest": sig.payload_digest}
    return isinstance(doc, dict) and doc.get("inputDigest") == plan.input_digest and doc.get("signature") == want_sig


def files_digest(files, skip: tuple = ("bundle.json",)) -> str:
    """sha256 over a bundle's files (names and bytes), by default all but bundle.json: recorded
    in bundle.json, so a kept bundle is known to be byte for byte what render wrote for its
    inputDigest; with ``skip=()`` it keys the policy verdict cache (``validate.policy_key``)."""
    h = hashlib.sha256()
    for name, data in sorted(files):
        if name not in skip:
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def bundle_json(plan: BundlePlan, objects, digest_of_files: str) -> bytes:
    """Provenance beside the objects: only what derives from this bundle's own inputs."""
    sig = plan.signature
    doc = {
        "env": plan.env,
        "tenant": plan.tenant,
        "plugin": plan.plugin,
        "pluginVersion": plan.version,
        "publisher": plan.publisher,
        "image": plan.spec.image,
        "imageDigest": plan.image_digest,
        "inputDigest": plan.input_digest,
        "filesDigest": digest_of_files,
        "isolation": {  # what this bundle owns (CONTRACT §2); the policies check objects against it
            "namespace": plan.names.namespace, "vaultPrefix": plan.names.vault_prefix,
            "topicPrefix": plan.names.topic_prefix, "groupPrefix": plan.names.group_prefix,
            "database": plan.names.database, "schema": plan.names.schema, "dbRole": plan.names.db_role,
        },
        "signature": None if sig is None else {"keyFingerprint": sig.key_fingerprint, "payloadDigest": sig.payload_digest},
        "objects": [{"file": f, "apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
                     "namespace": o["metadata"].get("namespace", "")} for f, o in objects],
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
