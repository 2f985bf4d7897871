"""Sample objects for the schema gate's tests and benchmark: one typical bundle (every kind the
renderer writes) and a table of broken variants, each with the path the gate must report."""

from __future__ import annotations

import copy
from typing import Any, Callable

KUBERNETES_VERSION = "1.33"


def bundle(tenant: str = "t1", plugin: str = "quiz") -> list[dict]:
    """The objects of one rendered bundle, in write order."""
    ns = f"plugin-{tenant}-{plugin}"
    labels = {"app.kubernetes.io/name": plugin, "app.kubernetes.io/part-of": "plugins",
              "plugins.adapstory.io/tenant": tenant}
    meta = {"name": plugin, "namespace": ns, "labels": dict(labels)}
    image = "registry.adapstory.io/acme/quiz@sha256:" + "a" * 64
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"},
                      "annotations": {"plugins.adapstory.io/input-digest": "sha256:" + "b" * 64}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta),
         "automountServiceAccountToken": False},
        {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
         "metadata": {**meta, "name": f"{plugin}-secrets"},
         "spec": {"refreshInterval": "1h",
                  "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
                  "target": {"name": f"{plugin}-secrets", "creationPolicy": "Owner"},
                  "data": [{"secretKey": "openai-api-key",
                            "remoteRef": {"key": f"tenants/{tenant}/{plugin}", "property": "openai-api-key"}}]}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {**meta, "name": "quota"},
         "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                           "limits.memory": "8Gi", "pods": "20", "services.loadbalancers": "0"}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {**meta, "name": "limits"},
         "spec": {"limits": [{"type": "Container",
                              "default": {"cpu": "500m", "memory": "256Mi"},
                              "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                              "max": {"cpu": "2", "memory": "2Gi"}}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {**meta, "name": "default-deny"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {**meta, "name": "allow"},
         "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": plugin}},
                  "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": "ingress-nginx"}}}],
                               "ports": [{"protocol": "TCP", "port": 8080}]}],
                  "egress": [{"to": [{"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": "kube-system"}},
                                      "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                              "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                             {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                              "ports": [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 9093}]}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {"replicas": 2, "revisionHistoryLimit": 3,
                  "selector": {"matchLabels": {"app.kubernetes.io/name": plugin}},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                  "template": {
                      "metadata": {"labels": dict(labels), "annotations": {"checksum/config": "c" * 64}},
                      "spec": {
                          "serviceAccountName": plugin, "automountServiceAccountToken": False,
                          "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001,
                                              "seccompProfile": {"type": "RuntimeDefault"}},
                          "containers": [{
                              "name": plugin, "image": image, "imagePullPolicy": "IfNotPresent",
                              "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                              "env": [{"name": "PLUGIN_TENANT", "value": tenant},
                                      {"name": "KAFKA_BOOTSTRAP", "value": "kafka-bootstrap.kafka:9093"},
                                      {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {
                                          "name": f"{plugin}-secrets", "key": "openai-api-key"}}},
                                      {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
                                          "name": f"{plugin}-db", "key": "password"}}}],
                              "envFrom": [{"configMapRef": {"name": f"{plugin}-config"}}],
                              "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                            "requests": {"cpu": "100m", "memory": "128Mi"}},
                              "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                  "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                              "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                              "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                                "initialDelaySeconds": 10, "periodSeconds": 20},
                              "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
                          "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": plugin},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": dict(meta),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plugin},
                  "minReplicas": 1, "maxReplicas": 3,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 80}}}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": f"{plugin}-config"},
         "data": {"LOG_LEVEL": "info", "FEATURE_FLAGS": "a,b", "config.yaml": "quiz:\n  rounds: 3\n"}},
        {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
         "metadata": {"name": f"{tenant}-{plugin}", "namespace": "kafka", "labels": {"strimzi.io/cluster": "main"}},
         "spec": {"authentication": {"type": "scram-sha-512"},
                  "authorization": {"type": "simple", "acls": [
                      {"resource": {"type": "topic", "name": f"{tenant}.{plugin}.", "patternType": "prefix"},
                       "operations": ["Read", "Describe", "Write"]},
                      {"resource": {"type": "group", "name": f"{tenant}.{plugin}", "patternType": "literal"},
                       "operations": ["Read"]}]}}},
        {"apiVersion": "postgresql.sql.m.crossplane.io/v1alpha1", "kind": "Role",
         "metadata": {**meta, "name": f"{tenant}-{plugin}"},
         "spec": {"forProvider": {"privileges": {"login": True}, "connectionLimit": 20},
                  "writeConnectionSecretToRef": {"name": f"{plugin}-db"},
                  "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "pg-main"}}},
        {"apiVersion": "postgresql.sql.m.crossplane.io/v1alpha1", "kind": "Schema",
         "metadata": {**meta, "name": f"{tenant}-{plugin}"},
         "spec": {"forProvider": {"database": "plugins", "roleRef": {"name": f"{tenant}-{plugin}"}},
                  "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "pg-main"}}},
        {"apiVersion": "postgresql.sql.m.crossplane.io/v1alpha1", "kind": "Grant",
         "metadata": {**meta, "name": f"{tenant}-{plugin}"},
         "spec": {"forProvider": {"privileges": ["USAGE", "CREATE"], "roleRef": {"name": f"{tenant}-{plugin}"},
                                  "database": "plugins", "schemaRef": {"name": f"{tenant}-{plugin}"}},
                  "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "pg-main"}}},
        {"apiVersion": "kyverno.io/v1", "kind": "Policy", "metadata": {**meta, "name": "restrict-images"},
         "spec": {"background": True, "rules": [{
             "name": "only-signed-registry",
             "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
             "validate": {"failureAction": "Enforce", "message": "images must come from the publisher",
                          "pattern": {"spec": {"containers": [{"image": "registry.adapstory.io/acme/*"}]}}}}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": dict(meta),
         "spec": {"groups": [{"name": f"{plugin}.rules", "rules": [
             {"alert": "PluginDown", "expr": f'up{{namespace="{ns}"}} == 0', "for": "5m",
              "labels": {"severity": "critical"}, "annotations": {"summary": f"{plugin} is down"}}]}]}},
    ]


def kinds() -> list[str]:
    return [f"{o['apiVersion']} {o['kind']}" for o in bundle()]


def sample(kind: str, name: str | None = None) -> dict:
    """A fresh copy of the first bundle object of ``kind`` (and ``metadata.name``, if given)."""
    for obj in bundle():
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return copy.deepcopy(obj)
    raise KeyError(kind)


def put(obj: dict, path: list, value: Any) -> dict:
    node: Any = obj
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return obj


def drop(obj: dict, path: list) -> dict:
    node: Any = obj
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return obj


_Mutation = Callable[[dict], dict]

# (id, kind, mutation, path the gate must report)
BROKEN: list[tuple[str, str, _Mutation, str]] = [
    ("namespace-unknown-root-field", "Namespace", lambda o: put(o, ["labels"], {}), "labels"),
    ("namespace-finalizers-not-a-list", "Namespace", lambda o: put(o, ["spec"], {"finalizers": "kubernetes"}),
     "spec.finalizers"),
    ("serviceaccount-token-flag-is-a-string", "ServiceAccount",
     lambda o: put(o, ["automountServiceAccountToken"], "false"), "automountServiceAccountToken"),
    ("serviceaccount-misspelled-metadata", "ServiceAccount", lambda o: put(o, ["metadata", "lables"], {}),
     "metadata.lables"),
    ("externalsecret-bad-creation-policy", "ExternalSecret",
     lambda o: put(o, ["spec", "target", "creationPolicy"], "Sometimes"), "spec.target.creationPolicy"),
    ("externalsecret-unknown-store-ref-field", "ExternalSecret",
     lambda o: put(o, ["spec", "secretStoreRef", "nam"], "vault"), "spec.secretStoreRef.nam"),
    ("externalsecret-misspelled-metadata", "ExternalSecret", lambda o: put(o, ["metadata", "lables"], {}),
     "metadata.lables"),
    ("resourcequota-hard-value-is-a-boolean", "ResourceQuota", lambda o: put(o, ["spec", "hard", "pods"], True),
     "spec.hard.pods"),
    ("limitrange-item-without-type", "LimitRange", lambda o: drop(o, ["spec", "limits", 0, "type"]),
     "spec.limits[0].type"),
    ("networkpolicy-unknown-peer-field", "NetworkPolicy",
     lambda o: put(o, ["spec", "podSelector", "matchLabel"], {}), "spec.podSelector.matchLabel"),
    ("deployment-unknown-container-security-field", "Deployment",
     lambda o: put(o, ["spec", "template", "spec", "containers", 0, "securityContext", "runAsNonRot"], True),
     "spec.template.spec.containers[0].securityContext.runAsNonRot"),
    ("deployment-replicas-is-a-string", "Deployment", lambda o: put(o, ["spec", "replicas"], "2"), "spec.replicas"),
    ("deployment-max-surge-is-a-boolean", "Deployment",
     lambda o: put(o, ["spec", "strategy", "rollingUpdate", "maxSurge"], True), "spec.strategy.rollingUpdate.maxSurge"),
    ("deployment-container-without-name", "Deployment",
     lambda o: drop(o, ["spec", "template", "spec", "containers", 0, "name"]), "spec.template.spec.containers[0].name"),
    ("deployment-bad-creation-timestamp", "Deployment",
     lambda o: put(o, ["metadata", "creationTimestamp"], "yesterday"), "metadata.creationTimestamp"),
    ("service-port-is-a-string", "Service", lambda o: put(o, ["spec", "ports", 0, "port"], "80"),
     "spec.ports[0].port"),
    ("hpa-without-max-replicas", "HorizontalPodAutoscaler", lambda o: drop(o, ["spec", "maxReplicas"]),
     "spec.maxReplicas"),
    ("hpa-unknown-metric-field", "HorizontalPodAutoscaler",
     lambda o: put(o, ["spec", "metrics", 0, "resource", "targetValue"], 1), "spec.metrics[0].resource.targetValue"),
    ("configmap-value-is-a-number", "ConfigMap", lambda o: put(o, ["data", "LOG_LEVEL"], 3), "data.LOG_LEVEL"),
    ("configmap-unknown-root-field", "ConfigMap", lambda o: put(o, ["spec"], {}), "spec"),
    ("kafkauser-bad-authentication-type", "KafkaUser",
     lambda o: put(o, ["spec", "authentication", "type"], "scram"), "spec.authentication.type"),
    ("kafkauser-bad-acl-operation", "KafkaUser",
     lambda o: put(o, ["spec", "authorization", "acls", 0, "operations"], ["Reed"]),
     "spec.authorization.acls[0].operations[0]"),
    ("role-login-is-a-string", "Role", lambda o: put(o, ["spec", "forProvider", "privileges", "login"], "yes"),
     "spec.forProvider.privileges.login"),
    ("schema-misspelled-database-ref", "Schema",
     lambda o: put(o, ["spec", "forProvider", "databseRef"], {"name": "x"}), "spec.forProvider.databseRef"),
    ("grant-lowercase-privilege", "Grant", lambda o: put(o, ["spec", "forProvider", "privileges"], ["select"]),
     "spec.forProvider.privileges[0]"),
    ("grant-bad-with-option", "Grant", lambda o: put(o, ["spec", "forProvider", "withOption"], "SUPER"),
     "spec.forProvider.withOption"),
    ("policy-bad-failure-action", "Policy",
     lambda o: put(o, ["spec", "rules", 0, "validate", "failureAction"], "Block"),
     "spec.rules[0].validate.failureAction"),
    ("policy-unknown-spec-field", "Policy", lambda o: put(o, ["spec", "validationFailureActon"], "Audit"),
     "spec.validationFailureActon"),
    ("prometheusrule-bad-partial-response-strategy", "PrometheusRule",
     lambda o: put(o, ["spec", "groups", 0, "partial_response_strategy"], "nah"),
     "spec.groups[0].partial_response_strategy"),
    ("prometheusrule-rule-without-expr", "PrometheusRule", lambda o: drop(o, ["spec", "groups", 0, "rules", 0, "expr"]),
     "spec.groups[0].rules[0].expr"),
]


def broken(case_id: str) -> dict:
    for cid, kind, mutate, _ in BROKEN:
        if cid == case_id:
            return mutate(sample(kind))
    raise KeyError(case_id)
