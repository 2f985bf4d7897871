"""The orchestrator: a request in, bundles out. Short on purpose; each stage lives in its module.

cli -> **pipeline** -> load -> plan -> verify -> render -> validate -> write.
Rendering and validation of bundles are independent of each other, so they run in worker
processes (one per core) in chunks; the parent streams their files into the staging folder.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import migrations
from . import verify as verify_stage
from .errors import InputError, ValidationFailed
from .load import load
from .plan import BundlePlan, EnvironmentPlan, fingerprint_files, plan
from .render import Renderer
from .validate import BundleGates, EnvironmentAudit
from .write import Staging
from .yamlio import dump

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT / "templates"
POLICIES = PROJECT / "policies"
PARALLEL_THRESHOLD = 64  # below this many bundles, worker start-up costs more than it saves
CHUNK = 32


@dataclass(frozen=True)
class BuildRequest:
    env_dir: Path
    out: Optional[Path]
    env: Optional[str] = None
    only: Optional[str] = None
    schema_locations: tuple[str, ...] = ()
    ignore_missing_schemas: bool = False
    offline: bool = False
    insecure_registries: frozenset[str] = frozenset()
    cache_dir: Optional[Path] = None
    jobs: int = 0  # 0: one per core
    progress: Optional[Callable[[int, int], None]] = None


@dataclass(frozen=True)
class RenderedBundle:
    path: str
    files: tuple  # ((name, bytes), ...)
    violations: tuple[str, ...]
    facts: dict  # what the environment-wide isolation audit needs


@dataclass
class BuildResult:
    environments: tuple[EnvironmentPlan, ...]
    bundles: int = 0
    objects: int = 0
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


_worker: dict = {}


def _init_worker(schema_locations: tuple[str, ...], ignore_missing: bool) -> None:
    _worker["renderer"] = Renderer(TEMPLATES)
    _worker["gates"] = BundleGates(schema_locations, ignore_missing, POLICIES)


def _render_chunk(plans: list[BundlePlan]) -> list[RenderedBundle]:
    renderer, gates = _worker["renderer"], _worker["gates"]
    out = []
    for p in plans:
        bundle = renderer.render_bundle(p)
        violations = gates.check(bundle, p.platform.kubernetesVersion)
        out.append(RenderedBundle(p.path, bundle.files, tuple(violations),
                                  gates.facts(bundle)))
    return out


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def build(request: BuildRequest) -> BuildResult:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if request.out is not None:
        Staging.check_target(request.out)
    inputs = load(request.env_dir, request.env)
    shaping = fingerprint_files(TEMPLATES, POLICIES)
    problems: list = []
    try:
        envs = plan(inputs, shaping, request.only)
    except InputError as exc:
        problems += exc.problems
    timings["load+plan"] = time.perf_counter() - t0
    t = time.perf_counter()
    used = {(i.model.metadata.name, i.model.spec.version) for e in inputs.environments for ti in e.tenants
            for i in ti.installs if (i.model.metadata.name, i.model.spec.version) in inputs.catalog}
    findings = migrations.check_catalog(inputs.root / "catalog", used)
    problems += migrations.as_problems(findings, inputs.root)
    warnings = [_warning(f, inputs.root) for f in findings if not f.blocking]
    timings["migrations"] = time.perf_counter() - t
    if problems:
        raise InputError(problems)

    selected = tuple(p for e in envs for p in e.bundles if request.only is None or p.key == request.only)
    t = time.perf_counter()
    selected = verify_stage.verify(inputs, selected, offline=request.offline,
                                   insecure_registries=request.insecure_registries, cache_dir=request.cache_dir)
    timings["verify"] = time.perf_counter() - t

    owned = None
    if request.only is not None:
        owned = {p.path for p in selected} | {f"{e.name}/argocd" for e in envs}
    elif request.env is not None:
        owned = {e.name for e in envs}
    staging = Staging(request.out, owned) if request.out is not None else None
    try:
        result = _render_all(request, envs, selected, staging, timings)
        if staging is not None:
            t = time.perf_counter()
            staging.commit()
            timings["commit"] = time.perf_counter() - t
    except BaseException:
        if staging is not None:
            staging.discard()
        raise
    result.seconds = time.perf_counter() - t0
    result.timings = timings
    result.warnings = warnings
    return result


def _warning(finding, root: Path) -> str:
    try:
        path = finding.path.relative_to(root).as_posix()
    except ValueError:
        path = str(finding.path)
    return f"{path}:{finding.line}: migrations: {finding.rule}: {finding.message}"


def _render_all(request: BuildRequest, envs, plans, staging: Optional[Staging], timings: dict) -> BuildResult:
    t = time.perf_counter()
    plans = list(plans)
    jobs = request.jobs or os.cpu_count() or 1
    violations: list[str] = []
    facts_by_env: dict[str, list] = {e.name: [] for e in envs}
    result = BuildResult(envs)
    done = 0

    def take(rendered: list[RenderedBundle]) -> None:
        nonlocal done
        for rb in rendered:
            env = rb.path.split("/", 1)[0]
            violations.extend(rb.violations)
            facts_by_env[env].append(rb.facts)
            result.objects += len(rb.files) - 2  # kustomization.yaml and bundle.json are not objects
            result.bundles += 1
            if staging is not None and not violations:
                staging.write_folder(rb.path, rb.files, clean=True)
        done += len(rendered)
        if request.progress:
            request.progress(done, len(plans))

    if jobs > 1 and len(plans) >= PARALLEL_THRESHOLD:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, _init_worker, (request.schema_locations, request.ignore_missing_schemas)) as pool:
            for rendered in pool.imap(_render_chunk, list(_chunks(plans, CHUNK))):
                take(rendered)
    else:
        _init_worker(request.schema_locations, request.ignore_missing_schemas)
        for chunk in _chunks(plans, CHUNK):
            take(_render_chunk(chunk))
    timings["render+validate"] = time.perf_counter() - t

    t = time.perf_counter()
    renderer = _worker.get("renderer") or Renderer(TEMPLATES)
    gates = _worker.get("gates") or BundleGates(request.schema_locations, request.ignore_missing_schemas, POLICIES)
    for env in envs:
        argo = renderer.render_argocd(env)
        violations.extend(gates.check_objects(f"{env.name}/argocd", argo, env.platform.kubernetesVersion))
        violations.extend(EnvironmentAudit(env.name, facts_by_env[env.name], argo).violations())
        result.objects += len(argo)
        if staging is not None:
            staging.write_folder(f"{env.name}/argocd", [(f, dump(o)) for f, o in argo], clean=True)
    timings["argocd+audit"] = time.perf_counter() - t
    if violations:
        raise ValidationFailed(sorted(violations))
    return result


def progress_printer(stream=None) -> Optional[Callable[[int, int], None]]:
    """A one-line progress meter on a terminal; nothing when output is piped (CI logs stay clean)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 0.2 or done == total:
            last[0] = now
            stream.write(f"\rrendering {done}/{total} bundles")
            if done == total:
                stream.write("\n")
            stream.flush()

    return show
