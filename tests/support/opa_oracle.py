"""The real OPA engine (PyPI ``opa-golib-python-bindings``, OPA's Go code as a shared library) as
the reference the policy gate is checked against: what ``conftest test`` / ``conftest verify``
would say in CI.

OPA runs in a child process of its own (``python tests/support/opa_oracle.py POLICIES``): the Go runtime
hangs processes forked after it is loaded, and the test workers fork (the pipeline's process
pools). The child reads one JSON request a line on stdin and answers one JSON line:

    {"op": "eval", "input": ...}  ->  {"deny": [...], "warn": [...]}   (data.main.deny / .warn)
    {"op": "tests"}               ->  {"tests": [["<file>: <test>", true|false], ...]}
    anything failing              ->  {"error": "..."}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class OracleError(RuntimeError):
    pass


class OpaOracle:
    """A client of the OPA child process for one policies folder."""

    def __init__(self, policies_dir: Path):
        self.policies_dir = Path(policies_dir)
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.policies_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")

    def _ask(self, request: dict) -> dict:
        self._proc.stdin.write(json.dumps(request, ensure_ascii=False, default=str) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise OracleError(f"the OPA process ended: {self._proc.stderr.read().strip()[-2000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise OracleError(answer["error"])
        return answer

    def evaluate(self, value) -> tuple[list[str], list[str]]:
        """OPA's sorted ``deny`` and ``warn`` messages on one input (conftest's shapes)."""
        answer = self._ask({"op": "eval", "input": value})
        return answer["deny"], answer["warn"]

    def unit_tests(self) -> list[tuple[str, bool]]:
        """Every ``test_`` rule of the ``*_test.rego`` files under OPA, as ``conftest verify`` runs them."""
        return [(label, ok) for label, ok in self._ask({"op": "tests"})["tests"]]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()
        self._proc.stderr.close()


# ---------------------------------------------------------------- the child process


def _serve(policies_dir: Path) -> None:
    # The protocol gets its own copy of stdout; fd 1 goes to stderr, so nothing the Go library
    # prints can break a line of the protocol.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.path.insert(0, str(HERE.parents[1]))  # the checkout, for renderer
    from opa_bindings import OpaEngine, OpaUndefinedError  # only here: see the module's docstring

    from renderer.gates.policy import policy_files, unit_tests

    gate = OpaEngine()
    for path in policy_files(policies_dir):
        gate.add_policy(path.name, path.read_text(encoding="utf-8"))
    suite = None

    def document(engine, path, value=None):
        try:
            return engine.eval_document(path, value)
        except OpaUndefinedError:
            return None

    for line in sys.stdin:
        try:
            request = json.loads(line)
            if request["op"] == "eval":
                value = request["input"]
                answer = {"deny": sorted(document(gate, "main.deny", value) or []),
                          "warn": sorted(document(gate, "main.warn", value) or [])}
            elif request["op"] == "tests":
                if suite is None:
                    suite = OpaEngine()
                    for path in sorted(policies_dir.glob("*.rego")):
                        suite.add_policy(path.name, path.read_text(encoding="utf-8"))
                answer = {"tests": [[label, document(suite, ref.removeprefix("data.")) is True]
                                    for label, ref in unit_tests(policies_dir)]}
            else:
                answer = {"error": f"unknown op {request['op']!r}"}
        except Exception as exc:  # every failure is an answer: the client raises it in the test
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
