"""The order Argo CD applies a bundle in: one sync wave per emitted kind.

Where it sits: ``core`` (``pipeline.render`` stamps the waves; the tests check every emitted kind
has one). Argo CD applies lower waves first and waits for their health before the next:

====  ====================================================================================
wave  what
====  ====================================================================================
-1    the namespace and its guard rails: Namespace, ServiceAccount, ResourceQuota,
      LimitRange, NetworkPolicy, the Kyverno signature Policy, the budget ConfigMap
 0    secrets, database and Kafka: SecretStore, ExternalSecret, RBAC Role/RoleBinding,
      provider-sql Role/Schema/Grant, KafkaUser, KafkaTopic
 1    the workload: Deployment, Service
 2    after the workload: HorizontalPodAutoscaler, PodDisruptionBudget, PrometheusRule
====  ====================================================================================

In ``<env>/argocd/`` the AppProject is wave -1 and the Applications wave 0, so the root
Application (``<env>/bootstrap/``) creates the project before any Application that needs it.
"""

from __future__ import annotations

WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"

GUARD_RAILS, SECRETS_AND_DATA, WORKLOAD, AFTER_WORKLOAD = -1, 0, 1, 2

# (API group, kind) -> wave; "" is the core group
SYNC_WAVES: dict[tuple[str, str], int] = {
    ("", "Namespace"): GUARD_RAILS,
    ("", "ServiceAccount"): GUARD_RAILS,
    ("", "ResourceQuota"): GUARD_RAILS,
    ("", "LimitRange"): GUARD_RAILS,
    ("", "ConfigMap"): GUARD_RAILS,
    ("networking.k8s.io", "NetworkPolicy"): GUARD_RAILS,
    ("kyverno.io", "Policy"): GUARD_RAILS,
    ("external-secrets.io", "SecretStore"): SECRETS_AND_DATA,
    ("external-secrets.io", "ExternalSecret"): SECRETS_AND_DATA,
    ("rbac.authorization.k8s.io", "Role"): SECRETS_AND_DATA,
    ("rbac.authorization.k8s.io", "RoleBinding"): SECRETS_AND_DATA,
    ("postgresql.sql.m.crossplane.io", "Role"): SECRETS_AND_DATA,
    ("postgresql.sql.m.crossplane.io", "Schema"): SECRETS_AND_DATA,
    ("postgresql.sql.m.crossplane.io", "Grant"): SECRETS_AND_DATA,
    ("kafka.strimzi.io", "KafkaUser"): SECRETS_AND_DATA,
    ("kafka.strimzi.io", "KafkaTopic"): SECRETS_AND_DATA,
    ("redhat-cop.redhat.io", "Policy"): SECRETS_AND_DATA,
    ("redhat-cop.redhat.io", "KubernetesAuthEngineRole"): SECRETS_AND_DATA,
    ("apps", "Deployment"): WORKLOAD,
    ("", "Service"): WORKLOAD,
    ("autoscaling", "HorizontalPodAutoscaler"): AFTER_WORKLOAD,
    ("policy", "PodDisruptionBudget"): AFTER_WORKLOAD,
    ("monitoring.coreos.com", "PrometheusRule"): AFTER_WORKLOAD,
    # <env>/argocd/
    ("argoproj.io", "AppProject"): -1,
    ("argoproj.io", "Application"): 0,
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def sync_wave(api_version: str, kind: str) -> int:
    """The wave of an emitted kind; KeyError for a kind nobody placed (a test keeps this total)."""
    return SYNC_WAVES[(group_of(api_version), kind)]
