"""A/B timing of two policy folders on the same generated bundles, as the gate runs them (4
bundles per combined input; set_input, then data.main.deny, then data.main.warn), interleaved
(A, B, A, B, ...) input by input (the machine is shared and noisy).

    .venv/bin/python bench/bench_policy_ab.py OLD_POLICIES_DIR [NEW_POLICIES_DIR] [--bundles 120]

Prints CPU ms per bundle for input, deny and warn under each folder (for each input, each
step's best of --repeat runs), and checks that both give
the same deny and warn messages on every input (the generated bundles, and the same bundles
broken as bench_policies.broken breaks them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import regorus  # noqa: E402

from bench_policies import batches_of, broken, generated  # noqa: E402
from renderer.gates.policy import DENY, WARN, policy_files  # noqa: E402


def engine(policies: Path) -> regorus.Engine:
    eng = regorus.Engine()
    for path in policy_files(policies):
        eng.add_policy(path.name, path.read_text(encoding="utf-8"))
    return eng


def step_ms(engines: dict, batches, bundles: int, repeat: int) -> dict[str, dict[str, float]]:
    """CPU ms per bundle of each step (set_input, deny, warn) under each engine: for every input,
    the engines in turn (interleaved), each step's best of `repeat` runs, summed over the inputs."""
    total = {k: {"input": 0.0, "deny": 0.0, "warn": 0.0} for k in engines}
    for b in batches:
        best = {k: {"input": 1e9, "deny": 1e9, "warn": 1e9} for k in engines}
        for _ in range(repeat):
            for k, eng in engines.items():
                t0 = time.thread_time()
                eng.set_input(b)
                t1 = time.thread_time()
                eng.eval_rule(DENY)
                t2 = time.thread_time()
                eng.eval_rule(WARN)
                t3 = time.thread_time()
                for step, spent in (("input", t1 - t0), ("deny", t2 - t1), ("warn", t3 - t2)):
                    best[k][step] = min(best[k][step], spent)
        for k in engines:
            for step in total[k]:
                total[k][step] += best[k][step]
    return {k: {step: v / bundles * 1e3 for step, v in steps.items()} for k, steps in total.items()}


def verdicts(eng, batches):
    out = []
    for b in batches:
        eng.set_input(b)
        out.append((sorted(eng.eval_rule(DENY)), sorted(eng.eval_rule(WARN))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=REPO / "policies")
    ap.add_argument("--bundles", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    inputs = generated(a.bundles)
    batches = batches_of(inputs)
    engines = {"old": engine(a.old), "new": engine(a.new)}
    for check in (batches, batches_of(broken(inputs)), [[e] for v in inputs[:8] for e in v]):
        v = {k: verdicts(e, check) for k, e in engines.items()}
        if v["old"] != v["new"]:
            bad = next(i for i, (x, y) in enumerate(zip(v["old"], v["new"])) if x != y)
            print(f"VERDICTS DIFFER on input {bad}:\n old {v['old'][bad]}\n new {v['new'][bad]}")
            return 1
    print(f"same verdicts on {len(batches)} clean, {len(batches)} broken and single-entry inputs")
    best = step_ms(engines, batches, len(inputs), a.repeat)
    for k in engines:
        print(k, "  ".join(f"{s} {ms:.3f} ms" for s, ms in best[k].items()))
    d = 1 - best["new"]["deny"] / best["old"]["deny"]
    print(f"deny {d:.0%} cheaper per bundle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
