"""``render mark-good --from-argocd``: record known-good for the bundles Argo CD reports healthy at a commit.

cli (``cli.argocd_cmd``) -> **flows.argocd_health** -> cluster.argocd (the Kubernetes API, read only)
                                                    -> gitops (the GitOps repo and its ledger).

One environment at a time. The commit is ``--commit`` or the GitOps branch head, resolved to a full
id. The Applications are those in the environment's Argo CD namespace (``--argocd-namespace``, else
the namespace of the environment's rendered Applications at that commit, which ``render`` wrote
from platform.yaml's ``argocd.namespace``) labelled ``plugins.adapstory.io/env=<env>``. Each one's
identity is its ``spec.source.path`` (``<env>/plugins/<tenant>/<plugin>``); its tenant and plugin
labels must agree with it. A bundle is recorded when, and only when, its one Application has

* ``status.sync.revision`` equal to the commit and ``status.sync.status`` ``Synced``,
* ``status.health.status`` ``Healthy``,
* ``status.operationState.phase`` ``Succeeded`` and, when present,
  ``status.operationState.syncResult.revision`` equal to the commit;

every other Application, and every bundle of the commit that no Application claims, is reported
as skipped with its reasons. Nothing the cluster says is trusted beyond this: ``gitops.mark_good``
checks again that the commit is on the branch and holds the bundle.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import yaml

from renderer.cluster.argocd import Application, KubeSettings, list_applications
from renderer.core.errors import OutsideSystemError, RefusingToProceed, UsageError
from renderer import gitops
from renderer.pipeline.plan import label_value

ENV_LABEL = "plugins.adapstory.io/env"
TENANT_LABEL = "plugins.adapstory.io/tenant"
PLUGIN_LABEL = "plugins.adapstory.io/plugin"
SYNCED, HEALTHY, SUCCEEDED = "Synced", "Healthy", "Succeeded"
RECORDED, ALREADY, SKIPPED = "recorded", "already recorded", "skipped"
_NAME = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_ENV_RE = re.compile(rf"^{_NAME}$")


@dataclass(frozen=True)
class BundleOutcome:
    """What happened to one bundle (or to one Application that names no bundle of the environment)."""

    bundle: str  # <env>/plugins/<tenant>/<plugin>; "" when the Application names no bundle
    application: str  # <namespace>/<name>; "" when no Application claims the bundle
    outcome: str  # RECORDED | ALREADY | SKIPPED
    reasons: tuple[str, ...] = ()
    ledger_commit: Optional[str] = None

    def to_json(self) -> dict:
        return {"bundle": self.bundle or None, "application": self.application or None, "outcome": self.outcome,
                "reasons": list(self.reasons), "ledgerCommit": self.ledger_commit}


@dataclass(frozen=True)
class ArgoCDHealthResult:
    env: str
    commit: str
    branch: str
    namespaces: tuple[str, ...]
    outcomes: tuple[BundleOutcome, ...] = field(default_factory=tuple)

    def of(self, outcome: str) -> tuple[BundleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.outcome == outcome)

    @property
    def recorded(self) -> tuple[BundleOutcome, ...]:
        return self.of(RECORDED)

    @property
    def already_recorded(self) -> tuple[BundleOutcome, ...]:
        return self.of(ALREADY)

    @property
    def skipped(self) -> tuple[BundleOutcome, ...]:
        return self.of(SKIPPED)

    def to_json(self) -> dict:
        return {"env": self.env, "commit": self.commit, "branch": self.branch, "namespaces": list(self.namespaces),
                "recorded": len(self.recorded), "alreadyRecorded": len(self.already_recorded),
                "skipped": len(self.skipped), "bundles": [o.to_json() for o in self.outcomes]}


@dataclass(frozen=True)
class _Commit:
    sha: str
    branch: str
    bundles: frozenset[str]  # bundle paths of the environment at the commit
    namespaces: tuple[str, ...]  # namespaces of the environment's rendered Applications at the commit


def mark_good_from_argocd(env: str, repo: str, *, commit: Optional[str] = None, branch: Optional[str] = None,
                          push: bool = False, kube: KubeSettings = KubeSettings(),
                          namespace: Optional[str] = None) -> ArgoCDHealthResult:
    """Record known-good for every bundle of ``env`` whose Argo CD Application is synced, healthy and
    successfully operated at ``commit`` (default: the head of ``branch``). Raises ``RefusingToProceed``
    (exit 1) for an unknown commit or environment, ``OutsideSystemError`` (exit 3) when the API server
    or the git remote fails."""
    if not _ENV_RE.match(env or ""):
        raise UsageError(f"--env {env!r} is not an environment name (a DNS label)")
    if namespace is not None and not _ENV_RE.match(namespace):
        raise UsageError(f"--argocd-namespace {namespace!r} is not a namespace name (a DNS label)")
    at = _resolve(repo, env, commit, branch, push)
    namespaces = (namespace,) if namespace else at.namespaces
    if not namespaces:
        raise RefusingToProceed(
            f"{repo}: {env}/argocd/ holds no Application at {at.sha[:12]} on {at.branch}, so the Argo CD "
            f"namespace is unknown; give --argocd-namespace, or check --env {env}")
    apps = [a for ns in namespaces for a in list_applications(kube, ns, f"{ENV_LABEL}={env}")]
    outcomes, eligible = _classify(env, at, apps, namespaces)
    for bundle, app in eligible:
        _, _, tenant, plugin = bundle.split("/")
        try:
            record, written = gitops.mark_good(repo, env, tenant, plugin, commit_ish=at.sha, branch=at.branch,
                                               push=push)
        except RefusingToProceed as exc:
            outcomes.append(BundleOutcome(bundle, app.ref, SKIPPED, (f"not recorded: {exc}",)))
            continue
        except OutsideSystemError as exc:
            done = sum(1 for o in outcomes if o.outcome == RECORDED)
            raise OutsideSystemError(f"{exc} (while recording {bundle}; {done} bundle(s) recorded before)") from None
        outcomes.append(BundleOutcome(bundle, app.ref, RECORDED if written else ALREADY, (), record.ledger_commit))
    ordered = tuple(sorted(outcomes, key=lambda o: (o.bundle or "~", o.application)))
    return ArgoCDHealthResult(env, at.sha, at.branch, tuple(namespaces), ordered)


def _resolve(repo: str, env: str, commit: Optional[str], branch: Optional[str], push: bool) -> _Commit:
    """The commit as a full id, its branch, the environment's bundles and Argo CD namespaces there.
    (Reads the GitOps repo through ``gitops``; the only other call into it is ``mark_good``.)"""
    with gitops.workspace(repo, branch, remote=gitops.is_url(repo) or push, write=False) as ws:
        sha = gitops.commit_on_branch(ws, commit)
        tree = ws.g.tree(sha)
        bundles = set()
        apps = {}
        for path, (_mode, oid) in tree.items():
            parts = path.split("/")
            if len(parts) == 5 and parts[0] == env and parts[1] == "plugins" and parts[4] == "bundle.json":
                bundles.add("/".join(parts[:4]))
            elif len(parts) == 3 and parts[:2] == [env, "argocd"] and parts[2].startswith("application-"):
                apps[path] = oid
        blobs = ws.g.read_blobs(apps.values())
        namespaces = set()
        for path, oid in sorted(apps.items()):
            try:
                doc = yaml.safe_load(blobs[oid])
            except yaml.YAMLError:
                raise RefusingToProceed(f"{path} at {sha[:12]} is not valid YAML; refusing to proceed") from None
            ns = ((doc or {}).get("metadata") or {}).get("namespace") if isinstance(doc, dict) else None
            if isinstance(ns, str) and _ENV_RE.match(ns):
                namespaces.add(ns)
        return _Commit(sha, ws.branch, frozenset(bundles), tuple(sorted(namespaces)))


def _classify(env: str, at: _Commit, apps: list[Application], namespaces) -> tuple[list[BundleOutcome], list]:
    """Outcomes of every Application that cannot be recorded and of every unclaimed bundle, and the
    (bundle, Application) pairs that pass every rule."""
    outcomes: list[BundleOutcome] = []
    claims: dict[str, list[Application]] = defaultdict(list)
    path_re = re.compile(rf"^{re.escape(env)}/plugins/(?P<tenant>{_NAME})/(?P<plugin>{_NAME})$")
    for app in apps:
        m = path_re.match(app.source_path or "")
        if not m:
            why = (f"spec.source.path {app.source_path!r} is not a bundle of {env} ({env}/plugins/<tenant>/<plugin>)"
                   if app.source_path else "no spec.source.path (not a single-source bundle Application)")
            outcomes.append(BundleOutcome("", app.ref, SKIPPED, (why,)))
            continue
        disagree = _label_disagreements(app, env, m.group("tenant"), m.group("plugin"))
        if disagree:
            outcomes.append(BundleOutcome(app.source_path, app.ref, SKIPPED, tuple(disagree)))
            continue
        claims[app.source_path].append(app)
    eligible = []
    for bundle in sorted(claims):
        owners = claims[bundle]
        if len(owners) > 1:
            names = ", ".join(a.ref for a in owners)
            for app in owners:
                outcomes.append(BundleOutcome(bundle, app.ref, SKIPPED,
                                              (f"{len(owners)} Applications claim this bundle ({names})",)))
            continue
        app = owners[0]
        if bundle not in at.bundles:
            outcomes.append(BundleOutcome(bundle, app.ref, SKIPPED, (f"no such bundle at {at.sha[:12]}",)))
            continue
        reasons = health_reasons(app, at.sha)
        if reasons:
            outcomes.append(BundleOutcome(bundle, app.ref, SKIPPED, tuple(reasons)))
        else:
            eligible.append((bundle, app))
    where = ", ".join(namespaces)
    for bundle in sorted(at.bundles - set(claims)):
        if not any(o.bundle == bundle for o in outcomes):
            outcomes.append(BundleOutcome(bundle, "", SKIPPED,
                                          (f"no Application labelled {ENV_LABEL}={env} in {where} syncs it",)))
    return outcomes, eligible


def _label_disagreements(app: Application, env: str, tenant: str, plugin: str) -> list[str]:
    out = []
    for key, want in ((ENV_LABEL, env), (TENANT_LABEL, label_value(tenant)), (PLUGIN_LABEL, label_value(plugin))):
        have = app.labels.get(key)
        if have != want:
            out.append(f"label {key}={have!r} disagrees with spec.source.path {app.source_path} ({want!r})")
    return out


def health_reasons(app: Application, commit: str) -> list[str]:
    """Why ``app`` is not known good at ``commit``; empty when it is."""
    if not app.has_status:
        return ["no status yet (Argo CD has not reconciled the Application)"]
    reasons = []
    revision = (app.sync_revision or "").lower()
    if revision != commit.lower():
        reasons.append(f"synced to another revision ({revision[:12] or 'none'}, not {commit[:12]})")
    if app.sync_status != SYNCED:
        reasons.append(app.sync_status or "no sync status")
    if app.health_status != HEALTHY:
        reasons.append(_with(app.health_status or "no health status", app.health_message))
    if app.operation_phase is None:
        reasons.append("no sync operation recorded")
    elif app.operation_phase != SUCCEEDED:
        reasons.append(_with(f"operation {app.operation_phase}", app.operation_message))
    elif app.operation_revision and app.operation_revision.lower() != commit.lower():
        reasons.append(f"last sync operation was at another revision ({app.operation_revision[:12]})")
    return reasons


def _with(head: str, message: Optional[str]) -> str:
    if not message:
        return head
    text = " ".join(message.split())
    return f"{head}: {text[:200]}" + ("..." if len(text) > 200 else "")
