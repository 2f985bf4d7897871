"""Issue 9, class 11: a property-based test (hypothesis) over the example environments repo.

Each example mutates one of its YAML files (drops a key, changes a value's type, puts in a huge
number, an odd string or a deeply nested value) and runs `render build ... --offline` in-process.
Whatever the input: never a traceback, never exit 70, exit 0 or 1 only, and on exit 1 nothing
written to --out. Bounded and reproducible: fixed ``max_examples``, a deadline per example,
derandomized (the same examples on every run and in CI), no example database.
"""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLE, tree_digest
from renderer import cli

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
FILES = (
    f"dev/tenants/{T1}/plugins/quiz-generator.yaml",
    f"dev/tenants/{T1}/tenant.yaml",
    "dev/tenants/riverside-academy/plugins/grade-sync.yaml",
    "catalog/quiz-generator/1.3.0/plugin.yaml",
    "catalog/grade-sync/0.9.0/plugin.yaml",
    "dev/platform.yaml",
    "publishers/acme.yaml",
)

ODD_STRINGS = st.sampled_from([
    "", " ", "FOO\n", "a\x00b", "../../etc/passwd", "/abs", "{tenant}", "*", "default-deny", "pg_catalog", "public",
    "ünïcödé", "a" * 5000, "1e999999999", "-1", "0x10", "NaN", ".inf", "null", "true", "sha256:" + "0" * 64,
    "published", "tenant.other.", "PGPASSWORD", "kafka", "dns", "1.3.0\n", "-", "--", "a..b", "A" * 64,
])
HUGE_NUMBERS = st.sampled_from([10**18, 2**63, 2**64 + 1, -(2**63), 10**60, 10**4000, 1e308, float("inf"), 0, -1])
LEAVES = st.one_of(ODD_STRINGS, HUGE_NUMBERS, st.booleans(), st.none(), st.integers(-(10**6), 10**6),
                   st.text(max_size=40), st.just([]), st.just({}))


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def _paths(node, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _nest(value, depth: int, as_list: bool):
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


MUTATION = st.one_of(
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("set"), LEAVES),
    st.tuples(st.just("nest"), st.tuples(st.integers(20, 150), st.booleans())),
    st.tuples(st.just("add"), st.tuples(ODD_STRINGS, LEAVES)),
)


def _mutate(doc, path: tuple, mutation) -> object:
    kind, arg = mutation
    doc = copy.deepcopy(doc)
    if not path:
        return arg if kind == "set" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "drop":
        del parent[last]
    elif kind == "set":
        parent[last] = arg
    elif kind == "nest":
        parent[last] = _nest(parent[last], *arg)
    elif kind == "add" and isinstance(parent[last], dict):
        parent[last][arg[0]] = arg[1]
    else:
        parent[last] = {arg[0]: arg[1]} if kind == "add" else parent[last]
    return doc


def _run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, err.getvalue()


@settings(max_examples=25, deadline=timedelta(seconds=60), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(which=st.integers(0, len(FILES) - 1), where=st.integers(0, 10**6), mutation=MUTATION)
def test_no_mutation_of_the_example_environments_ends_in_a_traceback_or_a_partial_write(which, where, mutation):
    with tempfile.TemporaryDirectory() as tmp:
        envs = Path(tmp) / "environments"
        shutil.copytree(EXAMPLE, envs)
        target = envs / FILES[which]
        doc = yaml.safe_load(target.read_text())
        paths = _paths(doc)
        mutated = _mutate(doc, paths[where % len(paths)], mutation)
        try:
            text = yaml.dump(mutated, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)
        except (yaml.YAMLError, RecursionError, ValueError):
            return  # not representable as YAML: nothing to feed the renderer
        target.write_text(text, encoding="utf-8")
        out = Path(tmp) / "out"
        code, err = _run("build", str(envs), "--out", str(out), "--offline", "--env", "dev", "--jobs", "1")
        assert "Traceback" not in err, err
        assert code in (0, 1), f"exit {code}: {err}"
        if code == 1:
            assert tree_digest(out) == "absent", "a rejected run wrote to --out"
            assert err.strip(), "a rejection says why"
