"""The policy gate: the Rego policies of ``policies/`` run in process on every rendered bundle.

Where it sits: cli -> pipeline -> load -> plan -> verify -> render -> **validate (policy)** ->
write -> gitops. ``validate`` hands each rendered bundle to ``PolicyEngine.check_bundle``; the
violations it returns (``bundle/file: Kind/name: rule: message``) reject the run.

The same policy text runs under ``conftest test`` in CI, so the engine feeds it exactly what
conftest does with ``--combine``: one array of ``{"path": ..., "contents": ...}`` per bundle, the
bundle's objects plus its bundle.json. One query per bundle evaluates every per-object rule on
every object and every cross-object rule (policies/lib.rego explains how). Modules are compiled
once per process; a bundle costs setting the input and one run of the compiled query.

``run_policy_unit_tests`` evaluates the ``test_`` rules of ``policies/*_test.rego`` the way
``conftest verify`` / ``opa test`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import regopy

from renderer.core.errors import RendererBroken

PACKAGE = "main"
QUERY = "deny := [m | some m in data.main.deny]; warn := [m | some m in data.main.warn]"
_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.M)
_RULE_START = re.compile(r"^[A-Za-z_]", re.M)


class PolicyError(RendererBroken):
    """A policy under policies/ could not be loaded or evaluated."""

    hint = "this is a bug in policies/, not in your input; run the policy unit tests; nothing was written"


def policy_files(policies_dir: Path) -> list[Path]:
    """The policies of the gate: every ``*.rego`` except the ``*_test.rego`` unit tests."""
    return sorted(p for p in policies_dir.glob("*.rego") if not p.name.endswith("_test.rego"))


@contextlib.contextmanager
def _quiet():
    """rego-cpp prints compile errors to the process's stdout; they are reported as a
    PolicyError instead, so its own print goes to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _add_modules(interp: regopy.Interpreter, files: Iterable[Path]) -> None:
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: cannot be read: {exc.strerror}") from None
        if _uses_with_input(text):
            raise PolicyError(f"{path}: uses `with input`, which crashes rego-cpp: call a function of the object instead")
        try:
            with _quiet():
                interp.add_module(path.name, text)
        except regopy.RegoError as exc:
            raise PolicyError(f"{path}: does not compile: {_first_error(str(exc))}") from None


def _first_error(text: str) -> str:
    """rego-cpp's error as one line: its message and where it points."""
    messages = re.findall(r"\(errormsg \d+:([^)]*)\)", text)
    if messages:
        return "; ".join(dict.fromkeys(messages))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[:3]) or "unknown error"


def _to_input(value) -> regopy.Input:
    """The value as a regopy Input. A JSON round trip gives plain JSON types (YAML dates become
    strings) and fresh objects, so the caller's objects are never touched. rego-cpp keeps strings
    in their JSON-escaped form, which regopy's Input does not produce: values holding a quote, a
    backslash or a control character get escaped here, otherwise rego-cpp would compare them wrong
    and print invalid JSON."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    plain = json.loads(text)
    if "\\" in text:
        plain = _escaped(plain)
    return regopy.Input(plain)


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _escaped(value):
    """The value with every string that needs it in JSON-escaped form (only those: most do not)."""
    kind = type(value)
    if kind is str:
        return json.dumps(value, ensure_ascii=False)[1:-1] if _NEEDS_ESCAPE.search(value) else value
    if kind is dict:
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if kind is list:
        return [_escaped(v) for v in value]
    return value


class PolicyEngine:
    """Loads the policies once per process; checks one bundle per call. Not thread-safe: use one
    engine per thread or process. Pickling sends the policies folder only: the copy compiles the
    policies again in the process that unpickles it (a worker of a process pool)."""

    def __init__(self, policies_dir: Path):
        self.policies_dir = Path(policies_dir)
        files = policy_files(self.policies_dir)
        if not files:
            raise PolicyError(f"{self.policies_dir}: no policies (*.rego) found")
        builder = regopy.Interpreter()
        _add_modules(builder, files)
        try:
            with _quiet():
                self._query = builder.build(QUERY)
        except regopy.RegoError as exc:
            raise PolicyError(f"{self.policies_dir}: the policies do not compile: {_first_error(str(exc))}") from None
        if not self._query.ok():
            raise PolicyError(f"{self.policies_dir}: the policies do not compile")
        self._builder = builder  # the bundle refers to the builder's state: keep it alive
        self._interp = regopy.Interpreter()

    def __reduce__(self):
        return (PolicyEngine, (self.policies_dir,))

    def _evaluate(self, value) -> tuple[list[str], list[str]]:
        self._interp.set_input(_to_input(value))
        out = self._interp.query_bundle(self._query)
        if not out.ok():
            raise PolicyError(f"{self.policies_dir}: evaluating the policies failed: {_first_error(str(out))}")
        if not out.results:
            return [], []
        bindings = out.results[0].bindings
        deny = [m for m in bindings.get("deny") or [] if isinstance(m, str)]
        warn = [m for m in bindings.get("warn") or [] if isinstance(m, str)]
        return deny, warn

    def check_bundle(self, bundle_path: str, objects: Sequence[tuple[str, Mapping]],
                     bundle_json: Mapping | None) -> tuple[list[str], list[str]]:
        """Every deny and warn of the policies on one bundle, as sorted lines
        ``<bundle_path>/<file>: <Kind>/<name>: <rule>: <message>``. ``objects`` are the bundle's
        ``(file name, object)`` pairs; ``bundle_json`` its bundle.json, if known."""
        entries = [{"path": f"{bundle_path}/{name}", "contents": obj} for name, obj in objects]
        if bundle_json is not None:
            entries.append({"path": f"{bundle_path}/bundle.json", "contents": bundle_json})
        deny, warn = self._evaluate(entries)
        return _lines(deny, bundle_path, combined=True), _lines(warn, bundle_path, combined=True)

    def check_object(self, path: str, obj: Mapping) -> tuple[list[str], list[str]]:
        """The per-object rules on one object, as ``conftest test`` without ``--combine`` runs
        them; lines ``<path>: <Kind>/<name>: <rule>: <message>``."""
        deny, warn = self._evaluate(obj)
        return _lines(deny, path, combined=False), _lines(warn, path, combined=False)


def _lines(messages: Iterable[str], where: str, combined: bool) -> list[str]:
    """Policy messages ``<rule>: [<path>: ]<Kind>/<name>: <text>`` as report lines
    ``<path>: <Kind>/<name>: <rule>: <text>``."""
    out = set()
    for msg in messages:
        rule, _, rest = msg.partition(": ")
        path = where
        if combined:
            if rest.startswith(f"{where}/") or rest.startswith(f"{where}: "):
                path, _, rest = rest.partition(": ")
            else:  # a policy that does not follow the convention: report it on the bundle
                out.add(f"{where}: -: {rule}: {rest}" if rest else f"{where}: -: policy: {msg}")
                continue
        obj, _, text = rest.partition(": ")
        if not text or "/" not in obj:
            obj, text = "-", rest
        out.add(f"{path}: {obj}: {rule}: {text}")
    return sorted(out)


_WITH_INPUT = re.compile(r"\bwith\s+input\b")
_COMMENT = re.compile(r"#[^\n]*")


def _rule_blocks(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each top-level rule of a module: from a line that starts with a name
    to the next such line."""
    starts = [m.start() for m in _RULE_START.finditer(text)] + [len(text)]
    blocks = []
    for start, end in zip(starts, starts[1:]):
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[start:]).group(0)
        if name not in ("package", "import"):
            blocks.append((name, start, end))
    return blocks


def _uses_with_input(source: str) -> bool:
    return bool(_WITH_INPUT.search(_COMMENT.sub("", source)))


def _without_with_input(text: str) -> str:
    """The module without its rules that use `with input` (rego-cpp crashes on compiling them)."""
    for _, start, end in reversed(_rule_blocks(text)):
        if _uses_with_input(text[start:end]):
            text = text[:start] + text[end:]
    return text


def run_policy_unit_tests(policies_dir: Path) -> list[tuple[str, bool]]:
    """Evaluates every ``test_`` rule of ``policies_dir/*_test.rego`` with all the policies
    loaded, as ``conftest verify`` does: ``("<file>: <test>", passed)`` for each, in file order.
    A test passes when its rule is true. A test that uses ``with input`` is reported failed
    without being loaded: rego-cpp crashes the process on it (see policies/lib.rego). When the
    modules do not compile, every test is reported failed (conftest verify stops with an error)."""
    policies_dir = Path(policies_dir)
    interp = regopy.Interpreter()
    compiled = True
    labels: list[str] = []
    refs: list[str | None] = []  # None: not run
    for path in sorted(policies_dir.glob("*.rego")):
        text = path.read_text(encoding="utf-8")
        testing = path.name.endswith("_test.rego")
        if testing:
            package = _PACKAGE.search(text)
            pkg = package.group(1) if package else PACKAGE
            seen = set()
            for name, start, end in _rule_blocks(text):
                if not name.startswith("test_") or name in seen:
                    continue
                seen.add(name)
                labels.append(f"{path.name}: {name}")
                refs.append(None if _uses_with_input(text[start:end]) else f"data.{pkg}.{name}")
            text = _without_with_input(text)
        try:
            with _quiet():
                interp.add_module(path.name, text)
        except regopy.RegoError:
            compiled = False
    runnable = [r for r in refs if r is not None]
    verdicts = _run_all(interp, runnable) if compiled else [False] * len(runnable)
    if verdicts is None:  # one query for all failed: one query per test, unless nothing compiles
        verdicts = [_passes(interp, r) for r in runnable] if _compiles(interp) else [False] * len(runnable)
    it = iter(verdicts)
    return [(label, False if ref is None else next(it)) for label, ref in zip(labels, refs)]


def _run_all(interp: regopy.Interpreter, refs: list[str]) -> list[bool] | None:
    """Every test in one query (one compilation): its value, or [] when it is undefined."""
    if not refs:
        return []
    query = "x := [" + ", ".join(f"[v | v := {r}]" for r in refs) + "]"
    try:
        out = interp.query(query)
    except regopy.RegoError:
        return None
    if not out.ok() or not out.results:
        return None
    values = out.results[0].bindings.get("x")
    if not isinstance(values, list) or len(values) != len(refs):
        return None
    return [v == [True] for v in values]


def _compiles(interp: regopy.Interpreter) -> bool:
    try:
        return interp.query("x := 1").ok()
    except regopy.RegoError:
        return False


def _passes(interp: regopy.Interpreter, ref: str) -> bool:
    try:
        out = interp.query(f"x := {ref}")
    except regopy.RegoError:
        return False
    if not out.ok() or not out.results:
        return False
    return out.results[0].bindings.get("x") is True
