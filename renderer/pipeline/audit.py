"""Stage 5, per environment: the isolation audit, over small per-bundle facts. Never mutates.

load -> plan -> verify -> render -> **validate** -> write.  The worker that rendered a bundle takes
its facts (``bundle_facts``: who it is, the shared names it claims, where its ACLs and
NetworkPolicies lead) beside the per-bundle gates (``validate``); the parent audits an environment's
facts at once (``EnvironmentAudit``) for what no single-object check can see: two bundles claiming
the same namespace, Vault prefix, Vault role or policy, KafkaUser, Kafka secret, KafkaTopic,
consumer-group prefix, DB role or (database, schema); a bundle reading a Kafka secret other than
its own KafkaUser's. Violations read ``bundle/file: kind/name: rule: message``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Optional, Sequence


def object_id(obj: dict) -> str:
    """``Kind/name`` of an object, as violations name it."""
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


TENANT_LABEL = "plugins.adapstory.io/tenant"
_FACT_KEYS = frozenset(("bundle", "tenant", "plugin", "claims", "acl_names", "peers", "namespaces", "topic_prefix",
                        "kafka_users", "kafka_secrets"))
TOPIC_PREFIX_ANNOTATION = "plugins.adapstory.io/topic-prefix"
PLUGIN_LABEL = "plugins.adapstory.io/plugin"


def bundle_facts(path: str, objects: Sequence[tuple[str, dict]]) -> dict:
    """What the environment-wide audit needs of one bundle (small, picklable): who it is, which
    shared names it claims, which Kafka names its ACLs touch, where its NetworkPolicies lead,
    and the namespaces its objects live in."""
    claims: list[tuple[str, str]] = []
    acl_names: list[tuple[str, str]] = []
    peers: list[tuple[str, str]] = []  # (file: kind/name, namespace or "*")
    namespaces: set[str] = set()
    tenant = plugin = topic_prefix = ""
    kafka_users: set[str] = set()
    kafka_secrets: list[tuple[str, str]] = []  # (file: kind/name, namespace/secret) the bundle can read
    stores = {(o.get("metadata") or {}).get("name", ""): ((o.get("spec") or {}).get("provider") or {})
              for _, o in objects if o.get("kind") == "SecretStore"}
    for fname, obj in objects:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        tenant = tenant or labels.get(TENANT_LABEL, "")
        plugin = plugin or labels.get(PLUGIN_LABEL, "")
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        if kind == "Namespace":
            claims.append(("namespace", meta.get("name", "")))
            namespaces.add(meta.get("name", ""))
        elif meta.get("namespace"):
            namespaces.add(meta["namespace"])
        if kind == "KafkaUser":
            claims.append(("KafkaUser", f"{meta.get('namespace', '')}/{meta.get('name', '')}"))
            annotations = meta.get("annotations")
            topic_prefix = str(annotations.get(TOPIC_PREFIX_ANNOTATION, "")) if isinstance(annotations, dict) else ""
            kafka_users.add(f"{meta.get('namespace', '')}/{meta.get('name', '')}")
            for acl in (spec.get("authorization") or {}).get("acls") or []:
                res = acl.get("resource") or {}
                acl_names.append((f"{fname}: {object_id(obj)}", res.get("name", "")))
                if res.get("type") == "group":
                    claims.append(("consumer-group prefix", res.get("name", "")))
        elif kind == "ExternalSecret":
            ref = spec.get("secretStoreRef") or {}
            kube = (stores.get(ref.get("name", "")) or {}).get("kubernetes") if ref.get("kind", "SecretStore") == "SecretStore" else None
            for item in spec.get("data") or []:
                key = (item.get("remoteRef") or {}).get("key", "")
                if isinstance(kube, dict):  # the KafkaUser's secret, read from the Kafka namespace
                    kafka_secrets.append((f"{fname}: {object_id(obj)}", f"{kube.get('remoteNamespace', 'default')}/{key}"))
                else:
                    claims.append(("Vault prefix", "/".join(key.split("/")[:4]) + "/"))
        elif kind == "KafkaTopic":
            topic = spec.get("topicName") or meta.get("name", "")
            claims.append(("KafkaTopic", f"{meta.get('namespace', '')}/{topic}"))
            acl_names.append((f"{fname}: {object_id(obj)}", topic))
        elif kind == "Role" and obj.get("apiVersion", "").startswith("rbac.authorization.k8s.io/"):
            for rule in obj.get("rules") or []:
                if "secrets" in (rule.get("resources") or []):
                    for name in rule.get("resourceNames") or ["*"]:
                        kafka_secrets.append((f"{fname}: {object_id(obj)}", f"{meta.get('namespace', '')}/{name}"))
        elif kind == "SecretStore":
            role = (((spec.get("provider") or {}).get("vault") or {}).get("auth") or {}).get("kubernetes", {}).get("role")
            if role:
                claims.append(("Vault role", role))
        elif kind == "KubernetesAuthEngineRole":
            claims.append(("Vault role", spec.get("name") or meta.get("name", "")))
        elif kind == "Policy" and obj.get("apiVersion", "").startswith("redhatcop.redhat.io/"):
            claims.append(("Vault policy", spec.get("name") or meta.get("name", "")))
        elif kind == "Role" and obj.get("apiVersion", "").startswith("postgresql.sql"):
            claims.append(("DB role", (meta.get("annotations") or {}).get("crossplane.io/external-name", "")))
        elif kind == "Schema" and obj.get("apiVersion", "").startswith("postgresql.sql"):
            schema = (meta.get("annotations") or {}).get("crossplane.io/external-name", meta.get("name", ""))
            claims.append(("(database, schema)", f"{(spec.get('forProvider') or {}).get('database', '')}.{schema}"))
        elif kind == "NetworkPolicy":
            for direction in ("ingress", "egress"):
                for rule in spec.get(direction) or []:
                    targets = rule.get("to" if direction == "egress" else "from")
                    if not targets:
                        peers.append((f"{fname}: {object_id(obj)}", "*"))
                        continue
                    for peer in targets:
                        peers.append((f"{fname}: {object_id(obj)}", _peer_namespace(peer)))
    claims += [("Kafka secret", secret) for _, secret in kafka_secrets]
    return {"bundle": path, "tenant": tenant, "plugin": plugin, "claims": sorted(set(claims)),  # keys: _FACT_KEYS
            "acl_names": acl_names, "peers": peers, "namespaces": sorted(namespaces), "topic_prefix": topic_prefix,
            "kafka_users": sorted(kafka_users), "kafka_secrets": kafka_secrets}


_PAIRS = ("claims", "acl_names", "peers", "kafka_secrets")  # lists of pairs in bundle_facts


def facts_from_json(doc) -> Optional[dict]:
    """``bundle_facts`` back from its JSON form (pairs as tuples); None when ``doc`` is not that shape."""
    if not isinstance(doc, dict) or set(doc) != _FACT_KEYS:
        return None
    out = dict(doc)
    for key in _PAIRS:  # plain loops: the kept index reads 10,000 of these a run
        pairs = doc[key]
        if not isinstance(pairs, list):
            return None
        converted = []
        for x in pairs:
            if not isinstance(x, list) or len(x) != 2:
                return None
            a, b = x
            if not isinstance(a, str) or not isinstance(b, str):
                return None
            converted.append((a, b))
        out[key] = converted
    for key in ("namespaces", "kafka_users"):
        values = doc[key]
        if not isinstance(values, list):
            return None
        for v in values:
            if not isinstance(v, str):
                return None
    if not all(isinstance(doc[k], str) for k in ("bundle", "tenant", "plugin", "topic_prefix")):
        return None
    return out


def _peer_namespace(peer: dict) -> str:
    """The one namespace a NetworkPolicy peer names, or "*" when it reaches more than one."""
    if "ipBlock" in peer:
        return "*"
    selector = peer.get("namespaceSelector")
    if selector is None:
        return ""  # the policy's own namespace
    labels = selector.get("matchLabels") or {}
    if selector.get("matchExpressions") or set(labels) != {"kubernetes.io/metadata.name"}:
        return "*"
    return labels["kubernetes.io/metadata.name"]


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _names_tenant(text: str, tenant: str) -> bool:
    """Whether ``text`` holds ``tenant`` as a whole id (not inside a longer name), followed by '.' or '_'."""
    start = text.find(tenant)
    while start != -1:
        end = start + len(tenant)
        if (start == 0 or text[start - 1] not in _ID_CHARS) and end < len(text) and text[end] in "._":
            return True
        start = text.find(tenant, start + 1)
    return False


def _covered(ordered: list[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    """The (string, owner) pairs of ``ordered`` (sorted) whose string starts with ``prefix``: one
    contiguous run in sorted order, so this costs a bisection and the run."""
    i = bisect.bisect_left(ordered, (prefix, ""))
    out = []
    while i < len(ordered) and ordered[i][0].startswith(prefix):
        out.append(ordered[i])
        i += 1
    return out


class EnvironmentAudit:
    """Isolation across all bundles of one environment, by the ownership rules of CONTRACT §2.

    A tenant's topic namespace is its topic prefix: platform.yaml's ``kafka.topicPrefix`` with
    ``{tenant}`` filled in when ``topic_prefix`` (that rule) is given, else the prefix each
    KafkaUser records (``plugins.adapstory.io/topic-prefix``), which must then be one per tenant
    and contain the tenant id. A topic ACL belongs to the tenant whose prefix it starts with, and
    no tenant's prefix may start another's: no guessing from dot-separated parts."""

    def __init__(self, env: str, facts: list[dict], project: Optional[tuple[str, dict]],
                 topic_prefix: Optional[str] = None):
        self.env = env
        self.facts = sorted(facts, key=lambda f: f["bundle"])
        self.project = project
        self.topic_prefix = topic_prefix

    def _prefixes(self, out: list[str]) -> dict[str, str]:
        """tenant -> its topic prefix (empty when unknown); reports inconsistent claims."""
        prefixes: dict[str, str] = {}
        for f in self.facts:
            if not f["tenant"] or not any(k == "KafkaUser" for k, _ in f["claims"]):
                continue
            recorded = f.get("topic_prefix", "")
            want = self.topic_prefix.replace("{tenant}", f["tenant"]) if self.topic_prefix else recorded
            where = f"{f['bundle']}: KafkaUser: isolation-topic-prefix:"
            if recorded != want or not _names_tenant(want, f["tenant"]):
                out.append(f"{where} recorded topic prefix {recorded!r} is not tenant {f['tenant']}'s "
                           f"({want!r})" if self.topic_prefix else f"{where} recorded topic prefix {recorded!r} "
                           f"does not contain tenant id {f['tenant']}")
                want = self.topic_prefix.replace("{tenant}", f["tenant"]) if self.topic_prefix else ""
            if prefixes.get(f["tenant"], want) != want:
                out.append(f"{where} topic prefix {want!r} differs from {prefixes[f['tenant']]!r} of tenant "
                           f"{f['tenant']}'s other bundles")
            prefixes.setdefault(f["tenant"], want)
        return prefixes

    def violations(self) -> list[str]:
        out: list[str] = []
        owners: dict[tuple[str, str], list[str]] = defaultdict(list)
        for fact in self.facts:
            for claim in fact["claims"]:
                owners[tuple(claim)].append(fact["bundle"])
        for what, value in sorted(claim for claim, bundles in owners.items() if len(bundles) > 1):  # the shared ones
            bundles = owners[what, value]
            out.append(f"{bundles[0]}: {what} {value}: isolation-shared-owner: also claimed by {', '.join(bundles[1:])}")
        ns_owner = {ns: f["bundle"] for f in self.facts for kind, ns in f["claims"] if kind == "namespace"}
        tenant_bundle: dict[str, str] = {}
        for f in self.facts:
            tenant_bundle.setdefault(f["tenant"], f["bundle"])
        prefixes = self._prefixes(out)
        # prefix checks by sorted order (a prefix and the strings it starts are one run), not pairs
        by_prefix = sorted((prefix, tenant) for tenant, prefix in prefixes.items() if prefix)
        owners_of_prefix: dict[str, list[str]] = defaultdict(list)
        for prefix, tenant in by_prefix:
            owners_of_prefix[prefix].append(tenant)
        prefix_lengths = sorted({len(prefix) for prefix, _ in by_prefix})
        for tenant, prefix in sorted(prefixes.items()):
            if not prefix:
                continue
            for theirs, other in sorted(_covered(by_prefix, prefix), key=lambda pair: pair[1]):
                if other != tenant:
                    out.append(f"{tenant_bundle[tenant]}: KafkaUser: isolation-topic-prefix: tenant {tenant}'s topic "
                               f"prefix {prefix!r} also covers tenant {other}'s {theirs!r}")
        group_owner = {v: f["bundle"] for f in self.facts for k, v in f["claims"] if k == "consumer-group prefix"}
        groups = sorted((g, "") for g in group_owner)
        for g, _ in groups:
            for h, _ in _covered(groups, g):
                if h != g:
                    out.append(f"{group_owner[g]}: KafkaUser: isolation-group-prefix: consumer-group prefix {g!r} "
                               f"also covers {h!r} of {group_owner[h]}")
        for f in self.facts:
            own_groups = {v for k, v in f["claims"] if k == "consumer-group prefix"}
            for where, name in f["acl_names"]:
                if name in own_groups:
                    if f["tenant"] and not _names_tenant(name, f["tenant"]):
                        out.append(f"{f['bundle']}/{where}: isolation-foreign-topic: group {name!r} does not name "
                                   f"tenant {f['tenant']}")
                    continue
                prefix = prefixes.get(f["tenant"], "")
                if not prefix or not name.startswith(prefix):
                    out.append(f"{f['bundle']}/{where}: isolation-foreign-topic: ACL {name!r} lies outside tenant "
                               f"{f['tenant']}'s topic namespace{f' ({prefix!r})' if prefix else ''}")
                touched = sorted((other, name[:n]) for n in prefix_lengths if n <= len(name)
                                 for other in owners_of_prefix.get(name[:n], ()))
                for other, theirs in touched:
                    if other != f["tenant"]:
                        out.append(f"{f['bundle']}/{where}: isolation-foreign-topic: ACL {name!r} touches tenant "
                                   f"{other}'s topic namespace (owned by {tenant_bundle[other]})")
            # the only Kafka secret a bundle may read is the one Strimzi writes for its own KafkaUser
            for where, secret in f.get("kafka_secrets", ()):
                if secret not in f.get("kafka_users", ()):
                    out.append(f"{f['bundle']}/{where}: isolation-foreign-kafka-secret: reads secret {secret}, "
                               f"which is not the secret of the bundle's own KafkaUser")
            own = set(f["namespaces"])
            for where, ns in f["peers"]:
                if ns == "*":
                    out.append(f"{f['bundle']}/{where}: isolation-open-network: a rule reaches every namespace or address")
                elif ns in ns_owner and ns not in own:
                    out.append(f"{f['bundle']}/{where}: isolation-cross-tenant-network: a rule reaches namespace "
                               f"{ns} of {ns_owner[ns]}")
        if self.project is not None:
            fname, project = self.project
            dest = {d.get("namespace", "") for d in (project.get("spec") or {}).get("destinations") or []}
            used = {ns for f in self.facts for ns in f["namespaces"]}
            where = f"{self.env}/argocd/{fname}: {object_id(project)}"
            for ns in sorted(dest - used):
                out.append(f"{where}: isolation-appproject-destinations: destination {ns} is used by no bundle")
            for ns in sorted(used - dest):
                out.append(f"{where}: isolation-appproject-destinations: namespace {ns} is used by a bundle "
                           "but is not a destination")
        return out
