"""The Rego unit tests (policies/*_test.rego) under rego-cpp (regopy, the `bench` extra), as
tests/gates run them under regorus and OPA: every test_ rule must be true.

    .venv/bin/python bench/regocpp_unit_tests.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import regopy  # noqa: E402

from renderer.gates.policy import unit_tests  # noqa: E402


def main() -> int:
    policies = REPO / "policies"
    interp = regopy.Interpreter()
    for path in sorted(policies.glob("*.rego")):
        interp.add_module(path.name, path.read_text(encoding="utf-8"))
    failed = []
    tests = unit_tests(policies)
    for label, ref in tests:
        out = interp.query(f"x := {ref}")
        if '"x":true' not in str(out).replace(" ", ""):
            failed.append((label, str(out)[:200]))
    for label, why in failed:
        print("FAILED", label, why)
    print(f"{len(tests) - len(failed)} of {len(tests)} unit tests pass under rego-cpp")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
