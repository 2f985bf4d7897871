"""Benchmark of `render build` at scale, with two reference points measured in the same run.

    .venv/bin/python bench/bench_render.py --bundles 10000     (or: make bench)

Prints bundles per second and peak memory of `render build` (render + schema gate + policy
gate + isolation audit + atomic write, all cores), then the ratio to
  * `kubectl kustomize` building the same bundles (timed on a sample, extrapolated), and
  * merely dumping the same objects with LibYAML (the floor: no templates, no validation).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", type=int, default=10000)
    ap.add_argument("--kustomize-sample", type=int, default=100)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out")
    a = ap.parse_args()
    envs = generate(a.work / "environments", a.bundles)
    out = a.work / "rendered"
    env = dict(os.environ)
    env.setdefault("RENDER_SCHEMA_LOCATION", str(REPO.parent / "shared" / "schemas" / "crds"))
    env["RENDER_CACHE_DIR"] = str(a.work / "cache")
    cmd = [sys.executable, "-m", "renderer.cli", "build", str(envs), "--out", str(out), "--offline", "--format", "json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"render build: {a.bundles} bundles in {seconds:.1f} s = {a.bundles / seconds:.0f} bundles/s; "
          f"peak RSS of the largest process {peak_mib:.0f} MiB")
    print(f"  {proc.stdout.strip()}")

    bundle_dirs = sorted((out / "bench" / "plugins").glob("*/*"))
    sample = bundle_dirs[: a.kustomize_sample]
    t = time.perf_counter()
    for d in sample:
        subprocess.run(["kubectl", "kustomize", str(d)], check=True, capture_output=True)
    per = (time.perf_counter() - t) / len(sample)
    kustomize_total = per * len(bundle_dirs)
    print(f"kubectl kustomize: {per * 1000:.1f} ms per bundle (sample of {len(sample)}), "
          f"{kustomize_total:.0f} s for all {len(bundle_dirs)} -> render build is {kustomize_total / seconds:.1f}x faster")

    objects = []
    for d in bundle_dirs:
        for f in d.glob("*.yaml"):
            if f.name != "kustomization.yaml":
                objects.append(yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader))
    t = time.perf_counter()
    for o in objects:
        yaml.dump(o, Dumper=yaml.CSafeDumper, sort_keys=True)
    floor = time.perf_counter() - t
    print(f"LibYAML dump floor: {len(objects)} objects in {floor:.1f} s (one core) -> render build takes "
          f"{seconds / floor:.2f}x the floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
