"""Benchmark of the policy gate (renderer.gates.policy): regorus (the gate's engine) against
rego-cpp (regopy, the engine it replaced) per bundle, on the same bundles.

    .venv/bin/python bench/bench_policies.py [--bundles 200] [--workers 2] [--rules] [--repeat 5]

`make bench` installs regopy (the `bench` extra). Renders the example environments and N
generated bundles (bench/generate.py) in process, then times one bundle check (conftest's
--combine input, data.main.deny and data.main.warn) under each engine: ms per bundle (median,
mean, p95), the ratio, the projection for 10,000 bundles, and whether the two engines gave the
same verdicts on every bundle (the generated ones pass; the examples are also checked with one
edit that every rule must catch, so the comparison covers denials too). The step timings are the best
of --repeat runs (the machine is shared). --rules also times each `deny`/`warn` body alone, and the
rules they share (input_index, bundles, ...), on the same inputs: where deny's time goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from generate import generate  # noqa: E402
from renderer.gates.policy import DENY, WARN, PolicyEngine, _to_json, bundle_input, policy_files  # noqa: E402
from renderer.pipeline.load import load  # noqa: E402
from renderer.pipeline.plan import plan  # noqa: E402
from renderer.pipeline.render import Renderer  # noqa: E402
from renderer.pipeline.validate import POLICY_BATCH  # noqa: E402

PROJECT = 10_000
POLICIES = REPO / "policies"


class RegoCpp:
    """The old gate's engine, rego-cpp through regopy, on the same input and query."""

    QUERY = "deny := [m | some m in data.main.deny]; warn := [m | some m in data.main.warn]"

    def __init__(self, policies_dir: Path):
        import regopy

        self._regopy = regopy
        builder = regopy.Interpreter()
        for path in policy_files(policies_dir):
            builder.add_module(path.name, path.read_text(encoding="utf-8"))
        self._query = builder.build(self.QUERY)
        self._builder = builder  # the compiled bundle refers to the builder's state
        self._interp = regopy.Interpreter()

    def evaluate(self, value) -> tuple[list[str], list[str]]:
        text = json.dumps(value, ensure_ascii=False, default=str)
        plain = json.loads(text)
        if "\\" in text:  # rego-cpp keeps strings JSON-escaped; regopy's Input does not
            plain = _escaped(plain)
        self._interp.set_input(self._regopy.Input(plain))
        out = self._interp.query_bundle(self._query)
        if not out.ok():
            raise RuntimeError(str(out))
        bindings = out.results[0].bindings if out.results else {}
        return sorted(bindings.get("deny") or []), sorted(bindings.get("warn") or [])


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _escaped(value):
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1] if _NEEDS_ESCAPE.search(value) else value
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def render_all(envs: Path, name: str) -> list[list[dict]]:
    """Every bundle of an environments repo, as the gate's input."""
    renderer = Renderer(REPO / "templates")
    out = []
    for env in plan(load(envs), name):
        for bundle_plan in env.bundles:
            b = renderer.render_bundle(bundle_plan)
            out.append(bundle_input(b.path, list(b.objects), json.loads(dict(b.files)["bundle.json"])))
    return out


def generated(bundles: int) -> list[list[dict]]:
    """``bundles`` generated bundles (bench/generate.py, in a scratch folder), as the gate's input."""
    with tempfile.TemporaryDirectory() as tmp:
        return render_all(generate(Path(tmp) / "environments", bundles), "bench")


def batches_of(inputs: list[list[dict]], n: int = POLICY_BATCH) -> list[list[dict]]:
    """The inputs ``n`` bundles to an evaluation, as a worker hands them to the gate."""
    return [[e for v in inputs[i:i + n] for e in v] for i in range(0, len(inputs), n)]


def broken(inputs: list[list[dict]]) -> list[list[dict]]:
    """Each bundle with a Deployment, broken in ways several rules catch."""
    out = []
    for entries in inputs:
        entries = copy.deepcopy(entries)
        for e in entries:
            obj = e["contents"]
            if obj.get("kind") == "Deployment":
                c = obj["spec"]["template"]["spec"]["containers"][0]
                c["securityContext"].pop("capabilities", None)
                c["securityContext"]["privileged"] = True
                c.pop("image", None)
                obj["metadata"].pop("labels", None)
        out.append(entries)
    return out


def timed(evaluate, inputs) -> tuple[list[float], float, list]:
    """Wall ms per input, CPU ms per input (mean), and the verdicts."""
    ms, verdicts = [], []
    cpu = time.process_time()
    for value in inputs:
        t = time.perf_counter()
        verdicts.append(evaluate(value))
        ms.append(1e3 * (time.perf_counter() - t))
    return ms, 1e3 * (time.process_time() - cpu) / len(inputs), verdicts


def split_ms(policies: Path, inputs, clock=time.perf_counter) -> dict[str, list[float]]:
    """regorus as the gate runs it, one step at a time: ms per input for setting the input (its
    JSON text included), evaluating data.main.deny, then data.main.warn. `clock` is wall time, or
    time.thread_time for CPU time (steadier on a shared, loaded machine)."""
    import regorus as regorus_lib

    engine = regorus_lib.Engine()
    for path in policy_files(policies):
        engine.add_policy(path.name, path.read_text(encoding="utf-8"))
    out: dict[str, list[float]] = {"input": [], "deny": [], "warn": []}
    for value in inputs:
        t0 = clock()
        engine.set_input_json(_to_json(value))
        t1 = clock()
        engine.eval_rule(DENY)
        t2 = clock()
        engine.eval_rule(WARN)
        t3 = clock()
        out["input"].append(1e3 * (t1 - t0))
        out["deny"].append(1e3 * (t2 - t1))
        out["warn"].append(1e3 * (t3 - t2))
    return out


def best_steps(policies: Path, inputs, repeat: int, clock) -> dict[str, list[float]]:
    """split_ms run `repeat` times: for each step, the run with the lowest mean."""
    runs = [split_ms(policies, inputs, clock) for _ in range(max(1, repeat))]
    return {name: min((r[name] for r in runs), key=statistics.fmean) for name in runs[0]}


# The rules that several deny/warn bodies read (cached per evaluation): timed alone too.
SHARED = ("input_index", "bundles", "labelled_entries", "bundle_kafka_facts", "bundle_secret_facts_of")
_HEAD = re.compile(r"^(deny|warn) contains (\w+) if \{", re.M)


def rule_probes(policies: Path, dest: Path) -> list[tuple[str, str]]:
    """A copy of the policies in `dest` where each `deny`/`warn contains ... if {` body is its own
    rule (probe_<n>), so that one evaluation runs that body alone (and the rules it reads):
    (label "<file>:<line> deny", rule ref) per body, then the shared rules."""
    out = []
    for path in policy_files(policies):
        text = path.read_text(encoding="utf-8")

        def rename(m, path=path, text=text):
            n = len(out)
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{path.stem}:{line} {m.group(1)}", f"data.main.probe_{n}"))
            return f"probe_{n} contains {m.group(2)} if {{"

        (dest / path.name).write_text(_HEAD.sub(rename, text), encoding="utf-8")
    return out + [(name, f"data.main.{name}") for name in SHARED]


def rule_ms(policies: Path, inputs, repeat: int) -> list[tuple[str, float]]:
    """Mean CPU ms per input of each deny/warn body alone (and of each shared rule), best of `repeat`."""
    import regorus as regorus_lib

    with tempfile.TemporaryDirectory() as tmp:
        probes = rule_probes(policies, Path(tmp))
        engine = regorus_lib.Engine()
        for path in sorted(Path(tmp).glob("*.rego")):
            engine.add_policy(path.name, path.read_text(encoding="utf-8"))
    texts = [_to_json(value) for value in inputs]
    best = {label: math.inf for label, _ in probes}
    for _ in range(repeat):
        for label, ref in probes:
            spent = 0.0
            for text in texts:
                engine.set_input_json(text)
                t = time.thread_time()
                engine.eval_rule(ref)
                spent += time.thread_time() - t
            best[label] = min(best[label], 1e3 * spent / len(texts))
    return list(best.items())


def summary(ms: list[float]) -> tuple[float, float, float]:
    s = sorted(ms)
    return statistics.median(s), statistics.fmean(s), s[int(0.95 * (len(s) - 1))]


def _worker(inputs, policies: Path = POLICIES) -> int:
    engine = PolicyEngine(policies)
    return sum(1 for value in inputs if engine.evaluate(value)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=200, help="generated bundles to check (200)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the parallel regorus run (2)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the step (and rule) timings; the best is shown (5)")
    ap.add_argument("--rules", action="store_true", help="also time each deny/warn body alone")
    ap.add_argument("--policies", type=Path, default=POLICIES, help="the policies to time (policies/; another folder "
                    "compares a version of them, e.g. one checked out with git worktree)")
    a = ap.parse_args()
    policies = a.policies
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    examples = render_all(REPO / "environments", "bench")
    made = generated(a.bundles)
    inputs = examples + broken(examples) + made
    objects = sum(len(e) for e in made) / max(1, len(made))
    print(f"{len(examples)} example bundles, the same broken, {len(made)} generated "
          f"({objects:.1f} files per bundle, bundle.json included)")

    t = time.perf_counter()
    regorus = PolicyEngine(policies)
    load_regorus = 1e3 * (time.perf_counter() - t)
    try:
        t = time.perf_counter()
        regocpp = RegoCpp(policies)
        load_regocpp = 1e3 * (time.perf_counter() - t)
    except ImportError:
        print("regopy is not installed: `make bench` installs it (pip install -e '.[bench]')")
        return 2
    print(f"\none-off: load the policies: regorus {load_regorus:.0f} ms, rego-cpp {load_regocpp:.0f} ms")

    for value in inputs[:3]:  # warm-up
        regorus.evaluate(value), regocpp.evaluate(value)
    ms_regorus, cpu_regorus, v_regorus = timed(regorus.evaluate, inputs)
    ms_regocpp, cpu_regocpp, v_regocpp = timed(regocpp.evaluate, inputs)
    same = sum(1 for x, y in zip(v_regorus, v_regocpp) if x == y)
    denied = sum(1 for deny, _ in v_regorus if deny)

    print(f"\nper bundle, one process, {len(inputs)} bundles ({denied} denied):")
    for name, ms, cpu in (("regorus ", ms_regorus, cpu_regorus), ("rego-cpp", ms_regocpp, cpu_regocpp)):
        median, mean, p95 = summary(ms)
        print(f"  {name}: wall median {median:.2f} ms, mean {mean:.2f} ms, p95 {p95:.2f} ms; CPU mean {cpu:.2f} ms; "
              f"{PROJECT} bundles: {PROJECT * mean / 1e3:.0f} s on one process")
    ratio = statistics.fmean(ms_regocpp) / statistics.fmean(ms_regorus)
    print(f"  ratio rego-cpp / regorus: {ratio:.1f}x (wall, mean), {cpu_regocpp / cpu_regorus:.1f}x (CPU)")
    print(f"  identical verdicts (deny and warn): {same} of {len(inputs)} bundles")
    split_ms(policies, inputs[:3])  # warm-up
    for what, clock in (("wall", time.perf_counter), ("CPU", time.thread_time)):
        best = best_steps(policies, inputs, a.repeat, clock)
        print(f"  regorus step by step, {what}, best of {max(1, a.repeat)} runs (median / mean ms): " + ", ".join(
            f"{name} {statistics.median(ms):.2f} / {statistics.fmean(ms):.2f}" for name, ms in best.items()))
    if a.rules:
        print(f"\neach deny/warn body alone, and the shared rules (mean CPU ms per bundle, best of {a.repeat}):")
        for label, ms in rule_ms(policies, inputs, max(1, a.repeat)):
            print(f"  {ms:7.3f}  {label}")

    if a.workers > 1:
        chunks = [made[i::a.workers] for i in range(a.workers)]
        t = time.perf_counter()
        with ProcessPoolExecutor(a.workers) as pool:
            list(pool.map(_worker, chunks, [policies] * len(chunks)))
        seconds = time.perf_counter() - t
        print(f"\nregorus on {a.workers} worker processes (each loads the policies once): {len(made)} bundles "
              f"in {seconds:.2f} s = {1e3 * seconds / len(made):.2f} ms/bundle")
    return 0 if same == len(inputs) else 1


if __name__ == "__main__":
    sys.exit(main())
