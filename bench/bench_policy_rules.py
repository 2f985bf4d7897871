"""Where deny's time goes, as the gate runs it (4 bundles per combined input): each `deny`/`warn`
body renamed to its own rule and evaluated alone (so each number includes the shared rules it
reads), and the shared rules alone. CPU ms per bundle: for each input the best of --repeat runs, set_input excluded.

    .venv/bin/python bench/bench_policy_rules.py [POLICIES_DIR] [--bundles 120] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import regorus  # noqa: E402

from bench_policies import batches_of, generated  # noqa: E402
from renderer.gates.policy import policy_files  # noqa: E402

SHARED = ("input_index", "bundles", "pod_entries", "cluster_scoped_entries", "bundle_kafka_facts",
          "bundle_secret_facts_of", "labelled_entries")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("policies", type=Path, nargs="?", default=REPO / "policies")
    ap.add_argument("--bundles", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    inputs = generated(a.bundles)
    batches = batches_of(inputs)
    eng, rules = regorus.Engine(), []
    for p in policy_files(a.policies):
        lines = p.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            for head in ("deny", "warn"):
                if line.startswith(f"{head} contains msg if {{"):
                    name = f"r_{p.stem}_{i + 1}"
                    lines[i] = line.replace(head, name, 1)
                    rules.append((name, f"{p.stem}.rego:{i + 1}", lines[i + 1].strip()[:60]))
        eng.add_policy(p.name, "\n".join(lines))

    def ms(ref: str) -> float:
        """The evaluation alone (set_input excluded), the best of `repeat` runs of each input."""
        total = 0.0
        for b in batches:
            best = 1e9
            for _ in range(a.repeat):
                eng.set_input(b)
                t = time.thread_time()
                eng.eval_rule(ref)
                best = min(best, time.thread_time() - t)
            total += best
        return total / len(inputs) * 1e3

    base = 0.0
    timed = [(ms(f"data.main.{name}") - base, where, first) for name, where, first in rules]
    for cost, where, first in sorted(timed, reverse=True):
        print(f"{where:22} {cost:6.3f} ms  {first}")
    print(f"sum {sum(t[0] for t in timed):.3f}  input {base:.3f}")
    for name in SHARED:
        try:
            print(f"{name:22} {ms(f'data.main.{name}') - base:6.3f} ms (shared)")
        except RuntimeError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
