"""Benchmark of the schema gate (renderer.schemas): cost per object for each kind of a bundle.

    .venv/bin/python bench/bench_schemas.py [--objects 140000]

Prints, per kind, the fast path (jsonschema-rs, what SchemaStore.validate runs) and the reference
(jsonschema, validator and referencing Registry built once: SchemaStore.reference_validate), their
ratio, the first-use cost (read + compile, once per process), the projection for the whole
project (10,000 bundles, about 140,000 objects), and two measured runs over that many objects:
one process, and two worker processes that get the store by pickle, as the pipeline will.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from renderer.gates.schemas import SchemaStore, locations_from_env  # noqa: E402
from schema_samples import KUBERNETES_VERSION, bundle  # noqa: E402

DEFAULT_CRDS = REPO.parent / "shared" / "schemas" / "crds"


def per_call_us(fn, obj, budget_s: float) -> float:
    """Median of 5 timed batches, in microseconds per call."""
    fn(obj)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s / 10:
        fn(obj)
        n += 1
    batch = max(n, 1)
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(batch):
            fn(obj)
        samples.append((time.perf_counter() - t) / batch)
    return statistics.median(samples) * 1e6


def _worker(args: tuple[bytes, int, int]) -> tuple[int, int, float]:
    store_bytes, first, count = args
    store = pickle.loads(store_bytes)
    objects = [o for i in range(first, first + count) for o in bundle(tenant=f"t{i}")]
    start = time.perf_counter()
    bad = sum(1 for o in objects if store.validate(o))
    return len(objects), bad, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=140_000, help="objects to project for and to run (140000)")
    ap.add_argument("--budget", type=float, default=0.4, help="seconds of timing per kind and engine (0.4)")
    a = ap.parse_args()
    locations = locations_from_env() or [str(DEFAULT_CRDS)]
    print(f"Kubernetes {KUBERNETES_VERSION}; schema locations: {', '.join(locations)}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    store = SchemaStore(KUBERNETES_VERSION, locations)
    objects = bundle()

    # first use: read + compile, once per process and kind
    first_use = {}
    for obj in objects:
        t = time.perf_counter()
        store.validate(obj)
        first_use[obj["kind"]] = first_use.get(obj["kind"], (time.perf_counter() - t) * 1e3)
    for obj in objects:  # build the reference validators outside the timings too
        store.reference_validate(obj)
        assert store.validate(obj) == [], (obj["kind"], store.validate(obj))

    print()
    print(f"{'kind':<50} {'fast us':>9} {'jsonschema us':>14} {'ratio':>7} {'first use ms':>13}")
    fast_total = ref_total = 0.0
    for obj in objects:
        fast = per_call_us(store.validate, obj, a.budget)
        ref = per_call_us(store.reference_validate, obj, a.budget)
        fast_total += fast
        ref_total += ref
        label = f"{obj['apiVersion']} {obj['kind']}"
        print(f"{label:<50} {fast:9.1f} {ref:14.1f} {ref / fast:6.0f}x {first_use.get(obj['kind'], 0):13.1f}")
        first_use.pop(obj["kind"], None)
    n = len(objects)
    print(f"{'bundle of ' + str(n) + ' objects':<50} {fast_total:9.1f} {ref_total:14.1f} {ref_total / fast_total:6.0f}x")
    mean_fast, mean_ref = fast_total / n, ref_total / n
    print()
    print(f"projection for {a.objects:,} objects (mean of the bundle mix), one core:")
    print(f"  fast path (jsonschema-rs): {mean_fast * a.objects / 1e6:8.2f} s   ({mean_fast:.1f} us/object)")
    print(f"  jsonschema (reference):    {mean_ref * a.objects / 1e6:8.2f} s   ({mean_ref:.1f} us/object)")
    print(f"  ratio: {mean_ref / mean_fast:.0f}x; on 2 cores the fast path needs about "
          f"{mean_fast * a.objects / 2e6:.2f} s of the 60 s budget")

    # measured: the whole object count in one process (fresh objects, distinct tenants)
    bundles = -(-a.objects // n)
    pool = [o for i in range(min(bundles, 1000)) for o in bundle(tenant=f"t{i}")]
    done, start = 0, time.perf_counter()
    while done < a.objects:
        for obj in pool[: a.objects - done]:
            if store.validate(obj):
                raise SystemExit(f"unexpected violation in {obj['kind']}")
        done += min(len(pool), a.objects - done)
    one = time.perf_counter() - start
    print()
    print(f"measured, 1 process: {done:,} objects validated in {one:.2f} s ({one / done * 1e6:.1f} us/object)")

    # measured: two worker processes, store passed by pickle (settings only; each compiles lazily)
    blob = pickle.dumps(store)
    half = bundles // 2
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        results = list(ex.map(_worker, [(blob, 0, half), (blob, half, bundles - half)]))
    wall = time.perf_counter() - start
    count = sum(r[0] for r in results)
    print(f"measured, 2 worker processes: {count:,} objects ({bundles:,} bundles) in {wall:.2f} s wall "
          f"(validation {max(r[2] for r in results):.2f} s per worker; the rest is process start, "
          f"building the objects and compiling); pickled store: {len(blob)} bytes; "
          f"violations: {sum(r[1] for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
