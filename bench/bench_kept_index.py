"""Micro-benchmark of the kept index (renderer.pipeline.keptindex): ``put`` of N entries, then the
lookup of all of them as ``Target.unchanged`` does it in a run (before verification, then after).

    .venv/bin/python bench/bench_kept_index.py [--entries 10000] [--module path/to/keptindex.py]

The entries are real: the example environments are built once with the real code and each of
their entries (facts, Application, signature) is copied to N bundle paths. ``--module`` times
another implementation of the module with the same API (e.g. the file-per-entry v1:
``git show ad5d86e:renderer/pipeline/keptindex.py > /tmp/keptindex_v1.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from renderer.pipeline import keptindex  # noqa: E402
from renderer.pipeline.build import BuildRequest, build  # noqa: E402

EXAMPLE = REPO / "environments"


def _id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def real_entries() -> list[tuple[str, object, tuple, object]]:
    """(gates digest, verified plan, ids, Entry) of every example bundle, as the real build records them."""
    recorded, put = [], keptindex.KeptIndex.put

    def record(self, digest, items):
        items = list(items)
        recorded.extend((digest, *item) for item in items)
        return put(self, digest, items)

    keptindex.KeptIndex.put = record
    try:
        with tempfile.TemporaryDirectory() as tmp:
            build(BuildRequest(env_dir=EXAMPLE, out=Path(tmp) / "out", offline=True, cache_dir=Path(tmp) / "cache",
                               jobs=1, folder_ids=lambda plans: {},
                               folder_id=lambda files: _id(repr(sorted(files)).encode())))
    finally:
        keptindex.KeptIndex.put = put
    return recorded


def copies(real, n: int):
    out = []
    for i in range(n):
        digest, plan, ids, entry = real[i % len(real)]
        p = dataclasses.replace(plan, path=f"{plan.path}-{i}")
        out.append((digest, p, ids, dataclasses.replace(entry, facts={**entry.facts, "bundle": p.path})))
    return out


def once(module, items) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        index = module.KeptIndex(cache)
        t = time.perf_counter()
        by_digest: dict[str, list] = {}
        for digest, plan, ids, entry in items:
            by_digest.setdefault(digest, []).append((plan, ids, entry))
        for digest, rows in by_digest.items():
            assert index.put(digest, rows) == len(rows)
        put_s = time.perf_counter() - t
        plans = [plan for _, plan, _, _ in items]
        digest_of = {plan.env: digest for digest, plan, _, _ in items}
        target = module.Target(module.KeptIndex(cache), digest_of, {plan.path: ids for _, plan, ids, _ in items})
        t = time.perf_counter()
        before = target.unchanged(plans, signatures=False)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        after = target.unchanged(plans)
        second_s = time.perf_counter() - t
        assert len(before) == len(after) == len(items), (len(before), len(after))
        size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        return put_s, first_s, second_s, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--module", help="another keptindex.py to time (same API)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    module = keptindex
    if args.module:
        spec = importlib.util.spec_from_file_location("keptindex_other", args.module)
        module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    items = copies(real_entries(), args.entries)
    runs = [once(module, items) for _ in range(args.repeat)]
    median = [statistics.median(r[i] for r in runs) for i in range(4)]
    print(f"{getattr(module, 'VERSION', '?')}: {args.entries} entries, median of {args.repeat}: "
          f"put {median[0]:.3f} s, lookup before verification {median[1]:.3f} s, "
          f"after {median[2]:.3f} s, on disk {median[3] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
