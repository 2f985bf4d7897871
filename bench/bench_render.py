"""`make bench`: the renderer at scale, every number next to a reference measured in the same run.

    .venv/bin/python bench/bench_render.py [--bundles 10000] [--part cold --part shards ...]

Parts (all by default; each runnable alone with ``--part``):
  cold      `render build`, every gate, nothing cached, vs the LibYAML dump floor of the same objects;
            then the same build with its output in memory (``--memory-fs``, a tmpfs): what creating
            300,000 files on the work disk costs (user and system CPU of each)
  kustomize render per bundle vs `kubectl kustomize` per bundle (a timed sample)
  commits   `render commit` into a local repo: first commit, then ROUNDS commits of one install changed
            (changed and changed back in turn) and ROUNDS of nothing changed, their median and range
            (into the checkout, then into a bare clone of it: no working tree, the shape of CI's clone of a URL)
  shards    `render build --shard I/N` for I = 1..N one after another, then the join
            (`render build --from-shards ... --out`), on --shard-bundles bundles (default 4 x --bundles)
  policies  bench/bench_policies.py (the policy engines per bundle), when present
Every command runs as its own process (the real CLI) under a small parent that reports its wall time
and peak memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest process of the
run, workers included). Bundles: N/3 tenants x 3 plugins in one environment (bench/generate.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARTS = ("cold", "kustomize", "commits", "shards", "policies")
ROUNDS = 5  # commits of each kind and shape (the median is shown: one run varies by 10-20% on this machine)
# Runs a command and prints its peak RSS (KiB): the largest of it and its (waited-for) workers.
# Also its CPU time (user, system: the kernel's share, file creation above all), workers included.
_MEASURE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "sys.stderr.write('\\nCPU %.2f %.2f\\nPEAK %d\\n' % (u.ru_utime, u.ru_stime, u.ru_maxrss)); "
            "sys.exit(p.returncode)")


class Bench:
    def __init__(self, work: Path, env: dict):
        self.work, self.env = work, env
        self.rows: list[tuple[str, str]] = []
        self.cpu = (float("nan"), float("nan"))  # (user, system) seconds of the last ``render``

    def render(self, *args: str) -> tuple[float, float, dict]:
        """``render ARGS --offline --format json`` in its own process: (seconds, peak MiB, result)."""
        cmd = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "renderer.cli", *map(str, args),
               "--offline", "--format", "json"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - t
        peak = int(proc.stderr.rsplit("PEAK", 1)[1]) / 1024 if "PEAK" in proc.stderr else float("nan")
        if "\nCPU " in proc.stderr:
            user, system = proc.stderr.rsplit("\nCPU ", 1)[1].split()[:2]
            self.cpu = (float(user), float(system))
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"bench: `render {' '.join(map(str, args))}` failed with exit {proc.returncode}")
        return seconds, peak, json.loads(proc.stdout)

    def say(self, name: str, text: str) -> None:
        print(f"{name}: {text}", flush=True)
        self.rows.append((name, text))


def set_aside(work: Path) -> Path | None:
    """Move an earlier run's files out of the way (a rename each), to be deleted after the timed
    parts. On a disk formatted without a journal (this machine's ext4), the kernel avoids reusing
    an inode deleted in the last few minutes: deleting an earlier run's 1.5 million files right
    before the cold build made each of its 300,000 file creations scan past them (measured: 420 us
    a file just after deleting 30,000, 120 us a minute later, 42 us after four, against 43 us
    before). A first build on a CI runner follows no such deletion."""
    names = [p for p in work.iterdir() if not p.name.startswith(".earlier-")]
    if not names:
        return None
    earlier = work / f".earlier-{os.getpid()}"
    earlier.mkdir()
    for path in names:
        path.rename(earlier / path.name)
    return earlier


def cold(b: Bench, envs: Path, bundles: int, memory_fs: Path | None) -> dict:
    out = b.work / "rendered"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(b.work / "cache", ignore_errors=True)
    seconds, peak, doc = b.render("build", envs, "--out", out)
    b.say("cold build", f"{doc['bundles']} bundles, {doc['objects']} objects, every gate, nothing cached: "
          f"{seconds:.1f} s = {doc['bundles'] / seconds:.0f} bundles/s, peak RSS {peak:.0f} MiB; CPU {b.cpu[0]:.0f} s "
          f"user + {b.cpu[1]:.0f} s system")
    if memory_fs is not None:  # the same build writing to memory: what the disk's file creation costs
        shm_out, shm_cache = memory_fs / "rendered", memory_fs / "cache"
        saved = b.env["RENDER_CACHE_DIR"]
        b.env["RENDER_CACHE_DIR"] = str(shm_cache)
        try:
            shm_seconds, shm_peak, _ = b.render("build", envs, "--out", shm_out)
        finally:
            b.env["RENDER_CACHE_DIR"] = saved
            shutil.rmtree(memory_fs, ignore_errors=True)
        b.say("cold build, output in memory", f"the same build with its output and cache on {memory_fs.parent} "
              f"(tmpfs): {shm_seconds:.1f} s, CPU {b.cpu[0]:.0f} s user + {b.cpu[1]:.0f} s system "
              f"(the disk's files cost {seconds - shm_seconds:+.1f} s), peak RSS {shm_peak:.0f} MiB")
    objects = [yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader)
               for f in sorted(out.glob("*/plugins/*/*/*.yaml")) if f.name != "kustomization.yaml"]
    t = time.perf_counter()
    for o in objects:
        yaml.dump(o, Dumper=yaml.CSafeDumper, sort_keys=True)
    floor = time.perf_counter() - t
    b.say("LibYAML dump floor", f"{len(objects)} objects in {floor:.1f} s (one core) -> the cold build takes "
          f"{seconds / floor:.2f}x the floor")
    return {"seconds": seconds, "bundles": doc["bundles"], "out": out}


def kustomize(b: Bench, built: dict, sample: int) -> None:
    dirs = sorted(built["out"].glob("*/plugins/*/*"))[:sample]
    t = time.perf_counter()
    for d in dirs:
        subprocess.run(["kubectl", "kustomize", str(d)], check=True, capture_output=True)
    per = (time.perf_counter() - t) / len(dirs)
    render_per = built["seconds"] / built["bundles"]
    b.say("kubectl kustomize", f"{per * 1000:.1f} ms a bundle (sample of {len(dirs)}, one core) vs render "
          f"{render_per * 1000:.1f} ms a bundle (every gate, all cores) -> render is {per / render_per:.1f}x faster")


def commits(b: Bench, envs: Path) -> None:
    repo = b.work / "gitops"
    shutil.rmtree(repo, ignore_errors=True)
    cached = "verdict and signature caches as the cold build left them" if (b.work / "cache").exists() else "cold"
    first, peak, doc = b.render("commit", envs, "--repo", repo, "--init")
    b.say("commit, first", f"{len(doc['bundles'])} bundles added in {first:.1f} s ({cached}), peak RSS {peak:.0f} MiB")
    # the same runs into a bare repository (no working tree: the shape of CI's clone of a URL)
    bare = b.work / "gitops.git"
    shutil.rmtree(bare, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", "--bare", "--no-hardlinks", str(repo), str(bare)], check=True)
    install = next(envs.glob("*/tenants/*/plugins/grade-sync.yaml"))
    text = install.read_text()
    for target, shape in ((repo, "checkout"), (bare, "bare repo")):
        try:  # ROUNDS commits, the install changed and changed back in turn: single runs vary by 10-20% here
            runs = []
            for i in range(ROUNDS):
                install.write_text(text + "  overrides:\n    replicas: {max: 2}\n" if i % 2 == 0 else text)
                seconds, peak, doc = b.render("commit", envs, "--repo", target)
                runs.append((seconds, peak, len(doc["bundles"]), doc["keptUnchanged"]))
            b.say(f"commit, 1 install changed ({shape})", f"{_spread([r[0] for r in runs])} "
                  f"({', '.join(f'{r[0]:.2f}' for r in runs)}; each {_same(r[2] for r in runs)} bundle changed, "
                  f"{_same(r[3] for r in runs)} kept through the kept index), peak RSS {max(r[1] for r in runs):.0f} MiB")
            runs = []
            for _ in range(ROUNDS):
                seconds, peak, doc = b.render("commit", envs, "--repo", target)
                runs.append((seconds, peak, doc["unchanged"], doc["keptUnchanged"]))
            b.say(f"commit, nothing changed ({shape})", f"{_spread([r[0] for r in runs])} "
                  f"({', '.join(f'{r[0]:.2f}' for r in runs)}; {'unchanged' if all(r[2] for r in runs) else 'CHANGED?'}, "
                  f"{_same(r[3] for r in runs)} kept through the kept index), peak RSS {max(r[1] for r in runs):.0f} MiB")
        finally:
            install.write_text(text)


def _spread(seconds: list[float]) -> str:
    """The median of some runs and their range."""
    return f"median {statistics.median(seconds):.1f} s of {len(seconds)} runs, {min(seconds):.1f}-{max(seconds):.1f} s"


def _same(values) -> str:
    """The one value all runs gave, or all of them when they differ."""
    values = list(values)
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))


def shards(b: Bench, bundles: int, count: int) -> None:
    envs = generate(b.work / "environments-shards", bundles)
    saved = b.env.get("RENDER_CACHE_DIR")
    b.env["RENDER_CACHE_DIR"] = str(b.work / "cache-shards")
    shutil.rmtree(b.work / "cache-shards", ignore_errors=True)
    try:
        dirs, total, peaks, times = [], 0.0, [], []
        for i in range(1, count + 1):
            out = b.work / f"shard-{i}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, peak, doc = b.render("build", envs, "--out", out, "--shard", f"{i}/{count}")
            dirs.append(out)
            total += seconds
            times.append(seconds)
            peaks.append(peak)
            b.say(f"shard {i}/{count}", f"{doc['bundles']} bundles in {seconds:.1f} s, peak RSS {peak:.0f} MiB")
        joined = b.work / "joined"
        shutil.rmtree(joined, ignore_errors=True)
        seconds, peak, doc = b.render("build", envs, "--from-shards", *dirs, "--out", joined)
        b.say("join", f"{doc['bundles']} bundles from {count} shards checked, audited and written in {seconds:.1f} s "
              f"(policy verdicts from the shards' cache), peak RSS {peak:.0f} MiB")
        b.say("shards total", f"{bundles} bundles: {total:.1f} s of shards one after another + {seconds:.1f} s join "
              f"= {total + seconds:.1f} s (a CI matrix runs the shards side by side: longest shard {max(times):.1f} s "
              f"+ join); largest peak RSS {max(peaks + [peak]):.0f} MiB")
    finally:
        if saved is None:
            b.env.pop("RENDER_CACHE_DIR", None)
        else:
            b.env["RENDER_CACHE_DIR"] = saved


def policies(b: Bench, bundles: int) -> None:
    script = REPO / "bench" / "bench_policies.py"
    if not script.is_file():
        b.say("policies", "bench/bench_policies.py not present: skipped")
        return
    proc = subprocess.run([sys.executable, str(script), "--bundles", str(min(bundles, 500))], env=b.env,
                          capture_output=True, text=True, cwd=REPO)
    print(proc.stdout, end="")
    b.say("policies", "bench/bench_policies.py " + ("done (above)" if proc.returncode == 0 else
                                                      f"failed with exit {proc.returncode}: {proc.stderr[-300:]}"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=10000, help="bundles for cold, kustomize and commits (10000)")
    ap.add_argument("--shard-bundles", type=int, default=0, help="bundles for the shard run (default 4 x --bundles)")
    ap.add_argument("--shards", type=int, default=4, help="shards of the shard run (4)")
    ap.add_argument("--kustomize-sample", type=int, default=100)
    ap.add_argument("--part", action="append", choices=PARTS, help="run only this part (repeatable; default all)")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--memory-fs", type=Path, default=Path("/dev/shm"),
                    help="a tmpfs for a second cold build (default /dev/shm when it is a folder; '' for none)")
    a = ap.parse_args(argv)
    parts = a.part or list(PARTS)
    a.work.mkdir(parents=True, exist_ok=True)
    earlier = set_aside(a.work)
    schemas = os.environ.get("RENDER_SCHEMA_LOCATION") or str(REPO.parent / "shared" / "schemas" / "crds")
    env = {**os.environ, "RENDER_SCHEMA_LOCATION": schemas, "RENDER_CACHE_DIR": str(a.work / "cache"),
           "PYTHONPATH": str(REPO)}
    b = Bench(a.work.resolve(), env)
    print(f"bench: {os.cpu_count()} cores, {a.bundles} bundles, parts: {', '.join(parts)}", flush=True)
    envs = generate(b.work / "environments", a.bundles) if {"cold", "kustomize", "commits"} & set(parts) else None
    built = None
    if "cold" in parts or "kustomize" in parts:
        memory_fs = a.memory_fs if str(a.memory_fs) not in ("", ".") and a.memory_fs.is_dir() else None
        built = cold(b, envs, a.bundles, memory_fs / f"render-bench-{os.getpid()}" if memory_fs else None)
    if "kustomize" in parts:
        kustomize(b, built, a.kustomize_sample)
    if "commits" in parts:
        commits(b, envs)
    if "shards" in parts:
        shards(b, a.shard_bundles or 4 * a.bundles, a.shards)
    if "policies" in parts:
        policies(b, a.bundles)
    if earlier is not None:  # after every timed part (see set_aside), with any an interrupted run left
        t = time.perf_counter()
        for old in a.work.glob(".earlier-*"):
            shutil.rmtree(old, ignore_errors=True)
        b.say("earlier run's files", f"deleted after the timed parts in {time.perf_counter() - t:.1f} s")
    print("\nsummary")
    for name, text in b.rows:
        print(f"  {name:28} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
