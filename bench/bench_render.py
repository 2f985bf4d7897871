"""Benchmark of `render build` at scale, with reference points measured in the same run.

    .venv/bin/python bench/bench_render.py --bundles 10000     (or: make bench)

Prints, for N generated bundles (3 plugins, N/3 tenants, one environment):
  1. render + schema gate + isolation audit + atomic write, cold (the issue-2 pipeline: the
     policy gate is switched off in-process for this one measurement only),
  2. the full `render build` command, cold: every gate, policy gate included, nothing cached,
  3. the full `render build` again on unchanged input (bundles kept by inputDigest),
and then the ratio of (1) to `kubectl kustomize` building the same bundles (a timed sample,
extrapolated) and to merely dumping the same objects with LibYAML (the floor), plus peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _cli(envs: Path, out: Path, env: dict) -> float:
    cmd = [sys.executable, "-m", "renderer.cli", "build", str(envs), "--out", str(out), "--offline", "--format", "json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    print(f"    {json.loads(proc.stdout)}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles", type=int, default=10000)
    ap.add_argument("--kustomize-sample", type=int, default=100)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out")
    a = ap.parse_args()
    envs = generate(a.work / "environments", a.bundles)
    schemas = os.environ.get("RENDER_SCHEMA_LOCATION") or str(REPO.parent / "shared" / "schemas" / "crds")
    env = {**os.environ, "RENDER_SCHEMA_LOCATION": schemas, "RENDER_CACHE_DIR": str(a.work / "cache")}

    # 1. the issue-2 pipeline, in a child process so that its peak memory is measured alone
    out1 = a.work / "rendered-no-policy"
    shutil.rmtree(out1, ignore_errors=True)
    shutil.rmtree(a.work / "cache", ignore_errors=True)
    code = ("import sys, time; from pathlib import Path; from renderer.pipeline import build, BuildRequest; "
            "t = time.perf_counter(); r = build(BuildRequest(env_dir=Path(sys.argv[1]), out=Path(sys.argv[2]), "
            "offline=True, cache_dir=None, schema_locations=(sys.argv[3],), policy_gate=False)); "
            "print(r.bundles, r.objects, round(time.perf_counter() - t, 2), {k: round(v, 2) for k, v in r.timings.items()})")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(envs), str(out1), schemas], env=env, capture_output=True,
                          text=True, check=True)
    core = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    bundles, objects = (int(x) for x in proc.stdout.split()[:2])
    print(f"1. render + schema gate + audit + write: {bundles} bundles, {objects} objects in {core:.1f} s "
          f"= {bundles / core:.0f} bundles/s; peak RSS {peak_mib:.0f} MiB\n    {proc.stdout.strip()}")

    # 2 and 3. the full command, cold then unchanged
    out2 = a.work / "rendered"
    shutil.rmtree(out2, ignore_errors=True)
    shutil.rmtree(a.work / "cache", ignore_errors=True)
    cold = _cli(envs, out2, env)
    print(f"2. render build, every gate, cold: {cold:.1f} s = {bundles / cold:.0f} bundles/s")
    warm = _cli(envs, out2, env)
    print(f"3. render build again, unchanged input: {warm:.1f} s = {bundles / warm:.0f} bundles/s")

    bundle_dirs = sorted((out1 / "bench" / "plugins").glob("*/*"))
    sample = bundle_dirs[: a.kustomize_sample]
    t = time.perf_counter()
    for d in sample:
        subprocess.run(["kubectl", "kustomize", str(d)], check=True, capture_output=True)
    per = (time.perf_counter() - t) / len(sample)
    kustomize_total = per * len(bundle_dirs)
    print(f"kubectl kustomize: {per * 1000:.1f} ms per bundle (sample of {len(sample)}), {kustomize_total:.0f} s "
          f"for all {len(bundle_dirs)} (one core) -> (1) is {kustomize_total / core:.1f}x faster")

    objs = []
    for d in bundle_dirs:
        for f in sorted(d.glob("*.yaml")):
            if f.name != "kustomization.yaml":
                objs.append(yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader))
    t = time.perf_counter()
    for o in objs:
        yaml.dump(o, Dumper=yaml.CSafeDumper, sort_keys=True)
    floor = time.perf_counter() - t
    print(f"LibYAML dump floor: {len(objs)} objects in {floor:.1f} s (one core) -> (1) takes {core / floor:.2f}x the floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
