"""The policy gate: the Rego policies of ``policies/`` run in process on every rendered bundle.

Where it sits: cli -> pipeline -> load -> plan -> verify -> render -> **validate (policy)** ->
write -> gitops. ``validate`` hands each rendered bundle to ``PolicyEngine.check_bundle``; the
violations it returns (``bundle/file: Kind/name: rule: message``) reject the run.

The engine is Microsoft's regorus (PyPI ``gordon-to-regorus``, pinned exactly), in its
interpreter mode. The same policy text runs under ``conftest test`` (the real OPA engine) in CI,
so the engine feeds it exactly what conftest does with ``--combine``: one array of
``{"path": ..., "contents": ...}`` per bundle, the bundle's objects plus its bundle.json. One
evaluation of ``data.main.deny`` and one of ``data.main.warn`` cover every per-object rule on
every object and every cross-object rule (policies/lib.rego explains how). Policies are parsed
once per process; a bundle costs one JSON text of its input and the two evaluations.
tests/test_policy_engines.py checks every verdict of the policy table against OPA itself.

``run_policy_unit_tests`` evaluates the ``test_`` rules of ``policies/*_test.rego`` the way
``conftest verify`` / ``opa test`` would.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import regorus

from renderer.core.errors import RendererBroken

# regorus reports errors with anyhow, which captures a stack backtrace for every error it creates
# when RUST_BACKTRACE is set (a usual setting on a developer's machine and here), including the
# errors it creates and discards while it evaluates: on the bench that was ~9% of deny's
# instructions. The gate never shows a backtrace (_first_error cuts it off). RUST_LIB_BACKTRACE
# governs these library backtraces only (a panic still prints its own); a value already set wins.
# Rust reads it once, at the first error, so it is set here, before any engine exists.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

PACKAGE = "main"
DENY = f"data.{PACKAGE}.deny"
WARN = f"data.{PACKAGE}.warn"
_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.M)
_RULE_START = re.compile(r"^[A-Za-z_]", re.M)


class PolicyError(RendererBroken):
    """A policy under policies/ could not be loaded or evaluated."""

    hint = "this is a bug in policies/, not in your input; run the policy unit tests; nothing was written"


def policy_files(policies_dir: Path) -> list[Path]:
    """The policies of the gate: every ``*.rego`` except the ``*_test.rego`` unit tests."""
    return sorted(p for p in policies_dir.glob("*.rego") if not p.name.endswith("_test.rego"))


def _first_error(exc: BaseException) -> str:
    """regorus's error as one line, ``<file>:<line>:<col>: <message>``, without its backtrace."""
    text = str(exc).split("Stack backtrace:")[0]
    where = re.search(r"-->\s*(\S+)", text)
    message = re.findall(r"^error:\s*(.+)$", text, re.M)
    if message:
        return f"{where.group(1)}: {message[-1].strip()}" if where else message[-1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[:3]) or type(exc).__name__


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def _to_json(value) -> str:
    """The input as JSON text: plain JSON types (YAML dates become strings). A float that JSON
    cannot hold (YAML's .nan, .inf) becomes its string, as a YAML-to-JSON converter would."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, default=str, separators=(",", ":"))


def _set_plain(engine, value) -> bool:
    try:
        engine.set_input(value)
        return True
    except (RuntimeError, TypeError, OverflowError, ValueError):
        return False


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _messages(value) -> list[str]:
    """A deny/warn set as sorted strings (a policy that adds a non-string is not followed)."""
    return sorted(m for m in value or () if isinstance(m, str))


class PolicyEngine:
    """Loads the policies once per process; checks one bundle per call. Not thread-safe: use one
    engine per thread or process. Pickling sends the policies folder only: the copy loads the
    policies again in the process that unpickles it (a worker of a process pool)."""

    def __init__(self, policies_dir: Path):
        self.policies_dir = Path(policies_dir)
        files = policy_files(self.policies_dir)
        if not files:
            raise PolicyError(f"{self.policies_dir}: no policies (*.rego) found")
        engine = regorus.Engine()
        for path in files:
            text = _read(path)
            try:
                engine.add_policy(path.name, text)
            except RuntimeError as exc:
                raise PolicyError(f"{path}: does not compile: {_first_error(exc)}") from None
        # regorus resolves a name when it first evaluates it: evaluating every rule once, on an
        # empty bundle, makes most policies that parse but do not compile fail here. One reached
        # only inside an iteration fails on the first bundle that reaches it, as a PolicyError too.
        # (The tests compile every policy with OPA's own compiler, which rejects both.)
        try:
            engine.set_input_json("[]")
            engine.eval_query("x := data")
        except RuntimeError as exc:
            raise PolicyError(f"{self.policies_dir}: the policies do not compile: {_first_error(exc)}") from None
        self._engine = engine

    def __reduce__(self):
        return (PolicyEngine, (self.policies_dir,))

    def evaluate(self, value, plain: bool = False) -> tuple[list[str], list[str]]:
        """The policies' own ``deny`` and ``warn`` messages on one input (conftest's shape: the
        combined array, or one object), sorted. ``plain``: the caller knows ``value`` is plain
        JSON data with string keys (render's own objects): it is handed over as it is, without a
        JSON text in between; a value regorus cannot take so (a number beyond 64 bits) still
        goes as JSON text, as everything else does."""
        engine = self._engine
        try:
            if not plain or not _set_plain(engine, value):
                engine.set_input_json(_to_json(value))
            deny = engine.eval_rule(DENY)
            warn = engine.eval_rule(WARN)
        except RuntimeError as exc:
            raise PolicyError(f"{self.policies_dir}: evaluating the policies failed: {_first_error(exc)}") from None
        return _messages(deny), _messages(warn)

    def check_bundle(self, bundle_path: str, objects: Sequence[tuple[str, Mapping]],
                     bundle_json: Mapping | None, plain: bool = False) -> tuple[list[str], list[str]]:
        """Every deny and warn of the policies on one bundle, as sorted lines
        ``<bundle_path>/<file>: <Kind>/<name>: <rule>: <message>``. ``objects`` are the bundle's
        ``(file name, object)`` pairs; ``bundle_json`` its bundle.json, if known. ``plain``: the
        objects were rendered in this process (see ``evaluate``), not read from files."""
        deny, warn = self.evaluate(bundle_input(bundle_path, objects, bundle_json), plain=plain)
        return _lines(deny, bundle_path, combined=True), _lines(warn, bundle_path, combined=True)

    def all_clean(self, bundles: Sequence[tuple[str, Sequence[tuple[str, Mapping]], Mapping | None]],
                  plain: bool = False) -> bool:
        """True when the policies find nothing, no deny and no warn, in any of ``bundles``
        (``(bundle_path, objects, bundle_json)``, as ``check_bundle`` takes them), evaluated
        together as one combined input: one evaluation instead of one per bundle, which saves
        the evaluation's fixed cost (about a fifth of a bundle's). Sound because every rule reads
        one object or one bundle's entries (grouped by folder), never two bundles: a bundle's
        messages are the same alone and among others (tests check the whole policy table so).
        False says only that something was found: ``check_bundle`` each bundle for its messages."""
        value = [entry for path, objects, info in bundles for entry in bundle_input(path, objects, info)]
        deny, warn = self.evaluate(value, plain=plain)
        return not deny and not warn

    def check_object(self, path: str, obj: Mapping) -> tuple[list[str], list[str]]:
        """The per-object rules on one object, as ``conftest test`` without ``--combine`` runs
        them; lines ``<path>: <Kind>/<name>: <rule>: <text>``."""
        deny, warn = self.evaluate(obj)
        return _lines(deny, path, combined=False), _lines(warn, path, combined=False)


def bundle_input(bundle_path: str, objects: Sequence[tuple[str, Mapping]], bundle_json: Mapping | None) -> list[dict]:
    """One bundle as ``conftest test --combine`` reads it: ``[{"path", "contents"}, ...]``."""
    entries = [{"path": f"{bundle_path}/{name}", "contents": obj} for name, obj in objects]
    if bundle_json is not None:
        entries.append({"path": f"{bundle_path}/bundle.json", "contents": bundle_json})
    return entries


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


def _rule_names(text: str) -> list[str]:
    """The top-level rule names of a module, in order: a line that starts with a name."""
    names = []
    for m in _RULE_START.finditer(text):
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[m.start():]).group(0)
        if name not in ("package", "import"):
            names.append(name)
    return names


def unit_tests(policies_dir: Path) -> list[tuple[str, str]]:
    """Every ``test_`` rule of ``policies_dir/*_test.rego``: ``("<file>: <test>", "data.<pkg>.<test>")``,
    in file order (a rule with several bodies counts once)."""
    out = []
    for path in sorted(Path(policies_dir).glob("*_test.rego")):
        text = path.read_text(encoding="utf-8")
        package = _PACKAGE.search(text)
        pkg = package.group(1) if package else PACKAGE
        for name in dict.fromkeys(n for n in _rule_names(text) if n.startswith("test_")):
            out.append((f"{path.name}: {name}", f"data.{pkg}.{name}"))
    return out


def run_policy_unit_tests(policies_dir: Path) -> list[tuple[str, bool]]:
    """Evaluates every ``test_`` rule of ``policies_dir/*_test.rego`` with all the policies
    loaded, as ``conftest verify`` does: ``("<file>: <test>", passed)`` for each, in file order.
    A test passes when its rule is true (``with input as`` included). When a module does not
    parse, every test is reported failed (conftest verify stops with an error)."""
    policies_dir = Path(policies_dir)
    tests = unit_tests(policies_dir)
    engine = regorus.Engine()
    try:
        for path in sorted(policies_dir.glob("*.rego")):
            engine.add_policy(path.name, path.read_text(encoding="utf-8"))
    except RuntimeError:
        return [(label, False) for label, _ in tests]
    return [(label, _passes(engine, ref)) for label, ref in tests]


def _passes(engine: regorus.Engine, ref: str) -> bool:
    try:
        return engine.eval_rule(ref) is True
    except RuntimeError:
        return False
