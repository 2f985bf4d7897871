"""The orchestrator: a request in, bundles out. Short on purpose; each stage lives in its module.

cli -> **pipeline** -> load -> plan -> verify -> render -> validate -> write.
Rendering and validation of bundles are independent of each other, so they run in worker
processes (one per core) in chunks; each worker writes its bundles into the staging folder, and
the parent gathers what the environment-wide checks need.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from renderer.gates import migrations

from renderer.gates import verdicts
from renderer.pipeline import verify as verify_stage
from renderer.core.errors import InputError, Problem, SchemasMissing, UsageError, ValidationFailed
from renderer.pipeline.load import load
from renderer.pipeline.parsedinputs import ParsedInputs
from renderer.gates.policy import policy_files
from renderer.pipeline.holds import Held, applicable
from renderer.pipeline.keptindex import Entry, KeptIndex, Target
from renderer.pipeline.keptenv import KeptEnvironments, key_of, with_applications, environment_wide
from renderer.pipeline.earlier import HELD_AS, held_bundle, kept_bundle, render_windows
from renderer.pipeline.provenance import signature_record
from renderer.pipeline.plan import EnvironmentPlan, fingerprint_files, plan
from renderer.pipeline.render import EMITTED, Renderer
from renderer.pipeline.shards import FACTS_FILE, Shard, facts_document
from renderer.pipeline.validate import BundleGates
from renderer.pipeline.environment import environment_files
from renderer.pipeline.write import Staging
from renderer.core import layout
from renderer.core.resources import POLICIES, TEMPLATES
from renderer.core.yamlio import dump

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
    # Bundles already written somewhere (an earlier output, the GitOps repo): given the verified
    # plans, the files (or folder) of those whose bundle.json records the same inputDigest and
    # signature. They are kept instead of rendered when their filesDigest holds.
    reuse: Optional[Callable[[tuple], Mapping[str, tuple]]] = None
    policy_gate: bool = True  # bench/ only, to time the rest alone; the CLI never turns it off
    # The plugin version each bundle runs now (the GitOps repo's or an earlier output's
    # bundle.json): a move across a migration contract step is rejected (migrations.unsafe_move).
    deployed: Optional[Callable[[tuple], Mapping[str, str]]] = None
    # Render only this shard's tenants (``shards.Shard``) and leave the environment-wide files to
    # the join: the output holds the shard's bundles, their Applications and ``shards.FACTS_FILE``.
    shard: Optional[Shard] = None
    # Bundles the target holds at an earlier render-written state (gitops.history proved it from
    # the branch's history): kept while their install is unchanged, gated like rendered ones.
    held: Optional[Mapping[str, Held]] = None
    # The target's folder ids (``keptindex``): given the plans, the id of each bundle folder the
    # target holds now, and the function that computes it from a folder's (name, bytes) files (the
    # git tree id). With a cache folder, a bundle whose id and plan are in the kept index is kept as it
    # is at the target: not read, rendered, checked or written (``BuildResult.unchanged``), and
    # its Application is returned, not written (``BuildResult.unchanged_apps``).
    folder_ids: Optional[Callable[[tuple], Mapping[str, str]]] = None
    folder_id: Optional[Callable[[Sequence[tuple[str, bytes]]], str]] = None


@dataclass(frozen=True)
class RenderedBundle:
    path: str
    objects: int
    application: tuple  # (file name, bytes) of its Argo CD Application
    violations: tuple[str, ...]
    warnings: tuple[str, ...]
    verdict_key: str  # validate.policy_key: cached as passed when the run succeeds
    kept: bool  # taken from the previous output (same inputDigest and files), not rendered
    facts: dict  # what the environment-wide isolation audit needs
    drift: Optional[str] = None  # the earlier copy was not what render writes (changed outside render)
    held: bool = False  # the files are a held earlier state (holds.Held), not rendered
    ids: str = ""  # the id of its folder, when the request gives ``folder_id``


@dataclass
class BuildResult:
    environments: tuple[EnvironmentPlan, ...]
    bundles: int = 0
    objects: int = 0
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    reused: int = 0  # bundles taken as they were (same inputDigest), not rendered again
    notes: list = field(default_factory=list)  # drift (changed outside render), holds kept or released
    held: set = field(default_factory=set)  # bundle paths written from a held earlier state
    # bundle path -> its folder's id: kept exactly as the target holds them, not written to the
    # output (``BuildRequest.folder_ids``; the kept index vouched for them) ...
    unchanged: dict = field(default_factory=dict)
    # ... nor are their Applications (output path -> bytes): the caller compares them with the target
    unchanged_apps: dict = field(default_factory=dict)
    # environments whose environment-wide files came from a record (``keptenv``), not computed again
    kept_environments: list = field(default_factory=list)


_worker: dict = {}


def _init_worker(schema_locations: tuple[str, ...], ignore_missing: bool, plans: list, staging: Optional[Path],
                 passed: frozenset, policy_gate: bool = True,
                 held: Optional[Mapping[str, Held]] = None, folder_id: Optional[Callable] = None) -> None:
    """Per process: compiled templates and gates, the plans and known policy passes (inherited
    through fork, never pickled), and the staging folder each worker writes its bundles into."""
    _worker["folder_id"] = folder_id
    _worker["renderer"] = Renderer(TEMPLATES)
    _worker["gates"] = BundleGates(schema_locations, ignore_missing, POLICIES)
    _worker["plans"] = plans
    _worker["staging"] = staging
    _worker["passed"] = passed
    _worker["policy_gate"] = policy_gate
    _worker["held"] = held or {}


def _render_range(task: tuple[tuple[int, int], Mapping]) -> list[RenderedBundle]:
    """Render and check the plans ``bounds`` of the worker's plans; ``reuse``: their earlier files."""
    bounds, reuse = task
    renderer, gates, staging = _worker["renderer"], _worker["gates"], _worker["staging"]
    passed = _worker["passed"]
    made = []
    for p in _worker["plans"][bounds[0]:bounds[1]]:
        kept, found, drift = kept_bundle(p, reuse[p.path], gates, passed) if p.path in reuse else (None, (), None)
        bundle = kept or renderer.render_bundle(p)
        claim = _worker["held"].get(p.path)
        was_held = claim is not None and tuple(sorted(claim.files)) != bundle.files
        if was_held:
            bundle, drift = held_bundle(p, claim), f"kept {p.path} as {HELD_AS[claim.reason]} {claim.written_at[:12]}: its " \
                "install is unchanged since (change the install to render it again)"
        made.append((p, kept, found, drift, bundle, was_held))
    if _worker["policy_gate"]:  # the freshly rendered ones, a few per policy evaluation
        gates.prefetch([bundle for _, kept, _, _, bundle, was_held in made if kept is None and not was_held], passed)
    out = []
    for p, kept, found, drift, bundle, was_held in made:
        gates.warnings.clear()
        violations, verdict_key = gates.check(bundle, p.platform.kubernetesVersion, passed,
                                              policies=_worker["policy_gate"], rendered=kept is None and not was_held)
        if kept is not None and violations:  # schemas changed since: render it afresh
            bundle, kept = renderer.render_bundle(p), None
            gates.warnings.clear()
            violations, verdict_key = gates.check(bundle, p.platform.kubernetesVersion, passed, rendered=True)
        if kept is None and found and drift is None and tuple(sorted(found)) != bundle.files:
            drift = f"drift: {p.path} is not what render writes for its inputs (changed outside render); rendered afresh"
        app = renderer.render_application(p)
        violations += gates.check_objects(f"{p.env}/argocd", [app], p.platform.kubernetesVersion)
        app_file = (app[0], dump(app[1]))
        if staging is not None and not violations:
            if bundle is kept and isinstance(reuse[p.path], Path):  # same bytes: link, don't copy
                Staging.link_into(staging, p.path, reuse[p.path], [name for name, _ in bundle.files])
            else:
                Staging.write_into(staging, p.path, bundle.files)
            # its Application too (the parent writes the rest of argocd/: 10,000 files it need not write)
            Staging.add_into(staging, layout.argocd_dir(p.env), [app_file])
        folder_id = _worker["folder_id"]
        ids = folder_id(bundle.files) if folder_id is not None and not violations else ""
        out.append(RenderedBundle(p.path, len(bundle.objects), app_file, tuple(violations),
                                  tuple(gates.warnings), verdict_key, bundle is kept, gates.facts(bundle), drift,
                                  was_held, ids))
    return out


def build(request: BuildRequest) -> BuildResult:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if request.out is not None:
        Staging.check_target(request.out)
    if request.shard is not None and request.only is not None:
        raise UsageError("--shard and --only do not go together: a shard is whole tenants")
    inputs, envs, warnings = checked_input(request, timings)

    gates = BundleGates(request.schema_locations, request.ignore_missing_schemas, POLICIES)  # the parent's
    missing = sorted({line for e in envs for line in gates.missing_schemas(EMITTED, e.platform.kubernetesVersion)})
    if missing:
        raise SchemasMissing(missing)
    selected = tuple(p for e in envs for p in e.bundles if (request.only is None or p.key == request.only)
                     and (request.shard is None or request.shard.owns(p)))
    target = _kept_target(request, envs, selected, gates)
    if request.deployed is not None:  # a bundle kept as it is does not move: its head is not read
        same = target.unchanged(selected, request.held, signatures=False)
        check_moves(inputs, selected, request.deployed(tuple(p for p in selected if p.path not in same)))
    t = time.perf_counter()
    selected = verify_stage.verify(inputs, selected, offline=request.offline,
                                   insecure_registries=request.insecure_registries, cache_dir=request.cache_dir)
    timings["verify"] = time.perf_counter() - t
    held, hold_notes = applicable(inputs, selected, request.held or {}, offline=request.offline,
                                  insecure_registries=request.insecure_registries, cache_dir=request.cache_dir)

    owned = None
    if request.only is not None:
        owned = {p.path for p in selected} | {f"{e.name}/argocd" for e in envs}
    elif request.env is not None and request.shard is None:  # a shard output is only that shard
        owned = {e.name for e in envs} | {FACTS_FILE}
    staging = Staging(request.out, owned) if request.out is not None else None
    try:
        result = _render_all(request, envs, selected, staging, gates, timings, held, target)
        result.notes[:0] = hold_notes
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
    result.warnings = warnings + result.warnings
    return result


def checked_input(request: BuildRequest, timings: dict):
    """load, plan and the migration gate; every problem of the three raised at once."""
    t = time.perf_counter()
    # a run that may keep bundles (commit, diff: the kept index) also keeps parsed input files
    keeping = request.cache_dir is not None and request.folder_ids is not None and request.folder_id is not None
    inputs = load(request.env_dir, request.env, ParsedInputs(request.cache_dir) if keeping else None)
    shaping = fingerprint_files(TEMPLATES, *policy_files(POLICIES))  # policy unit tests shape nothing
    problems: list = []
    envs = ()
    try:
        envs = plan(inputs, shaping, request.only)
    except InputError as exc:
        problems += exc.problems
    timings["load+plan"] = time.perf_counter() - t
    t = time.perf_counter()
    used = {(i.model.metadata.name, i.model.spec.version) for e in inputs.environments for ti in e.tenants
            for i in ti.installs if (i.model.metadata.name, i.model.spec.version) in inputs.catalog}
    findings = migrations.check_catalog(inputs.root / "catalog", used, cache_dir=request.cache_dir)
    problems += migrations.as_problems(findings, inputs.root)
    timings["migrations"] = time.perf_counter() - t
    if problems:
        raise InputError(problems)
    return inputs, envs, [_warning(f, inputs.root) for f in findings if not f.blocking]


def check_moves(inputs, plans, deployed: Mapping[str, str]) -> None:
    """Refuse a version move across a migration contract step (the version running now: ``deployed``)."""
    problems = []
    for p in plans:
        current = deployed.get(p.path)
        reason = current and migrations.unsafe_move(p.catalog_dir.parent, current, p.version)
        if reason:
            rel = f"{p.env}/tenants/{p.tenant}/plugins/{p.plugin}.yaml"
            line = next((i.line("spec", "version") for e in inputs.environments if e.name == p.env
                         for t in e.tenants for i in t.installs if i.path == rel), 0)
            problems.append(Problem(rel, line, "spec.version", f"{reason} (the bundle runs {current} now)"))
    if problems:
        raise InputError(problems)


def _warning(finding, root: Path) -> str:
    try:
        path = finding.path.relative_to(root).as_posix()
    except ValueError:
        path = str(finding.path)
    return f"{path}:{finding.line}: migrations: {finding.rule}: {finding.message}"


def _render_all(request: BuildRequest, envs, plans, staging: Optional[Staging], gates: BundleGates,
                timings: dict, held: Optional[Mapping[str, Held]], target: Target) -> BuildResult:
    t = time.perf_counter()
    plans = list(plans)
    jobs = request.jobs or os.cpu_count() or 1
    violations: list[str] = []
    facts_by_env: dict[str, list] = {e.name: [] for e in envs}
    apps_by_env: dict[str, list] = {e.name: [] for e in envs}
    result = BuildResult(envs)
    done = 0
    everything: list[RenderedBundle] = []  # a shard's facts file lists them
    fresh: list[RenderedBundle] = []  # for the kept index, once the run passed
    ids: dict[str, str] = {}  # bundle path -> its folder's id (empty: held, failed, not known)

    def take(rendered: list[RenderedBundle], unchanged: bool = False) -> None:
        nonlocal done
        for rb in rendered:
            env = rb.path.split("/", 1)[0]
            violations.extend(rb.violations)
            result.warnings.extend(rb.warnings)
            if not rb.violations:
                passed_now.append(rb.verdict_key)
            if unchanged:
                result.unchanged_apps[f"{layout.argocd_dir(env)}/{rb.application[0]}"] = rb.application[1]
                result.objects += 1  # the Application (the others are counted with their folder)
            else:
                apps_by_env[env].append(rb.application)
            facts_by_env[env].append(rb.facts)
            result.objects += rb.objects
            result.reused += rb.kept
            if rb.drift:
                result.notes.append(rb.drift)
            if rb.held:
                result.held.add(rb.path)
            result.bundles += 1
            if request.shard is not None:
                everything.append(rb)
            if rb.ids and not rb.violations and not rb.held and not unchanged:  # held files are not their plan's
                fresh.append(rb)
            ids[rb.path] = rb.ids if not rb.violations and not rb.held else ""
        done += len(rendered)
        if request.progress:
            request.progress(done, total)

    policy_digest = gates.policy_digest
    known = verdicts.load_passed(request.cache_dir, policy_digest)
    passed_now: list[str] = []
    unchanged = _unchanged(target, plans, held)
    selected = {p.path for p in plans}
    plans = [p for p in plans if p.path not in unchanged]
    args = (request.schema_locations, request.ignore_missing_schemas, plans, staging.path if staging else None, known,
            request.policy_gate, held, request.folder_id)
    total = len(plans) + len(unchanged)
    take(list(unchanged.values()), unchanged=True)
    result.unchanged = {path: rb.ids for path, rb in unchanged.items()}
    windows = render_windows(plans, request.reuse, CHUNK)
    if jobs > 1 and len(plans) >= PARALLEL_THRESHOLD:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, _init_worker, args) as pool:
            running = None
            for tasks in windows:  # the next window's files are read while the workers render this one
                queued = pool.imap(_render_range, tasks)
                for rendered in running or ():
                    take(rendered)
                running = queued
            for rendered in running or ():
                take(rendered)
    else:
        _init_worker(*args)
        for tasks in windows:
            for task in tasks:
                take(_render_range(task))
    timings["render+validate"] = time.perf_counter() - t

    t = time.perf_counter()
    kept_envs = KeptEnvironments(request.cache_dir if target.digests and request.only is None else None)
    records: dict[str, dict] = {}  # key -> environment-wide files, recorded once the run passed
    for env in envs:
        if request.shard is not None:  # the join renders the environment-wide files over every shard
            result.objects += len(apps_by_env[env.name])  # the workers wrote them
            continue
        # With --only, the other bundles are not rendered this run: plan() has already checked
        # their names; the AppProject check needs them all, so it is left to a full run (or validate).
        apps = apps_by_env[env.name]
        key = key_of(target, env, ids) if kept_envs.root is not None else None
        folders = kept_envs.get(key, env.name) if key else None
        if folders is not None:  # the same bundles' files and plans passed the audit before
            folders = with_applications(folders, env.name, apps)
            result.kept_environments.append(env.name)
        else:
            renderer = _worker.get("renderer") or Renderer(TEMPLATES)  # the in-process worker's, when it ran here
            found, folders = environment_files(renderer, gates, env, facts_by_env[env.name], apps,
                                               rendered=selected if request.only is not None else None)
            violations.extend(found)
            if key:
                records[key] = environment_wide(folders, apps)
        if staging is not None:
            for folder, files in folders.items():
                if folder == layout.argocd_dir(env.name):  # but the Applications the workers wrote
                    written = {name for name, _ in apps}
                    staging.add_folder(folder, [f for f in files if f[0] not in written])
                else:
                    staging.write_folder(folder, files)
        result.objects += 2 + len(apps_by_env[env.name])
    if staging is not None and request.shard is not None:
        (staging.path / FACTS_FILE).write_bytes(facts_document(request.shard, envs, everything))
    timings["argocd+audit"] = time.perf_counter() - t
    if violations:
        raise ValidationFailed(sorted(violations))
    verdicts.save_passed(request.cache_dir, policy_digest, known, passed_now)
    for key, folders in records.items():
        kept_envs.put(key, folders)
    by_path = {p.path: p for p in plans}
    for env in envs if fresh and target.index.root is not None else ():
        target.index.put(target.digests[env.name], ((by_path[rb.path], rb.ids, _entry(rb, by_path[rb.path]))
                                                    for rb in fresh if by_path[rb.path].env == env.name))
    return result


def _kept_target(request: BuildRequest, envs, plans, gates: BundleGates) -> Target:
    cache = request.cache_dir if request.folder_ids is not None and request.folder_id is not None else None
    return Target.of(KeptIndex(cache), envs, plans, request.folder_ids,
                     lambda env: gates.digest(env.platform.kubernetesVersion, EMITTED, request.policy_gate))


def _unchanged(target: Target, plans, held: Optional[Mapping]) -> dict:
    """path -> RenderedBundle of the bundles the kept index keeps (``Target.unchanged``)."""
    return {path: RenderedBundle(path, e.objects, e.application, (), e.warnings, e.verdict_key, True, e.facts, None,
                                 False, target.ids[path])
            for path, e in target.unchanged(plans, held).items()}


def _entry(rb: RenderedBundle, plan) -> Entry:
    return Entry(plan.input_digest, signature_record(plan), rb.objects, rb.application, rb.warnings, rb.verdict_key,
                 rb.facts)
