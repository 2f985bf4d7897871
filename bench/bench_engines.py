"""Why the policy gate runs regorus's interpreter, one batch of bundles per evaluation: the other
ways to evaluate the same policies, measured on the same bundles, and what a Rego construct costs.

    .venv/bin/python bench/bench_engines.py [--bundles 100] [--repeat 5]

Renders the example environments, the same broken (bench_policies.broken) and N generated bundles
(bench/generate.py), then times per bundle (CPU, best of --repeat) and compares the verdicts with
the gate's own (``PolicyEngine.evaluate``):

- regorus's interpreter one bundle at a time, and 2, 4 and 8 bundles to an input (the gate: 4);
- regorus's compiled mode (``regorus.Program`` + ``regorus.Rvm``, same package): verdicts that
  differ and inputs it stops on (its instruction limit, not settable from Python);
- the real OPA engine (``opa-golib-python-bindings``, the tests' oracle) when installed; it is
  loaded here only, this script never forks;
- the cost of the constructs the policies are made of, on a 24-entry input: a reference, a
  built-in, a function of one's own (the way to make the policies cheaper is fewer calls).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_policies import batches_of, broken, generated, render_all  # noqa: E402
from renderer.gates.policy import DENY, WARN, PolicyEngine, _to_json, policy_files  # noqa: E402

POLICIES = REPO / "policies"


def best_ms(run, repeat: int, count: int) -> float:
    """CPU ms per item of ``run()`` (which handles ``count`` items), best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        run()
        best = min(best, time.process_time() - t)
    return 1e3 * best / count


def interpreter(inputs, repeat: int, reference) -> None:
    import regorus

    engine = regorus.Engine()
    for path in policy_files(POLICIES):
        engine.add_policy(path.name, path.read_text(encoding="utf-8"))
    sizes = (1, 2, 4, 8)
    batches = {n: batches_of(inputs, n) for n in sizes}
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(max(3, repeat)):  # the sizes take turns, so a busy moment of the machine hits each alike
        for n in sizes:
            t = time.process_time()
            for value in batches[n]:
                engine.set_input(value)
                engine.eval_rule(DENY)
                engine.eval_rule(WARN)
            best[n] = min(best[n], 1e3 * (time.process_time() - t) / len(inputs))
    for n in sizes:
        print(f"  regorus interpreter, {n} bundle(s) an input: {best[n]:.2f} ms a bundle ({best[1] / best[n]:.2f}x)")
    print("  (the gate evaluates 4 to an input, and a batch that finds anything again bundle by bundle)")


def rvm(inputs, repeat: int, reference) -> None:
    import regorus

    modules = [(p.name, p.read_text(encoding="utf-8")) for p in policy_files(POLICIES)]
    program = regorus.Program.compile_from_modules("{}", modules, [DENY, WARN])
    vm = regorus.Rvm()
    vm.load_program(program)

    def evaluate(value):
        vm.set_input_json(_to_json(value))
        return tuple(sorted(json.loads(vm.execute_entry_point(ref)) or []) for ref in (DENY, WARN))
    differ = stopped = 0
    example = ""
    for value, want in zip(inputs, reference):
        try:
            got = evaluate(value)
        except RuntimeError as exc:
            stopped += 1
            example = example or str(exc).splitlines()[0][:120]
            continue
        if got != tuple(want):
            differ += 1
    ok = [v for v, w in zip(inputs, reference) if _runs(evaluate, v)]
    ms = best_ms(lambda: [evaluate(v) for v in ok], repeat, max(1, len(ok)))
    print(f"  regorus compiled (RVM): {ms:.2f} ms a bundle on the {len(ok)} it finishes; verdicts differ on "
          f"{differ} of {len(inputs)}, stops on {stopped}{f' ({example})' if example else ''}")


def _runs(evaluate, value) -> bool:
    try:
        evaluate(value)
        return True
    except RuntimeError:
        return False


def opa(inputs, repeat: int, reference) -> None:
    try:
        from opa_bindings import OpaEngine, OpaUndefinedError
    except ImportError:
        print("  OPA: opa-golib-python-bindings is not installed (make test installs it)")
        return
    engine = OpaEngine()
    for path in policy_files(POLICIES):
        engine.add_policy(path.name, path.read_text(encoding="utf-8"))

    def evaluate(value):
        out = []
        for ref in ("main.deny", "main.warn"):
            try:
                out.append(sorted(engine.eval_document(ref, value) or []))
            except OpaUndefinedError:
                out.append([])
        return tuple(out)
    differ = sum(1 for v, want in zip(inputs, reference) if evaluate(v) != tuple(want))
    ms = best_ms(lambda: [evaluate(v) for v in inputs], repeat, len(inputs))
    print(f"  OPA (Go, in process): {ms:.2f} ms a bundle; verdicts differ on {differ} of {len(inputs)}")


CONSTRUCTS = {
    "a reference and a comparison": 'some it in input; it.contents.kind == "Z{i}"',
    "a built-in (object.get)": 'some it in input; object.get(it.contents, "kind", "") == "Z{i}"',
    "a built-in (is_string) and the comparison": 'some it in input; is_string(it.contents.kind); it.contents.kind == "Z{i}"',
    "a function of one's own": 'some it in input; f(it) == "Z{i}"',
}


def constructs(repeat: int) -> None:
    import regorus

    value = [{"path": f"t/p/{i}.yaml", "contents": {"kind": f"K{i % 5}", "metadata": {"name": "n"}}} for i in range(24)]
    base = None
    for label, body in CONSTRUCTS.items():
        text = "package main\nimport rego.v1\nf(x) := x.contents.kind\n" + "".join(
            f'deny contains msg if {{ {body.format(i=i)}; msg := "x" }}\n' for i in range(10))
        engine = regorus.Engine()
        engine.add_policy("p.rego", text)
        engine.set_input(value)
        ms = best_ms(lambda: [engine.eval_rule(DENY) for _ in range(100)], repeat, 100)
        per_step = 1e3 * ms / 240  # 10 rules x 24 entries
        base = base or per_step
        print(f"  {label}: {per_step:.2f} us an entry ({per_step / base:.1f}x a reference)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=100, help="generated bundles (100)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each timing; the best is shown (5)")
    a = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    examples = render_all(REPO / "environments", "bench")
    made = generated(a.bundles)
    inputs = examples + broken(examples) + made
    gate = PolicyEngine(POLICIES)
    reference = [gate.evaluate(v) for v in inputs]
    print(f"{len(inputs)} bundles ({sum(1 for d, _ in reference if d)} denied by the gate)\n")
    print("engines, per bundle (CPU):")
    interpreter(made, a.repeat, reference)
    rvm(inputs, a.repeat, reference)
    opa(inputs, min(a.repeat, 2), reference)
    print("\nwhat a construct costs in regorus's interpreter, per entry of the input:")
    constructs(a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
