"""Instructions (valgrind's Ir, thousands per bundle) that regorus spends on a rule of the
policies, as the gate runs it (4 bundles per combined input), above setting the input: a count
that does not move with the load of a shared machine, unlike CPU time, so small changes can be
compared. Needs valgrind. Slow (valgrind runs the interpreter ~50x slower): a few inputs only.

    .venv/bin/python bench/bench_policy_ir.py [--policies DIR] [--inputs 4] [RULE ...]

RULE is a rule of package main (default: deny warn). Each rule costs two runs under valgrind:
with and without the evaluation. The child runs with RUST_LIB_BACKTRACE=0, as the gate does
(renderer/gates/policy.py): with RUST_BACKTRACE=1 and no RUST_LIB_BACKTRACE, regorus captures a
backtrace for every error it creates and discards, which inflates some rules' counts.
"""

from __future__ import annotations

import argparse
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

_CHILD = """
import pickle, sys, regorus
from pathlib import Path
batches = pickle.load(open(sys.argv[1], "rb"))
eng = regorus.Engine()
for p in sorted(Path(sys.argv[2]).glob("*.rego")):
    if not p.name.endswith("_test.rego"):
        eng.add_policy(p.name, p.read_text(encoding="utf-8"))
for b in batches:
    eng.set_input(b)
    if sys.argv[3] != "-":
        eng.eval_rule("data.main." + sys.argv[3])
"""


def instructions(child: Path, batches: Path, policies: Path, rule: str) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(child),
         str(batches), str(policies), rule],
        capture_output=True, text=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin", "RUST_LIB_BACKTRACE": "0"}, check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("rules", nargs="*", default=["deny", "warn"])
    ap.add_argument("--policies", type=Path, default=REPO / "policies")
    ap.add_argument("--inputs", type=int, default=4, help="combined inputs of 4 bundles each")
    a = ap.parse_args()
    from bench_policies import batches_of, generated

    inputs = generated(4 * a.inputs)
    batches = batches_of(inputs, 4)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "batches.pkl").write_bytes(pickle.dumps(batches))
        (tmp / "child.py").write_text(_CHILD, encoding="utf-8")
        base = instructions(tmp / "child.py", tmp / "batches.pkl", a.policies, "-")
        for rule in a.rules:
            spent = instructions(tmp / "child.py", tmp / "batches.pkl", a.policies, rule) - base
            print(f"{rule:28} {spent / len(inputs) / 1000:8.0f} kIr per bundle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
