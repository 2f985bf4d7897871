"""Benchmark of the policy gate (renderer.policy): cost per bundle of the in-process Rego policies.

    .venv/bin/python bench/bench_policies.py [--bundles 500] [--workers 2]

Generates an environments repo with N bundles (bench/generate.py), renders them in process, then
times PolicyEngine.check_bundle on every bundle: one query per bundle (all per-object rules on
every object plus the cross-object rules). Prints the one-off cost (compiling the policies), ms
per bundle (median, mean, p95; of which converting the input), the projection for 10,000 bundles
on one process and on --workers processes (measured on the same bundles), and for comparison
the cost of the naive design, one query per object, measured on a sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from generate import generate  # noqa: E402
from renderer.pipeline.load import load  # noqa: E402
from renderer.pipeline.plan import plan  # noqa: E402
from renderer.gates.policy import PolicyEngine, _to_input  # noqa: E402
from renderer.pipeline.render import Renderer  # noqa: E402

PROJECT = 10_000


def render_all(envs: Path) -> list[tuple[str, list, dict]]:
    renderer = Renderer(REPO / "templates")
    out = []
    for env in plan(load(envs), "bench"):
        for bundle_plan in env.bundles:
            b = renderer.render_bundle(bundle_plan)
            out.append((b.path, list(b.objects), json.loads(dict(b.files)["bundle.json"])))
    return out


def _worker(bundles: list[tuple[str, list, dict]]) -> tuple[int, int, float]:
    engine = PolicyEngine(REPO / "policies")
    start = time.perf_counter()
    bad = sum(1 for path, objects, info in bundles if engine.check_bundle(path, objects, info)[0])
    return len(bundles), bad, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=500, help="bundles to generate and check (500)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the parallel run (2)")
    ap.add_argument("--sample", type=int, default=20, help="bundles for the one-query-per-object comparison (20)")
    a = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        bundles = render_all(generate(Path(tmp) / "environments", a.bundles))
        print(f"rendered {len(bundles)} bundles in {time.perf_counter() - t:.1f} s")
    objects = sum(len(o) for _, o, _ in bundles)
    print(f"{objects} objects, {objects / len(bundles):.1f} per bundle (+ bundle.json)")

    t = time.perf_counter()
    engine = PolicyEngine(REPO / "policies")
    print(f"\none-off: compile the policies {1e3 * (time.perf_counter() - t):.0f} ms")

    for path, objs, info in bundles[:3]:  # warm-up, and every generated bundle must pass
        assert engine.check_bundle(path, objs, info) == ([], []), path

    wall, cpu, conv = [], [], []
    failed = 0
    for path, objs, info in bundles:
        t, c = time.perf_counter(), time.process_time()
        deny, _ = engine.check_bundle(path, objs, info)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        failed += bool(deny)
    for path, objs, info in bundles[: min(100, len(bundles))]:
        entries = [{"path": f"{path}/{f}", "contents": o} for f, o in objs] + [{"path": f"{path}/bundle.json", "contents": info}]
        t = time.perf_counter()
        _to_input(entries)
        conv.append(time.perf_counter() - t)

    ms = sorted(x * 1e3 for x in wall)
    median, mean, p95 = statistics.median(ms), statistics.fmean(ms), ms[int(0.95 * (len(ms) - 1))]
    print(f"\ncheck_bundle, one process, {len(bundles)} bundles ({failed} rejected):")
    print(f"  wall ms/bundle: median {median:.1f}, mean {mean:.1f}, p95 {p95:.1f}; "
          f"CPU ms/bundle: mean {1e3 * statistics.fmean(cpu):.1f}")
    print(f"  of which converting the input to regopy: {1e3 * statistics.fmean(conv):.1f} ms/bundle")
    print(f"  projection for {PROJECT} bundles: {PROJECT * mean / 1e3:.0f} s on one process, "
          f"{PROJECT * mean / 1e3 / a.workers:.0f} s ideal on {a.workers}")

    if a.workers > 1:
        chunks = [bundles[i::a.workers] for i in range(a.workers)]
        t = time.perf_counter()
        with ProcessPoolExecutor(a.workers) as pool:
            done = list(pool.map(_worker, chunks))
        seconds = time.perf_counter() - t
        n = sum(d[0] for d in done)
        print(f"\n{a.workers} worker processes (each compiles the policies once): {n} bundles in {seconds:.1f} s "
              f"= {1e3 * seconds / n:.1f} ms/bundle; projection for {PROJECT} bundles: {PROJECT * seconds / n:.0f} s")

    sample = bundles[: a.sample]
    t = time.perf_counter()
    count = 0
    for path, objs, info in sample:
        for name, obj in objs:
            engine.check_object(f"{path}/{name}", obj)
            count += 1
    per_object = (time.perf_counter() - t) / count
    print(f"\nfor comparison, one query per object (conftest without --combine; per-object rules only): "
          f"{1e3 * per_object:.1f} ms/object = {1e3 * per_object * objects / len(bundles):.1f} ms/bundle; "
          f"projection for {PROJECT} bundles: {PROJECT * per_object * objects / len(bundles):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
