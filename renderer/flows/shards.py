"""Use case: join N shard outputs (`render build --shard I/N`) into one environment, checked as one.

Where it sits: ``flows`` (called by ``cli`` for `render build --from-shards DIR... --out OUT` and by
``flows.commit`` for `render commit --from-shards DIR...`; calls ``pipeline``). One straight line:

1. load and plan ENV_DIR as a normal run does (every gate on the input, signatures verified);
2. the shards' facts files: the N distinct shards of one N, planned from the same inputs as this
   run (``pipeline.shards.inputs_digest``), every planned bundle in exactly the shard that owns its
   tenant, nothing else in the folders;
3. every bundle again the cheap way (``pipeline.shards.check_bundles``): what render wrote for this
   plan, the schema gate, the policy gate through the verdict cache, facts re-derived from the files;
4. the environment-wide files and checks over all of them (``pipeline.environment.environment_files``):
   isolation audit, AppProject, root Application;
5. written into ``--out`` (all or nothing) or handed to the commit as a ``gitops.Rendered``.
Any problem: exit 1 naming the shard's file, nothing written or committed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from renderer.core import layout
from renderer.core.errors import InputError, Problem, SchemasMissing, UsageError, ValidationFailed
from renderer.core.resources import POLICIES, TEMPLATES
from renderer.gitops import Rendered
from renderer.pipeline import verify as verify_stage
from renderer.pipeline.build import BuildRequest, BuildResult, check_moves, checked_input
from renderer.pipeline.environment import environment_files
from renderer.pipeline.render import EMITTED, Renderer, files_digest
from renderer.pipeline.shards import FACTS_FILE, FACTS_KIND, FACTS_VERSION, check_bundles, inputs_digest, shard_of
from renderer.pipeline.validate import BundleGates
from renderer.pipeline.write import MARKER, Staging


@dataclass
class Joined:
    result: BuildResult
    bundles: dict = field(default_factory=dict)  # bundle path -> (shard folder, files digest as checked)
    folders: dict = field(default_factory=dict)  # <env>/argocd, <env>/bootstrap -> [(file name, bytes)]


def build_from_shards(request: BuildRequest, dirs: Sequence[Path]) -> BuildResult:
    """`render build --from-shards DIR... --out OUT`: the joined, checked environment in ``OUT``."""
    Staging.check_target(request.out)
    joined = join(request, dirs)
    t = time.perf_counter()
    staging = Staging(request.out, None)
    try:
        for path, (root, _) in sorted(joined.bundles.items()):
            Staging.link_into(staging.path, path, root / path, sorted(f.name for f in (root / path).iterdir()))
        for folder, files in sorted(joined.folders.items()):
            staging.write_folder(folder, files)
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    joined.result.timings["write"] = time.perf_counter() - t
    joined.result.seconds += joined.result.timings["write"]
    return joined.result


def rendered_from_shards(request: BuildRequest, dirs: Sequence[Path], *, source_commit: Optional[str],
                         deployed: Optional[Callable] = None) -> Rendered:
    """`render commit --from-shards DIR...`: the joined files for ``flows.commit``, each bundle's
    bytes exactly those that were checked."""
    joined = join(request, dirs, deployed=deployed)
    files: dict[str, bytes] = {}
    changed = []
    for path, (root, digest) in sorted(joined.bundles.items()):
        own = tuple(sorted((f.name, f.read_bytes()) for f in (root / path).iterdir() if f.is_file()))
        if files_digest(own, skip=()) != digest:
            changed.append(f"{root}/{path}: -: shard-files: changed while it was being checked")
        files.update((f"{path}/{name}", data) for name, data in own)
    if changed:
        raise ValidationFailed(changed)
    for folder, entries in joined.folders.items():
        files.update((f"{folder}/{name}", data) for name, data in entries)
    plans = [p for e in joined.result.environments for p in e.bundles]
    return Rendered(files=dict(sorted(files.items())), envs=tuple(e.name for e in joined.result.environments),
                    all_envs=request.env is None, only=None,
                    installs={p.path: f"sha256:{p.install_sha256}" for p in plans if p.install_sha256},
                    source_commit=source_commit)


def join(request: BuildRequest, dirs: Sequence[Path], *, deployed: Optional[Callable] = None) -> Joined:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if request.only is not None:
        raise UsageError("--from-shards and --only do not go together: the join commits whole environments")
    if not dirs:
        raise UsageError("--from-shards needs the N shard output folders")
    inputs, envs, warnings = checked_input(request, timings)
    gates = BundleGates(request.schema_locations, request.ignore_missing_schemas, POLICIES)
    missing = sorted({line for e in envs for line in gates.missing_schemas(EMITTED, e.platform.kubernetesVersion)})
    if missing:
        raise SchemasMissing(missing)
    plans = tuple(p for e in envs for p in e.bundles)
    if deployed is not None:
        check_moves(inputs, plans, deployed(plans))

    t = time.perf_counter()
    docs = [_read_facts(Path(d)) for d in dirs]
    owner = _check_set(list(zip((Path(d) for d in dirs), docs)), envs, {p.path for p in plans})
    timings["shards"] = time.perf_counter() - t
    t = time.perf_counter()
    plans = verify_stage.verify(inputs, plans, offline=request.offline,
                                insecure_registries=request.insecure_registries, cache_dir=request.cache_dir)
    timings["verify"] = time.perf_counter() - t

    t = time.perf_counter()
    claims = {path: doc["bundles"][path] for doc in docs for path in doc["bundles"]}
    checked = check_bundles([(p, owner[p.path], claims[p.path]) for p in plans],
                            schema_locations=request.schema_locations, ignore_missing=request.ignore_missing_schemas,
                            cache_dir=request.cache_dir, workers=request.jobs, progress=request.progress)
    timings["check"] = time.perf_counter() - t

    t = time.perf_counter()
    violations = [v for c in checked for v in c.violations]
    if violations:  # the environment-wide checks need every bundle's facts, re-derived
        raise ValidationFailed(sorted(violations))
    result = BuildResult(envs, bundles=len(checked), objects=sum(c.objects for c in checked),
                         warnings=warnings + [w for c in checked for w in c.warnings])
    joined = Joined(result, bundles={c.path: (owner[c.path], c.digest) for c in checked})
    renderer = Renderer(TEMPLATES)
    for env in envs:
        mine = [c for c in checked if c.path.split("/", 1)[0] == env.name]
        facts = [claims[c.path]["facts"] if c.facts is None else c.facts for c in mine]  # None: the claim, checked
        found, folders = environment_files(renderer, gates, env, facts, [c.application for c in mine])
        violations += found
        joined.folders.update(folders)
        result.objects += 2 + len(mine)
    timings["argocd+audit"] = time.perf_counter() - t
    if violations:
        raise ValidationFailed(sorted(violations))
    result.timings = timings
    result.seconds = time.perf_counter() - t0
    return joined


_SCHEMA = {"kind": str, "version": int, "shard": str, "index": int, "count": int, "environments": list,
           "inputsDigest": str, "bundles": dict}


def _read_facts(root: Path) -> dict:
    """A shard's facts file, its shape checked (it is input, from another machine)."""
    path = root / FACTS_FILE
    if not root.is_dir():
        raise InputError([Problem(str(root), 0, "--from-shards", "not a folder")])
    if not (root / MARKER).is_file() or not path.is_file():
        raise InputError([Problem(str(path), 0, "-", "missing: not a shard output (`render build --shard I/N "
                                  "--out DIR` writes it)")])
    try:
        doc = json.loads(path.read_bytes())
    except ValueError as exc:
        raise InputError([Problem(str(path), getattr(exc, "lineno", 0), "-", f"not JSON ({exc})")]) from None
    problems = []
    if not isinstance(doc, dict):
        raise InputError([Problem(str(path), 1, "-", "not a JSON object")])
    for key, kind in _SCHEMA.items():
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            problems.append(Problem(str(path), 0, key, f"missing or not a {kind.__name__}"))
    if problems:
        raise InputError(problems)
    if doc["kind"] != FACTS_KIND or doc["version"] != FACTS_VERSION:
        problems.append(Problem(str(path), 0, "version", f"{doc['kind']} v{doc['version']} is not what this render "
                                f"reads ({FACTS_KIND} v{FACTS_VERSION}): build the shards with the same renderer"))
    if not 1 <= doc["index"] <= doc["count"] or doc["shard"] != f"{doc['index']}/{doc['count']}":
        problems.append(Problem(str(path), 0, "shard", f"{doc['shard']!r} is not a shard I/N with 1 <= I <= N"))
    for bundle, entry in doc["bundles"].items():
        if (layout.parse_bundle(bundle) is None or not isinstance(entry, dict)
                or not isinstance(entry.get("facts"), dict) or not isinstance(entry.get("application"), str)):
            problems.append(Problem(str(path), 0, f"bundles.{bundle}", "not a bundle path with its facts and "
                                    "Application file"))
    if problems:
        raise InputError(problems)
    return doc


def _check_set(shards: list[tuple[Path, dict]], envs, planned: set) -> dict:
    """The shards are the N distinct shards of one N, of this run's input and environments, and
    together hold every planned bundle exactly once, each in its tenant's shard. Returns bundle
    path -> the shard folder that holds it."""
    problems: list = []
    counts = sorted({doc["count"] for _, doc in shards})
    first_root, first = shards[0]
    digest, names = inputs_digest(envs), sorted(e.name for e in envs)
    by_index: dict[int, Path] = {}
    for root, doc in shards:
        where = str(root / FACTS_FILE)
        if doc["count"] != first["count"]:
            problems.append(Problem(where, 0, "shard", f"shard {doc['shard']} is not one of {first['count']} like "
                                    f"{first_root / FACTS_FILE} ({first['shard']}): all shards must be of one N"))
        if doc["index"] in by_index:
            problems.append(Problem(where, 0, "shard", f"shard {doc['shard']} is given twice (also "
                                    f"{by_index[doc['index']]})"))
        by_index.setdefault(doc["index"], root)
        if doc["inputsDigest"] != digest:
            problems.append(Problem(where, 0, "inputsDigest", "the shard was planned from other inputs than ENV_DIR "
                                    "(templates, policies, renderer or any install, tenant, catalog or platform file "
                                    "differ): build every shard from the same commit as the join"))
        if doc["environments"] != names:
            problems.append(Problem(where, 0, "environments", f"the shard covers {doc['environments']}, this run "
                                    f"plans {names} (give the same --env to the shards and the join)"))
    if len(counts) == 1:
        absent = [f"{i}/{counts[0]}" for i in range(1, counts[0] + 1) if i not in by_index]
        if absent:
            problems.append(Problem(str(first_root / FACTS_FILE), 0, "shard", f"shard {', '.join(absent)} missing: "
                                    f"give all {counts[0]} shard outputs"))
    if problems:
        raise InputError(problems)
    owner: dict[str, Path] = {}
    for root, doc in shards:
        where = str(root / FACTS_FILE)
        listed = set(doc["bundles"])
        problems += _stray_files(root, doc, names)
        for path in sorted(listed):
            key = layout.parse_bundle(path)
            if path not in planned:
                problems.append(Problem(where, 0, f"bundles.{path}", "no such install in ENV_DIR"))
            elif shard_of(key.env, key.tenant, doc["count"]) != doc["index"]:
                problems.append(Problem(where, 0, f"bundles.{path}", f"belongs to shard "
                                        f"{shard_of(key.env, key.tenant, doc['count'])}/{doc['count']}, not {doc['shard']}"))
            elif path in owner:
                problems.append(Problem(where, 0, f"bundles.{path}", f"also in {owner[path]}: a bundle must come "
                                        "from one shard"))
            else:
                owner[path] = root
    for path in sorted(planned - set(owner)):
        key = layout.parse_bundle(path)
        i = shard_of(key.env, key.tenant, counts[0])
        root = by_index[i]
        problems.append(Problem(str(root / FACTS_FILE), 0, f"bundles.{path}", f"missing: shard {i}/{counts[0]} "
                                "must hold this bundle"))
    if problems:
        raise InputError(problems)
    return owner


def _stray_files(root: Path, doc: dict, envs: list[str]) -> list:
    """Anything in a shard folder that is not its facts, its listed bundles and their Applications."""
    problems = []
    bundles = set(doc["bundles"])
    apps = {f"{layout.argocd_dir(p.split('/', 1)[0])}/{e['application']}" for p, e in doc["bundles"].items()}
    for entry in sorted(root.iterdir()):
        if entry.name in (FACTS_FILE, MARKER):
            continue
        if entry.name not in envs or not entry.is_dir() or entry.is_symlink():
            problems.append(Problem(str(entry), 0, "-", "not part of a shard output (only <env>/plugins and "
                                    "<env>/argocd of the environments it covers)"))
            continue
        for sub in sorted(entry.iterdir()):
            rel = f"{entry.name}/{sub.name}"
            if sub.name == layout.PLUGINS and sub.is_dir() and not sub.is_symlink():
                for tenant in sorted(sub.iterdir()):
                    if not tenant.is_dir() or tenant.is_symlink():
                        problems.append(Problem(str(tenant), 0, "-", "not a tenant folder of bundles"))
                for folder in sorted(p for p in sub.glob("*/*")):
                    if folder.relative_to(root).as_posix() not in bundles or not folder.is_dir() or folder.is_symlink():
                        problems.append(Problem(str(folder), 0, "-", f"not a bundle listed in {FACTS_FILE}"))
                for path in sorted(bundles):
                    if path.startswith(rel + "/") and not (root / path).is_dir():
                        problems.append(Problem(str(root / FACTS_FILE), 0, f"bundles.{path}", "listed but its "
                                                "folder is missing"))
            elif sub.name == layout.ARGOCD and sub.is_dir() and not sub.is_symlink():
                for f in sorted(sub.iterdir()):
                    if f.relative_to(root).as_posix() not in apps:
                        problems.append(Problem(str(f), 0, "-", "not the Application of a bundle of this shard (the "
                                                "AppProject and the audit belong to the join)"))
            else:
                problems.append(Problem(str(sub), 0, "-", "not part of a shard output"))
    return problems
