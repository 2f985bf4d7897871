"""Stage 4: from a ``BundlePlan`` to a ``Bundle`` of Kubernetes objects and the bytes of its files.

load -> plan -> verify -> **render** -> validate -> write.  One Jinja2 template per kind in
``templates/``; every value goes through ``quoting.plain`` (Jinja's ``finalize``) and reaches the
objects as data, through a slot in the template's parsed text (``skeletons``); the objects are
checked (the expected kind and a name) before they become part of a bundle: the output is built
from objects, never trusted as text.
Pure: no file is written and no git is touched here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jinja2
import yaml

from renderer.core import layout
from renderer.core.kinds import WAVE_ANNOTATION, sync_wave
from renderer.pipeline.context import (  # noqa: F401  (TemplateError, the constants: re-exported)
    KYVERNO_TLOG, MANAGED_BY, TOKEN_DIR, TemplateError, _argocd_labels, _identity, _uses_kafka, bundle_context)
from renderer.pipeline.plan import BundlePlan, EnvironmentPlan
from renderer.pipeline.provenance import bundle_json, files_digest, same_inputs  # noqa: F401  (re-exported)
from renderer.core.yamlio import dump, parse_rendered
from renderer.pipeline.skeletons import SLOT, VALUES, Skeletons, SkeletonError, slot


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
    "kafkatopic.yaml.j2": "KafkaTopic",
    "secretstore.yaml.j2": "SecretStore",
    "rbac-role.yaml.j2": "Role",
    "rbac-rolebinding.yaml.j2": "RoleBinding",
    "vault-role.yaml.j2": "KubernetesAuthEngineRole",
    "vault-policy.yaml.j2": "Policy",
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
    ("kafka.strimzi.io/v1", "KafkaUser"), ("kafka.strimzi.io/v1", "KafkaTopic"), ("external-secrets.io/v1", "SecretStore"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("redhatcop.redhat.io/v1alpha1", "KubernetesAuthEngineRole"), ("redhatcop.redhat.io/v1alpha1", "Policy"),
    ("postgresql.sql.m.crossplane.io/v1alpha1", "Role"),
    ("postgresql.sql.m.crossplane.io/v1alpha1", "Schema"), ("postgresql.sql.m.crossplane.io/v1alpha1", "Grant"),
    ("kyverno.io/v1", "Policy"), ("monitoring.coreos.com/v1", "PrometheusRule"), ("policy/v1", "PodDisruptionBudget"),
    ("argoproj.io/v1alpha1", "AppProject"), ("argoproj.io/v1alpha1", "Application"),
)
# What an Application of the `plugins` project may create besides the Namespace: exactly the
# namespaced kinds of a bundle, (group, kind). A fixed list, so the AppProject does not change
# when one bundle starts or stops using Kafka or a database.
NAMESPACED_KINDS = frozenset((api.rpartition("/")[0], kind) for api, kind in EMITTED
                             if kind != "Namespace" and not api.startswith("argoproj.io/"))


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


def _waved_skeleton(doc: dict) -> Optional[dict]:
    """``with_sync_wave`` on a template's skeleton, where it acts as on every object filled from it:
    apiVersion, kind and the annotations' place are the template's own text, not values."""
    meta = doc.get("metadata") if type(doc) is dict else None
    if type(meta) is not dict or any(type(k) is not str for k in (*doc, *meta)) \
            or type(doc.get("apiVersion")) is not str or type(doc.get("kind")) is not str:
        return None
    annotations = meta.get("annotations")
    if annotations is not None and (type(annotations) is not dict or any(type(k) is not str for k in annotations)):
        return None
    return with_sync_wave(doc)


def _checked(template: str, doc) -> dict:
    """A document of ``template``: an object of its kind, with a name."""
    kind = TEMPLATE_KINDS[template]
    if not (isinstance(doc, dict) and doc.get("kind") == kind and isinstance(doc.get("metadata"), dict)
            and isinstance(doc["metadata"].get("name"), str)):
        raise TemplateError(f"templates/{template} must produce {kind} objects with metadata.name")
    return doc


def file_name(obj: dict) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


class Renderer:
    """Holds the compiled templates; one per process."""

    def __init__(self, templates_dir: Path):
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            finalize=slot,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        missing = sorted(set(TEMPLATE_KINDS) - set(env.list_templates()))
        if missing:
            raise TemplateError(f"templates missing from {templates_dir}: {', '.join(missing)}")
        self._templates = {name: env.get_template(name) for name in TEMPLATE_KINDS}
        for name in TEMPLATE_KINDS:
            if SLOT in env.loader.get_source(env, name)[0]:
                raise TemplateError(f"templates/{name}: holds {SLOT!r}, the renderer's own slot token")
        self._skeletons = Skeletons()

    def _shape(self, template: str, context: dict) -> tuple:
        """The template rendered: the shape of its text and this render's values."""
        values: list = []
        try:
            text = self._templates[template].render(**context, **{VALUES: values})
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"templates/{template}: {exc.message}") from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:  # quoting.plain refuses what is not plain data
            raise TemplateError(f"templates/{template}: {exc}") from None
        try:
            return self._skeletons.shape(text, values), values
        except SkeletonError as exc:
            raise TemplateError(f"templates/{template}: {exc}") from None
        except (yaml.YAMLError, ValueError) as exc:
            raise TemplateError(f"templates/{template} produced invalid YAML: {exc}") from None

    def _objects(self, template: str, **context) -> list[dict]:
        shape, values = self._shape(template, context)
        return [_checked(template, doc) for doc in shape.objects(values)]

    def _written(self, template: str, **context) -> list[tuple[dict, bytes]]:
        """The template's objects, checked and with their sync wave, each with its file's bytes."""
        shape, values = self._shape(template, context)
        return shape.written(values, lambda doc: with_sync_wave(_checked(template, doc)), _waved_skeleton)

    def render_bundle(self, plan: BundlePlan) -> Bundle:
        ctx = bundle_context(plan)
        spec = plan.spec
        wanted = ["namespace", "serviceaccount", "resourcequota", "limitrange", "networkpolicy", "deployment",
                  "service", "horizontalpodautoscaler", "configmap", "policy", "poddisruptionbudget"]
        if spec.secrets or ctx["kafka"]:
            wanted += ["externalsecret", "secretstore"]
        if spec.secrets:
            wanted += ["vault-role", "vault-policy"]
        if ctx["kafka"]:
            wanted += ["kafkauser", "rbac-role", "rbac-rolebinding"]
        if ctx["kafka"] and ctx["kafka"]["topics"]:
            wanted.append("kafkatopic")
        if spec.database is not None:
            wanted += ["sql-role", "sql-schema", "sql-grant"]
        if spec.kafka and spec.kafka.consumes:
            wanted.append("prometheusrule")
        objects: dict[str, dict] = {}
        texts: dict[str, bytes] = {}
        for name in wanted:
            for obj, data in self._written(f"{name}.yaml.j2", b=ctx):
                fname = file_name(obj)
                if fname in objects:
                    raise TemplateError(f"two objects of bundle {plan.path} map to the file {fname}")
                objects[fname], texts[fname] = obj, data
        ordered = tuple(sorted(objects.items()))
        kustomization = layout.kustomization(f for f, _ in ordered)
        files = [(f, texts[f]) for f, _ in ordered]
        files.append(("kustomization.yaml", dump(kustomization)))
        files.append(("bundle.json", bundle_json(plan, ordered, files_digest(files))))
        return Bundle(plan, ordered, tuple(sorted(files)))

    def render_project(self, env: EnvironmentPlan) -> tuple[str, dict]:
        """The environment's `plugins` AppProject: destinations are exactly the bundles' namespaces
        (plus the Kafka namespace when a KafkaUser lives there); Namespace is the only cluster-scoped kind."""
        platform = env.platform
        argo = platform.argocd
        destinations = sorted({b.names.namespace for b in env.bundles}
                              | ({platform.kafka.namespace} if any(_uses_kafka(b) for b in env.bundles) else set())
                              | ({platform.secretStore.vaultConfig.namespace} if any(b.spec.secrets for b in env.bundles)
                                 else set()))
        project = self._objects("appproject.yaml.j2", p={
            "name": argo.project, "namespace": argo.namespace, "labels": _argocd_labels(env.name), "repo": argo.repoURL,
            "destinations": [{"namespace": ns, "server": argo.server} for ns in destinations] or None,
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
