"""Scale-out by shards: which installs a shard renders, the facts file it leaves, and the
re-check of a shard's bundles before they are joined.

Where it sits: ``pipeline`` (``build`` selects a shard's bundles and writes its facts file;
``flows.shards`` joins shard outputs). A shard is whole tenants: tenant (env, id) goes to shard
``1 + int(sha256(env NUL id)[:16], 16) mod N``, so its ceilings are checked in one place and adding
a tenant moves no other tenant. Every shard still loads and plans the whole input (names and
owners are checked across the environment by ``plan``); only rendering, the per-bundle gates and
writing are split. The environment-wide checks (isolation audit, AppProject, root Application)
need every bundle: they run in the join, over facts re-derived from the shards' files (a facts
file is a claim to compare against, never evidence).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from renderer.core import layout
from renderer.core.yamlio import dump
from renderer.gates import verdicts
from renderer.core.resources import POLICIES, TEMPLATES
from renderer.pipeline.plan import BundlePlan, EnvironmentPlan
from renderer.pipeline.render import Bundle, Renderer, files_digest, same_inputs
from renderer.pipeline.audit import bundle_facts
from renderer.pipeline.validate import BundleGates

FACTS_FILE = ".render-shard.json"
FACTS_KIND = "render-shard"
FACTS_VERSION = 1
PARALLEL_THRESHOLD = 64
CHUNK = 32
_SHARD = re.compile(r"^([1-9][0-9]{0,5})/([1-9][0-9]{0,5})$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based: shards 1/N .. N/N (a CI matrix counts from 1)
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``I/N`` with 1 <= I <= N; ValueError with the reason otherwise."""
        m = _SHARD.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not I/N (two whole numbers, e.g. 2/4)")
        index, count = int(m.group(1)), int(m.group(2))
        if index > count:
            raise ValueError(f"{text!r}: shard {index} does not exist among {count} (1 <= I <= N)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, plan: BundlePlan) -> bool:
        return shard_of(plan.env, plan.tenant, self.count) == self.index


def shard_of(env: str, tenant: str, count: int) -> int:
    """The shard (1..count) that renders every install of tenant ``tenant`` of ``env``."""
    digest = hashlib.sha256(f"{env}\0{tenant}".encode()).hexdigest()
    return int(digest[:16], 16) % count + 1


def inputs_digest(envs: Sequence[EnvironmentPlan]) -> str:
    """sha256 over everything the shards planned from: per environment its platform settings and
    every planned bundle's path, inputDigest (install, tenant, catalog version, publisher,
    platform.yaml, templates, policies, renderer version) and install file hash. Shards of one
    run agree on it; the join recomputes it from its own input."""
    h = hashlib.sha256()
    for env in sorted(envs, key=lambda e: e.name):
        h.update(b"env\0" + env.name.encode() + b"\0" + env.platform.model_dump_json().encode() + b"\0")
        for p in sorted(env.bundles, key=lambda b: b.path):
            h.update(f"{p.path}\0{p.input_digest}\0{p.install_sha256}\0".encode())
    return "sha256:" + h.hexdigest()


def facts_document(shard: Shard, envs: Sequence[EnvironmentPlan], rendered: Sequence) -> bytes:
    """The shard's facts file: which shard of how many, the environments and inputs it planned
    from, and per bundle its isolation facts (``validate.bundle_facts``) and Application file."""
    bundles = {rb.path: {"facts": rb.facts, "application": rb.application[0]} for rb in rendered}
    doc = {
        "kind": FACTS_KIND, "version": FACTS_VERSION, "shard": str(shard), "index": shard.index, "count": shard.count,
        "environments": sorted(e.name for e in envs), "inputsDigest": inputs_digest(envs),
        "bundles": dict(sorted(bundles.items())),
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class CheckedBundle:
    path: str
    objects: int
    violations: tuple[str, ...]
    warnings: tuple[str, ...]
    verdict_key: str
    facts: Optional[dict]  # re-derived from the files; None when equal to the shard's claim (checked)
    application: tuple  # (file name, bytes) as the join renders it
    digest: str  # files_digest over every file as checked (the commit compares what it reads again)


_worker: dict = {}


def _init_worker(schema_locations: tuple[str, ...], ignore_missing: bool, jobs: list, passed: frozenset) -> None:
    _worker.update(renderer=Renderer(TEMPLATES), gates=BundleGates(schema_locations, ignore_missing, POLICIES),
                   jobs=jobs, passed=passed)


def read_bundle(folder: Path) -> tuple[tuple, list[str]]:
    """A shard bundle's files, and what is wrong with the folder itself (subfolders, links)."""
    files, problems = [], []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink() or not entry.is_file():
            problems.append(f"{entry.name}: not a plain file (render writes only plain files into a bundle)")
            continue
        files.append((entry.name, entry.read_bytes()))
    return tuple(files), problems


def _check_one(plan: BundlePlan, root: Path, claimed: dict) -> CheckedBundle:
    renderer, gates = _worker["renderer"], _worker["gates"]
    where = f"{root}/{plan.path}"
    kv = plan.platform.kubernetesVersion
    files, problems = read_bundle(root / plan.path)
    out = [f"{where}/{p.split(':', 1)[0]}: -: shard:{p.split(':', 1)[1]}" for p in problems]
    app_name, app_obj = renderer.render_application(plan)
    app = (app_name, dump(app_obj))
    raw = dict(files)
    bundle = None
    if not same_inputs(plan, raw.get(layout.BUNDLE_JSON, b"")):
        out.append(f"{where}/{layout.BUNDLE_JSON}: -: shard-inputs: the bundle was not rendered from this input "
                   "(inputDigest or signature differs from what ENV_DIR plans)")
    else:
        try:
            bundle = Bundle.from_files(plan, files)
        except Exception as exc:  # an unparsable file is a finding about that shard, not a crash
            out.append(f"{where}: -: shard-files: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        else:
            if bundle is None:
                out.append(f"{where}/{layout.BUNDLE_JSON}: -: shard-files: the files do not match bundle.json's "
                           "filesDigest (changed after render wrote them)")
    facts, key, objects = {}, "", 0
    gates.warnings.clear()
    if bundle is not None:
        objects = len(bundle.objects)
        want = dump(layout.kustomization(name for name, _ in bundle.objects))
        if raw.get(layout.KUSTOMIZATION) != want:
            out.append(f"{where}/{layout.KUSTOMIZATION}: Kustomization/-: shard-files: not the kustomization render "
                       "writes (exactly the bundle's object files)")
        violations, key = gates.check(bundle, kv, _worker["passed"])
        out += violations
        facts = json.loads(json.dumps(bundle_facts(plan.path, bundle.objects)))
        if claimed.get("facts") != facts:
            out.append(f"{where}: -: shard-facts: the shard's {FACTS_FILE} records other isolation facts than its "
                       "files show")
        else:
            facts = None  # equal to the claim, which the caller holds already (40,000 copies are a lot)
    if claimed.get("application") != app_name:
        out.append(f"{where}: -: shard-facts: the shard's {FACTS_FILE} names Application "
                   f"{claimed.get('application')!r}, not {app_name}")
    app_file = root / layout.argocd_dir(plan.env) / app_name
    try:
        shard_app = app_file.read_bytes()
    except OSError:
        shard_app = None
    if shard_app != app[1]:
        out.append(f"{root}/{layout.argocd_dir(plan.env)}/{app_name}: Application/{plan.names.app}: shard-files: "
                   + ("missing" if shard_app is None else "not the Application render writes for this bundle"))
    out += gates.check_objects(layout.argocd_dir(plan.env), [(app_name, app_obj)], kv)
    return CheckedBundle(plan.path, objects, tuple(out), tuple(gates.warnings), key, facts, app,
                         files_digest(files, skip=()))


def _check_range(bounds: tuple[int, int]) -> list[CheckedBundle]:
    return [_check_one(*job) for job in _worker["jobs"][bounds[0]:bounds[1]]]


def check_bundles(jobs: list[tuple[BundlePlan, Path, dict]], *, schema_locations: tuple[str, ...],
                  ignore_missing: bool, cache_dir: Optional[Path], workers: int = 0,
                  progress: Optional[Callable[[int, int], None]] = None) -> list[CheckedBundle]:
    """Check each (plan, shard root, claimed facts) the cheap way: the files are what render wrote
    for this plan (inputDigest and signature, filesDigest, kustomization), the schema gate, the
    policy gate through the verdict cache, the facts re-derived and compared with the claim, and
    the Application re-rendered and compared. Passes are saved to the verdict cache only when
    every bundle passed."""
    policy_digest = BundleGates(schema_locations, ignore_missing, POLICIES).policy_digest
    known = verdicts.load_passed(cache_dir, policy_digest)
    args = (schema_locations, ignore_missing, jobs, known)
    ranges = [(i, min(i + CHUNK, len(jobs))) for i in range(0, len(jobs), CHUNK)]
    workers = workers or os.cpu_count() or 1
    out: list[CheckedBundle] = []

    def take(checked: list[CheckedBundle]) -> None:
        out.extend(checked)
        if progress:
            progress(len(out), len(jobs))

    if workers > 1 and len(jobs) >= PARALLEL_THRESHOLD:
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, args) as pool:
            for checked in pool.imap(_check_range, ranges):
                take(checked)
    else:
        _init_worker(*args)
        for bounds in ranges:
            take(_check_range(bounds))
    if not any(c.violations for c in out):
        verdicts.save_passed(cache_dir, policy_digest, known, [c.verdict_key for c in out])
    return out
