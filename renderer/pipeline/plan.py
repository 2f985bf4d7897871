"""Stage 2: from loaded inputs to one frozen ``BundlePlan`` per (environment, tenant, plugin).

load -> **plan** -> verify -> render -> validate -> write.  Here each install is resolved to its
catalog version, overrides are applied, the tenant's ceilings are enforced, egress targets are
resolved against platform.yaml, and every name is planned by the one rule of CONTRACT §2 (the
ceilings arithmetic lives in ``pipeline.ceilings``).
Like ``load``, it reports every problem at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

from renderer import __version__

from renderer.core import layout
from renderer.core.errors import InputError, Problem
from renderer.pipeline.ceilings import NEED_KEYS, ceiling, check_maxima, needs, override_line, show
from renderer.pipeline.load import CatalogVersion, EnvironmentInput, Inputs, Source
from renderer.pipeline.models import (IMAGE_RE, Budgets, Platform, Plugin, PluginInstall, Publisher, Replicas, Tenant,
                                      reserved_schema)
from renderer.trust.signatures import registry_prefix_matches

K8S_NAME_LIMIT = 63  # DNS label: namespaces, label values
PG_NAME_LIMIT = 63  # bytes: PostgreSQL NAMEDATALEN - 1
HASH_CHARS = 10
VAULT_ROOT = "adapstory/plugins"
# what a Kafka plugin's container gets from the platform (render: stores.kafka_env, kafka_secret_env)
KAFKA_ENV = frozenset({"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_GROUP_PREFIX", "KAFKA_SASL_MECHANISM", "KAFKA_SECURITY_PROTOCOL",
                       "KAFKA_TOPIC_PREFIX", "KAFKA_USERNAME", "KAFKA_PASSWORD", "KAFKA_SASL_JAAS_CONFIG",
                       "KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN", "KAFKA_SSL_KEYSTORE_KEY"})


def shorten(name: str, limit: int, sep: str) -> str:
    """The one naming rule: a name within ``limit`` bytes stays as it is; a longer one keeps its
    head and ends in ``sep`` + the first 10 hex digits of sha256(full name). Never ends in - or _."""
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_CHARS]
    head = name.encode()[: limit - HASH_CHARS - 1].decode("ascii", "ignore").rstrip("-_.")
    return f"{head}{sep}{digest}"


def label_value(text: str) -> str:
    """A label value: [A-Za-z0-9_.-], alphanumeric at both ends, at most 63 characters."""
    clean = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text)
    return shorten(clean.strip("-_."), K8S_NAME_LIMIT, "-")


@dataclass(frozen=True)
class Names:
    namespace: str
    app: str  # Argo CD Application, KafkaUser, workload name: one name per bundle
    db_role: str  # PostgreSQL role (crossplane.io/external-name)
    database: str
    schema: str
    vault_prefix: str  # adapstory/plugins/<plugin>/<tenant-id>/
    topic_prefix: str
    group_prefix: str
    secret: str  # Kubernetes Secret the ExternalSecret writes
    jwt_subject: str


@dataclass(frozen=True)
class EgressRule:
    target: str
    namespace: str
    pod_labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class BundlePlan:
    env: str
    tenant: str
    tier: str
    plugin: str
    version: str
    publisher: str
    path: str  # <env>/plugins/<tenant>/<plugin>
    names: Names
    spec: object  # models.PluginSpec with overrides applied (replicas, budgets, env)
    platform: object  # models.PlatformSpec
    public_key: str  # publisher's PEM (Kyverno attestor)
    image_repo: str
    image_digest: str
    egress: tuple[EgressRule, ...]
    ingress: EgressRule
    dns: EgressRule
    input_digest: str
    catalog_dir: Path
    signature_file: Optional[Path]
    signature: object = None  # verify.VerifiedSignature once verified
    install_sha256: str = ""  # of the install file: rollback holds and commit trailers name it
    delete_data: bool = False  # the install's spec.onUninstall.deleteData opt-in

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.plugin}"

    def with_signature(self, signature) -> "BundlePlan":
        return dataclasses.replace(self, signature=signature)


@dataclass(frozen=True)
class EnvironmentPlan:
    name: str
    platform: object  # models.PlatformSpec
    bundles: tuple[BundlePlan, ...]


def _endpoint(name: str, ep) -> EgressRule:
    return EgressRule(
        name, ep.namespace, tuple(sorted(ep.podLabels.items())), tuple((p.port, p.protocol) for p in ep.ports)
    )


def fingerprint_files(*paths: Path) -> str:
    """sha256 over the files that shape every bundle (templates, policies): folders or files."""
    h = hashlib.sha256()
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            h.update(path.relative_to(top.parent).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def plan(inputs: Inputs, shaping_digest: str, only: Optional[str] = None) -> tuple[EnvironmentPlan, ...]:
    """Resolve every install of every environment. ``only`` (TENANT/PLUGIN) must name one of
    them; the pipeline renders just that one, but all are planned (ceilings, names and the
    environment's Argo CD files span them)."""
    problems: list[Problem] = list(inputs.problems)
    _check_catalog(inputs, problems)
    envs = []
    matched_only = False
    for env in inputs.environments:
        bundles = _plan_environment(inputs, env, shaping_digest, problems)
        matched_only = matched_only or any(b.key == only for b in bundles)
        envs.append(EnvironmentPlan(env.name, env.platform.model.spec, tuple(bundles)))
    if only is not None and not matched_only and not problems:
        problems.append(Problem(only, 0, "--only", "no install matches TENANT/PLUGIN in the selected environments"))
    if problems:
        raise InputError(problems)
    return tuple(envs)


def _check_catalog(inputs: Inputs, problems: list[Problem]) -> None:
    # A plugin name belongs to the one publisher whose spec.plugins lists it (README: names have owners)
    owners: dict[str, list[tuple[str, Source, int]]] = defaultdict(list)
    for pub_name, pub in sorted(inputs.publishers.items()):
        for i, plugin_name in enumerate(pub.model.spec.plugins):
            owners[plugin_name].append((pub_name, pub, i))
    for plugin_name, claims in sorted(owners.items()):
        if len(claims) > 1:
            who = " and ".join(repr(c[0]) for c in claims)
            for _, pub, i in claims:
                problems.append(Problem(pub.path, pub.line("spec", "plugins", i), f"spec.plugins[{i}]",
                                        f"plugin {plugin_name!r} is claimed by publishers {who}; a plugin name "
                                        "belongs to one publisher"))
    for cv in inputs.catalog.values():
        src: Source[Plugin] = cv.plugin
        meta, spec = src.model.metadata, src.model.spec
        publisher = inputs.publishers.get(meta.publisher)
        if publisher is None:
            if meta.publisher in inputs.broken:
                continue  # its own file's problems are reported already
            problems.append(Problem(src.path, src.line("metadata", "publisher"), "metadata.publisher",
                                    f"unknown publisher {meta.publisher!r}: add publishers/{meta.publisher}.yaml"))
            continue
        if meta.name not in publisher.model.spec.plugins:
            owner = [c[0] for c in owners.get(meta.name, [])]
            why = (f"the name belongs to publisher {owner[0]!r}" if len(owner) == 1 else
                   f"publishers/{meta.publisher}.yaml does not list it in spec.plugins")
            problems.append(Problem(src.path, src.line("metadata", "publisher"), "metadata.publisher",
                                    f"publisher {meta.publisher!r} may not publish plugin {meta.name!r}: {why}"))
        if spec.database is not None and spec.database.schema_ is None and reserved_schema(meta.name.replace("-", "_")):
            problems.append(Problem(src.path, src.line("metadata", "name"), "metadata.name",
                                    f"the default schema {meta.name.replace('-', '_')!r} is a PostgreSQL system schema "
                                    "(public, information_schema, pg_*): set spec.database.schema"))
        repo = IMAGE_RE.match(spec.image).group("repo")
        prefixes = publisher.model.spec.registries
        if not any(registry_prefix_matches(repo, p) for p in prefixes):
            problems.append(Problem(src.path, src.line("spec", "image"), "spec.image",
                                    f"image repository {repo!r} is outside publisher {meta.publisher!r}'s registries "
                                    f"({', '.join(prefixes)})"))


def _plan_environment(inputs: Inputs, env: EnvironmentInput, shaping: str, problems: list[Problem]) -> list[BundlePlan]:
    platform_src: Source[Platform] = env.platform
    platform = platform_src.model.spec
    endpoints = {name: _endpoint(name, ep) for name, ep in platform.egressTargets.items()}
    owners: dict[tuple[str, str], list[tuple[str, Source]]] = defaultdict(list)
    producers: dict[str, list[tuple[str, Source]]] = defaultdict(list)  # topic -> installs producing it
    bundles: list[BundlePlan] = []
    # (catalog version, install model) -> (resolved spec, needs) of an install that resolved cleanly:
    # byte-identical installs share one model (load), and resolving is a pure function of the two
    resolved: dict[tuple[int, int], tuple] = {}
    # tenant ceilings (raw values) -> parsed, when within the platform's maxima; (id(need) or ids of a
    # tenant's needs, ceilings) that fit; ``alive`` holds those needs, so that no id is reused meanwhile
    fine_ceilings: dict[tuple, dict] = {}
    fitting: set[tuple] = set()
    alive: list[dict] = []
    image_repos: dict[str, str] = {}  # image reference -> its repository (a regular expression each)
    for tenant_input in env.tenants:
        tenant_src: Source[Tenant] = tenant_input.tenant
        tenant = tenant_src.model
        tenant_id = tenant.metadata.name
        limits = tuple(getattr(tenant.spec.ceilings, key) for key in NEED_KEYS)
        ceilings = fine_ceilings.get(limits)
        if ceilings is None:  # the maxima check is a function of these values (and the platform)
            before = len(problems)
            check_maxima(tenant_src, platform_src, problems)
            ceilings = {key: ceiling(tenant, key) for key in NEED_KEYS}
            if len(problems) == before:
                fine_ceilings[limits] = ceilings
        tenant_needs: list[dict] = []
        contributors: list[str] = []
        for inst_src in tenant_input.installs:
            inst: PluginInstall = inst_src.model
            name = inst.metadata.name
            cv: Optional[CatalogVersion] = inputs.catalog.get((name, inst.spec.version))
            if cv is None and (name, inst.spec.version) in inputs.broken:
                continue  # the catalog file's own problems are reported already
            if cv is None:
                known = sorted(v for (p, v) in inputs.catalog if p == name)
                hint = f"known versions: {', '.join(known)}" if known else f"no catalog/{name}/ in the catalog"
                problems.append(Problem(inst_src.path, inst_src.line("spec", "version"), "spec.version",
                                        f"unknown catalog version {name}@{inst.spec.version} ({hint})"))
                continue
            plugin: Plugin = cv.plugin.model
            publisher: Optional[Source[Publisher]] = inputs.publishers.get(plugin.metadata.publisher)
            if publisher is None:
                continue  # reported once by _check_catalog
            known = resolved.get((id(cv), id(inst)))
            if known is None:
                before = len(problems)
                spec, ok = _resolve(plugin, inst, inst_src, problems)
                if not ok:
                    continue
                need = needs(spec)
                if len(problems) == before:
                    resolved[(id(cv), id(inst))] = (spec, need)
            else:
                spec, need = known
            if spec.replicas.max > platform.maxima.replicas:
                overridden = inst.spec.overrides.replicas is not None and inst.spec.overrides.replicas.max is not None
                where = (inst_src, ("spec", "overrides", "replicas", "max")) if overridden else (cv.plugin, ("spec", "replicas", "max"))
                problems.append(Problem(where[0].path, where[0].line(*where[1]), ".".join(where[1]),
                                        f"replicas.max {spec.replicas.max} is above the platform's maximum "
                                        f"{platform.maxima.replicas} ({platform_src.path} spec.maxima.replicas)"))
                continue
            egress = []
            for i, target in enumerate(spec.egress):
                if target == "dns":
                    continue
                ep = platform.egressTargets.get(target)
                if ep is None:
                    problems.append(Problem(cv.plugin.path, cv.plugin.line("spec", "egress", i), f"spec.egress[{i}]",
                                            f"unknown egress target {target!r}: {platform_src.path} defines "
                                            f"{', '.join(sorted(platform.egressTargets))}"))
                    continue
                egress.append(endpoints[target])
            uses_kafka = bool(spec.kafka and (spec.kafka.produces or spec.kafka.consumes))
            if uses_kafka and "kafka" not in spec.egress:
                problems.append(Problem(cv.plugin.path, cv.plugin.line("spec", "kafka"), "spec.kafka",
                                        "the plugin uses Kafka but does not declare the 'kafka' egress target"))
            taken = sorted({s.env for s in spec.secrets if s.env} & KAFKA_ENV) if uses_kafka else []
            for var in taken:  # the Kafka credentials arrive under these names
                i = next(i for i, s in enumerate(spec.secrets) if s.env == var)
                problems.append(Problem(cv.plugin.path, cv.plugin.line("spec", "secrets", i, "env"),
                                        f"spec.secrets[{i}].env", f"{var} is set by the platform for a plugin that "
                                        "uses Kafka; pick another name"))
            # per-install ceilings (Fraction arithmetic is slow: the outcome is kept per need and ceilings)
            tenant_needs.append(need)
            if (id(need), limits) not in fitting:
                for key, amount in need.items():
                    if amount > ceilings[key]:
                        where = override_line(inst_src, key)
                        problems.append(Problem(inst_src.path, where[0], where[1],
                                                f"{key} {show(key, amount)} exceeds tenant {tenant_id}'s ceiling "
                                                f"{show(key, ceilings[key])}"))
                if all(amount <= ceilings[key] for key, amount in need.items()):
                    fitting.add((id(need), limits))
                    alive.append(need)  # its id stays its own while the set names it
            contributors.append(name)
            names = _names(env.name, tenant_id, plugin, platform)
            user = (f"{tenant_id}/{name}", inst_src)
            for kind, value in (("namespace", names.namespace), ("application name", names.app),
                                ("PostgreSQL role", names.db_role), ("Vault prefix", names.vault_prefix),
                                ("consumer-group prefix", names.group_prefix),
                                ("(database, schema)", f"{names.database}.{names.schema}")):
                owners[(kind, value)].append(user)
            for topic in sorted(set(spec.kafka.produces if spec.kafka else ())):
                producers[names.topic_prefix + topic].append(user)
            digest = _input_digest(shaping, platform_src, tenant_src, inst_src, cv, publisher)
            repo = image_repos.get(spec.image)
            if repo is None:
                repo = image_repos[spec.image] = IMAGE_RE.match(spec.image).group("repo")
            bundles.append(BundlePlan(
                env=env.name, tenant=tenant_id, tier=tenant.spec.tier, plugin=name, version=plugin.metadata.version,
                publisher=plugin.metadata.publisher, path=layout.bundle_path(env.name, tenant_id, name), names=names,
                spec=spec, platform=platform,
                public_key=publisher.model.spec.cosign.publicKey if publisher.model.spec.cosign else "",
                image_repo=repo, image_digest=spec.image.rsplit("@", 1)[1],
                egress=tuple(sorted(egress, key=lambda e: e.target)),
                ingress=endpoints[platform.ingressFrom], dns=endpoints["dns"],
                input_digest=digest, catalog_dir=cv.dir, signature_file=cv.signature_file,
                install_sha256=inst_src.sha256,
                delete_data=inst.spec.onUninstall.deleteData,
            ))
        together = (limits, tuple(map(id, tenant_needs)))
        if len(contributors) < 2 or together in fitting:
            continue
        totals: dict[str, Fraction] = defaultdict(Fraction)
        for need in tenant_needs:
            for key, amount in need.items():
                totals[key] += amount
        if all(total <= ceilings[key] for key, total in totals.items()):
            fitting.add(together)
            alive.extend(tenant_needs)
        for key, total in totals.items():
            if total > ceilings[key]:
                problems.append(Problem(tenant_src.path, tenant_src.line("spec", "ceilings", key), f"spec.ceilings.{key}",
                                        f"installs need {show(key, total)} {key} in total "
                                        f"({', '.join(sorted(contributors))}), above the ceiling {show(key, ceilings[key])}"))
    # 60,000 names at 10,000 bundles: only the shared ones are sorted and reported
    for (kind, value), users in sorted(item for item in owners.items() if len(item[1]) > 1):
        who = " and ".join(u for u, _ in users)
        for _, src in users:
            problems.append(Problem(src.path, src.line("metadata", "name"), "metadata.name",
                                    f"{who} map to the same {kind} {value!r} in environment {env.name}; "
                                    "rename one plugin or tenant"))
    # a KafkaTopic has one owner: the bundle that renders it
    for topic, users in sorted(item for item in producers.items() if len(item[1]) > 1):
        who = " and ".join(u for u, _ in users)
        for _, src in users:
            problems.append(Problem(src.path, src.line("metadata", "name"), "metadata.name",
                                    f"{who} both produce topic {topic!r} in environment {env.name}; "
                                    "a topic has one producing install (its KafkaTopic's owner)"))
    return sorted(bundles, key=lambda b: (b.tenant, b.plugin))


def _resolve(plugin: Plugin, inst: PluginInstall, src: Source, problems: list[Problem]):
    spec = plugin.spec
    ov = inst.spec.overrides
    replicas = spec.replicas
    if ov.replicas is not None:
        lo = ov.replicas.min if ov.replicas.min is not None else replicas.min
        hi = ov.replicas.max if ov.replicas.max is not None else replicas.max
        if lo > hi:
            problems.append(Problem(src.path, src.line("spec", "overrides", "replicas"), "spec.overrides.replicas",
                                    f"min {lo} is larger than max {hi} after overrides"))
            return spec, False
        replicas = Replicas(min=lo, max=hi)
    budgets = spec.budgets
    if ov.budgets is not None:
        budgets = Budgets(
            llmTokensPerDay=ov.budgets.llmTokensPerDay if ov.budgets.llmTokensPerDay is not None else budgets.llmTokensPerDay,
            requestsPerSecond=ov.budgets.requestsPerSecond if ov.budgets.requestsPerSecond is not None else budgets.requestsPerSecond,
        )
    secret_envs = {s.env for s in spec.secrets if s.env}
    for key in sorted(set(ov.env) & secret_envs):
        problems.append(Problem(src.path, src.line("spec", "overrides", "env", key), f"spec.overrides.env.{key}",
                                "this variable carries a secret; it cannot be overridden with a plain value"))
    env = dict(spec.env)
    env.update(ov.env)
    return spec.model_copy(update={"replicas": replicas, "budgets": budgets, "env": env}), not (set(ov.env) & secret_envs)


def _names(env: str, tenant_id: str, plugin: Plugin, platform) -> Names:
    name = plugin.metadata.name
    ns = shorten(f"plugin-{tenant_id}-{name}", K8S_NAME_LIMIT, "-")
    tenant_us = tenant_id.replace("-", "_")
    schema = plugin.spec.database.schema_ if plugin.spec.database and plugin.spec.database.schema_ else name.replace("-", "_")
    return Names(
        namespace=ns,
        app=ns,
        db_role=shorten(f"plugin_{name}_{tenant_id}".replace("-", "_"), PG_NAME_LIMIT, "_"),
        database=shorten(platform.database.name.replace("{tenant}", tenant_us), PG_NAME_LIMIT, "_"),
        schema=schema,
        vault_prefix=f"{VAULT_ROOT}/{name}/{tenant_id}/",
        topic_prefix=platform.kafka.topicPrefix.replace("{tenant}", tenant_id),
        group_prefix=platform.kafka.groupPrefix.replace("{tenant}", tenant_id).replace("{plugin}", name),
        secret=f"{name}-secrets"[:253],
        jwt_subject=f"plugin:{name}:{tenant_id}",
    )


def _input_digest(shaping: str, platform: Source, tenant: Source, install: Source, cv: CatalogVersion, publisher: Source) -> str:
    h = hashlib.sha256()
    for part in (f"renderer={__version__}", f"shaping={shaping}", f"platform={platform.sha256}",
                 f"tenant={tenant.sha256}", f"install={install.sha256}", f"catalog={cv.files_sha256}",
                 f"publisher={publisher.sha256}"):
        h.update(part.encode() + b"\n")
    return "sha256:" + h.hexdigest()
