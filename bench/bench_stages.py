"""Where a cold bundle's CPU goes: each stage of a worker's loop timed alone, in one process.

    .venv/bin/python bench/bench_stages.py [--bundles 300] [--work DIR]

Generates N bundles (bench/generate.py), loads and plans them, then for each bundle runs what
``pipeline.build._render_range`` runs, one stage at a time, and prints CPU milliseconds per bundle
(``time.process_time``: less sensitive to other jobs than wall time) for each stage and its share:
render (Jinja, the slots filled and the objects written through their shape's compiled YAML,
bundle.json), and within it each part; the schema gate; the policy gate (regorus, on the chunk's
bundles four to an evaluation, as a worker runs it: ``BundleGates.prefetch`` and ``check``); the
Application; the isolation facts; writing the files (the kernel's file creation). The first
chunk warms the caches (compiled schemas, parsed template shapes) and is not counted. Prints
ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from generate import generate  # noqa: E402
from renderer.core.resources import POLICIES, TEMPLATES  # noqa: E402
from renderer.pipeline import render as render_module  # noqa: E402
from renderer.pipeline.load import load  # noqa: E402
from renderer.pipeline.plan import plan  # noqa: E402
from renderer.pipeline.build import CHUNK  # noqa: E402
from renderer.pipeline.skeletons import Shape  # noqa: E402
from renderer.pipeline.validate import BundleGates  # noqa: E402
from renderer.pipeline.write import Staging  # noqa: E402



class Clock:
    def __init__(self):
        self.spent: dict[str, float] = {}

    def time(self, label: str, fn, *args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.spent[label] = self.spent.get(label, 0.0) + time.process_time() - start

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)
        setattr(owner, name, lambda *a, **k: self.time(label, fn, *a, **k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=300)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--schema-location", action="append", default=None,
                        help="custom-resource schemas (default $RENDER_SCHEMA_LOCATION, else the shipped ones)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-stages-"))
    envs = plan(load(generate(work / "environments", args.bundles + CHUNK)), "bench")
    plans = [p for e in envs for p in e.bundles]
    renderer = render_module.Renderer(TEMPLATES)
    locations = args.schema_location or [p for p in os.environ.get("RENDER_SCHEMA_LOCATION", "").split(",") if p]
    gates = BundleGates(tuple(locations), False, POLICIES)
    staging = work / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    inner = Clock()  # the parts of render, through the names render.py calls
    for name, label in (("bundle_context", "context"), ("bundle_json", "bundle.json")):
        inner.wrap(render_module, name, label)
    inner.wrap(Shape, "written", "slots filled, YAML written")
    for template in renderer._templates.values():
        inner.wrap(template, "render", "Jinja (with the slot values)")

    outer = Clock()
    for start in range(0, len(plans), CHUNK):  # a worker's chunk: render them all, then the gates
        if start == CHUNK:
            outer.spent.clear()
            inner.spent.clear()
        chunk = plans[start:start + CHUNK]
        bundles = [outer.time("render", renderer.render_bundle, p) for p in chunk]
        outer.time("policy gate", gates.prefetch, bundles)
        for p, bundle in zip(chunk, bundles):
            kv = p.platform.kubernetesVersion
            outer.time("schema gate", gates.check_objects, p.path, bundle.objects, kv)
            info = json.loads(dict(bundle.files)["bundle.json"])
            if not outer.time("policy gate", gates.proved_clean, bundle):
                outer.time("policy gate", gates.check_policies, p.path, bundle.objects, info, plain=True)
            outer.time("Application", renderer.render_application, p)
            outer.time("isolation facts", gates.facts, bundle)
            outer.time("write files", Staging.write_into, staging, p.path, bundle.files)
    counted = len(plans) - CHUNK
    total = sum(outer.spent.values())
    print(f"bench_stages: {counted} bundles, CPU per bundle (process time), {work}")
    for label, spent in sorted(outer.spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<34} {spent / counted * 1e3:6.2f} ms  {spent / total:5.1%}")
        if label == "render":
            for part, t in sorted(inner.spent.items(), key=lambda kv: -kv[1]):
                print(f"    {part:<32} {t / counted * 1e3:6.2f} ms  {t / spent:5.1%} of render")
    print(f"  {'total':<34} {total / counted * 1e3:6.2f} ms  -> {2 * counted / total:.0f} bundles/s on 2 cores "
          f"at best; 10,000 bundles in {10000 * total / counted / 2:.0f} s of CPU per core")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
