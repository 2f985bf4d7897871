"""Issue 9, classes 4 (bounded numbers), 6 (platform maxima), 7 (exact matching, no shadowing) and
8 (no way out of the environments repo): one table each, every case through the real CLI
(`render build --offline`), exit 1 with `file:line: field`, no traceback, nothing written."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from tests.support.edits import edit
from renderer.core import quantity
from renderer.pipeline.reserved import PLATFORM_ENV_NAMES
from renderer.pipeline.render import bundle_context

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
T2 = "riverside-academy"
INSTALL = f"dev/tenants/{T1}/plugins/quiz-generator.yaml"
TENANT = f"dev/tenants/{T1}/tenant.yaml"
TENANT2 = f"dev/tenants/{T2}/tenant.yaml"
QUIZ = "catalog/quiz-generator/1.3.0/plugin.yaml"
CEILINGS = 'ceilings: {cpu: "4", memory: 8Gi, storage: 20Gi, llmTokensPerDay: 1000000, requestsPerSecond: 100}'


def ceiling(key: str, value: str):
    return edit(TENANT, CEILINGS, CEILINGS.replace(re.search(rf"{key}: [^,}}]+", CEILINGS).group(0), f"{key}: {value}"))


def _rejected(render, envs: Path, tmp_path: Path, expected: str, limit: float = 60.0) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    result = render("build", envs, "--out", out, "--offline")
    assert time.monotonic() - started < limit
    assert result.code == 1, result.err
    assert re.search(expected, result.err), f"expected /{expected}/ in:\n{result.err}"
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert tree_digest(out) == "absent"


# ------------------------------------------------------------------------------------ class 4: bounded numbers

BOUNDS = [
    pytest.param(ceiling("cpu", '"1e999999999"'), rf"{TENANT}:7: spec.ceilings.cpu: '1e999999999': the exponent is out of range",
                 id="exponent-that-would-hang"),
    pytest.param(ceiling("cpu", '"1e5000"'), rf"{TENANT}:7: spec.ceilings.cpu: '1e5000': the exponent is out of range",
                 id="exponent-5000"),
    pytest.param(ceiling("cpu", "9" * 5000), rf"{TENANT}:7: spec.ceilings.cpu: a number of 5000 characters is too long",
                 id="integer-of-5000-digits"),
    pytest.param(ceiling("cpu", '"' + "9" * 40 + '"'), rf"{TENANT}:7: spec.ceilings.cpu: '9{{40}}' has more than 30 digits",
                 id="quantity-text-of-40-digits"),
    pytest.param(ceiling("memory", '"1e-999"'), rf"{TENANT}:7: spec.ceilings.memory: '1e-999': the exponent is out of range",
                 id="negative-exponent"),
    pytest.param(ceiling("storage", '"9Ei9"'), rf"{TENANT}:7: spec.ceilings.storage: '9Ei9' is not a Kubernetes quantity",
                 id="suffix-and-exponent"),
    pytest.param(ceiling("memory", '"99999999999Ei"'), rf"{TENANT}:7: spec.ceilings.memory: '99999999999Ei' is out of range",
                 id="quantity-above-int64"),
    pytest.param(ceiling("cpu", "99999999999999999999"), rf"{TENANT}:7: spec.ceilings.cpu: the quantity is out of range",
                 id="integer-quantity-above-int64"),
    pytest.param(ceiling("llmTokensPerDay", "1" + "0" * 60), rf"{TENANT}:7: spec.ceilings.llmTokensPerDay: Input should be "
                 r"less than or equal to 9007199254740992", id="token-count-of-61-digits"),
    pytest.param(ceiling("cpu", "1e999"), rf"{TENANT}:7: spec.ceilings.cpu: ", id="unquoted-float-infinity"),
    pytest.param(edit(TENANT2, "tier: education", "tier: " + "[" * 5000 + "]" * 5000),
                 rf"{TENANT2}:\d+: invalid YAML: exceeded maximum nesting depth", id="nesting-5000-deep"),
    pytest.param(edit(QUIZ, "storage: 1Gi", "storage: " + "1" * 70 + "Gi"), rf"{QUIZ}:22: spec.resources.storage: a quantity of "
                 r"72 characters is too long", id="long-quantity-text-in-a-manifest"),
]


@pytest.mark.parametrize("mutate, expected", BOUNDS)
def test_a_huge_number_is_refused_quickly_at_file_and_line(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    _rejected(render, envs, tmp_path, expected, limit=30)


def test_nesting_past_pythons_recursion_limit_is_an_input_error(envs, tmp_path, render):
    """LibYAML accepts up to 1000 levels; Python's recursion ends sooner: a clear problem, not exit 70."""
    import sys

    edit(TENANT2, "tier: education", "tier: " + "[" * 900 + "]" * 900)(envs)
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(800)  # below the nesting, the same on every machine
    try:
        _rejected(render, envs, tmp_path, rf"{TENANT2}: nested too deeply")
    finally:
        sys.setrecursionlimit(saved)


@pytest.mark.parametrize("text", ["1e999999999", "9" * 5000, "1" + "0" * 31, "0." + "0" * 40 + "1", "1e-31", "8Ei" * 30])
def test_quantity_parse_refuses_hostile_text_before_any_arithmetic(text):
    started = time.monotonic()
    with pytest.raises(ValueError):
        quantity.parse(text)
    assert time.monotonic() - started < 0.1


# ------------------------------------------------------------------------------------ class 6: platform maxima

MAXIMA = [
    pytest.param(ceiling("cpu", '"100000"'), rf"{TENANT}:7: spec.ceilings.cpu: 100000 is above the platform's maximum 16 "
                 r"\(dev/platform.yaml spec.maxima.cpu\)", id="tenant-claims-100000-cpus"),
    pytest.param(ceiling("llmTokensPerDay", "1000000000000"), rf"{TENANT}:7: spec.ceilings.llmTokensPerDay: 1000000000000 is "
                 r"above the platform's maximum 20000000", id="tenant-claims-10-to-the-12-tokens"),
    pytest.param(ceiling("memory", "1Pi"), rf"{TENANT}:7: spec.ceilings.memory: 1Pi is above the platform's maximum 64Gi",
                 id="tenant-claims-a-pebibyte-of-memory"),
    pytest.param(ceiling("storage", "600Gi"), rf"{TENANT}:7: spec.ceilings.storage: 600Gi is above the platform's maximum 500Gi",
                 id="tenant-claims-too-much-storage"),
    pytest.param(ceiling("requestsPerSecond", "1000000"), rf"{TENANT}:7: spec.ceilings.requestsPerSecond: 1000000 is above",
                 id="tenant-claims-a-million-requests-per-second"),
    pytest.param(edit(INSTALL, "replicas: {max: 2}", "replicas: {max: 1000}"), rf"{INSTALL}:9: spec.overrides.replicas.max: "
                 r"replicas.max 1000 is above the platform's maximum 20", id="override-replicas-to-1000"),
    pytest.param(edit(QUIZ, "replicas: {min: 1, max: 4}", "replicas: {min: 1, max: 30}"), rf"{QUIZ}:26: spec.replicas.max: "
                 r"replicas.max 30 is above the platform's maximum 20", id="manifest-replicas-above-the-maximum"),
    pytest.param(edit("dev/platform.yaml", "    replicas: 20", "    replicas: 0"), r"dev/platform.yaml:\d+: spec.maxima.replicas: "
                 r"Input should be greater than or equal to 1", id="platform-maximum-out-of-range"),
]


@pytest.mark.parametrize("mutate, expected", MAXIMA)
def test_a_tenant_cannot_claim_more_than_the_platform_allows(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    _rejected(render, envs, tmp_path, expected)


def test_the_issues_example_tenant_that_raises_everything_is_refused_on_every_count(envs, tmp_path, render):
    edit(TENANT, CEILINGS, 'ceilings: {cpu: "100000", memory: 8Gi, storage: 20Gi, llmTokensPerDay: 1000000000000, '
                           'requestsPerSecond: 100}')(envs)
    edit(INSTALL, "replicas: {max: 2}", "replicas: {max: 1000}")(envs)
    out = tmp_path / "out"
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1
    assert "spec.ceilings.cpu: 100000 is above" in result.err
    assert "spec.ceilings.llmTokensPerDay: 1000000000000 is above" in result.err
    assert "spec.overrides.replicas.max: replicas.max 1000 is above" in result.err
    assert not out.exists()


# ------------------------------------------------------------------------------------ class 7: exact matching, no shadowing

SHADOWING = [
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", 'env: {"FOO\\n": x}'),
                 rf"{INSTALL}:10: spec.overrides.env.FOO\\n: 'FOO\\n' is not an environment variable name", id="env-name-with-trailing-newline"),
    pytest.param(edit(QUIZ, "    LOG_LEVEL: info", '    "LOG_LEVEL\\n": info'),
                 rf"{QUIZ}:11: spec.env.LOG_LEVEL\\n: 'LOG_LEVEL\\n' is not an environment", id="manifest-env-name-with-newline"),
    pytest.param(edit(QUIZ, "env: OPENAI_API_KEY", 'env: "OPENAI_API_KEY\\n"'),
                 rf"{QUIZ}:16: spec.secrets\[0\].env: 'OPENAI_API_KEY\\n' is not an environment", id="secret-env-with-newline"),
    pytest.param(edit(QUIZ, "name: quiz-generator", 'name: "quiz-generator\\n"'),
                 rf"{QUIZ}:4: metadata.name: 'quiz-generator\\n' is not a DNS label", id="plugin-name-with-newline"),
    pytest.param(edit(QUIZ, "vaultKey: signing", 'vaultKey: "signing\\n"'),
                 rf"{QUIZ}:18: spec.secrets\[1\].vaultKey: 'signing\\n' is not a Vault key", id="vault-key-with-newline"),
    pytest.param(edit(QUIZ, "- name: signing-key", '- name: "signing-key\\n"'),
                 rf"{QUIZ}:17: spec.secrets\[1\].name: 'signing-key\\n' is not a secret name", id="secret-name-with-newline"),
    pytest.param(edit(QUIZ, "produces: [quiz.generated]", 'produces: ["quiz.generated\\n"]'),
                 rf"{QUIZ}:29: spec.kafka.produces\[0\]: 'quiz.generated\\n' is not a Kafka topic", id="topic-with-newline"),
    pytest.param(edit(QUIZ, "liveness: /healthz", 'liveness: "/healthz\\n"'),
                 rf"{QUIZ}:33: spec.probes.liveness: '/healthz\\n' is not an HTTP path", id="probe-path-with-newline"),
    pytest.param(edit(QUIZ, "schema: quiz", 'schema: "quiz\\n"'),
                 rf"{QUIZ}:32: spec.database.schema: 'quiz\\n' is not a PostgreSQL schema", id="schema-with-newline"),
    pytest.param(lambda root: _replace_re(root, QUIZ, r"(@sha256:[0-9a-f]{64})", r'\1\\n', quote=True),
                 rf"{QUIZ}:8: spec.image: .*is not a valid image reference", id="image-with-newline"),
    pytest.param(edit("dev/platform.yaml", "refreshInterval: 1h", 'refreshInterval: "1h\\n"'),
                 r"dev/platform.yaml:\d+: spec.secretStore.refreshInterval: String should match pattern", id="refresh-interval-with-newline"),
    pytest.param(edit(INSTALL, "version: 1.3.0", 'version: "1.3.0\\n"'),
                 rf"{INSTALL}:6: spec.version: '1.3.0\\n' is not a semantic version", id="version-with-newline"),
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", "env: {PGPASSWORD: x, PGHOST: db.attacker.example}"),
                 rf"{INSTALL}:10: spec.overrides.env.PGHOST: PGHOST is set by the platform", id="override-pg-connection"),
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", "env: {TENANT_ID: other-tenant}"),
                 rf"{INSTALL}:10: spec.overrides.env.TENANT_ID: TENANT_ID is set by the platform", id="override-tenant-id"),
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", "env: {OTEL_RESOURCE_ATTRIBUTES: tenant.id=other}"),
                 rf"{INSTALL}:10: spec.overrides.env.OTEL_RESOURCE_ATTRIBUTES: OTEL_RESOURCE_ATTRIBUTES is set by the platform",
                 id="override-otel-attributes"),
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", "env: {KAFKA_TOPIC_PREFIX: tenant.other.}"),
                 rf"{INSTALL}:10: spec.overrides.env.KAFKA_TOPIC_PREFIX: KAFKA_TOPIC_PREFIX is set by the platform",
                 id="override-kafka-prefix"),
    pytest.param(edit(QUIZ, "    LOG_LEVEL: info", "    LOG_FORMAT: text"),
                 rf"{QUIZ}:11: spec.env.LOG_FORMAT: LOG_FORMAT is set by the platform", id="manifest-sets-a-platform-variable"),
    pytest.param(edit(QUIZ, "env: OPENAI_API_KEY", "env: PGPASSWORD"),
                 rf"{QUIZ}:16: spec.secrets\[0\].env: PGPASSWORD is set by the platform", id="secret-shadows-the-db-password"),
    pytest.param(edit(INSTALL, "env: {LOG_LEVEL: debug}", "env: {OPENAI_API_KEY: plain}"),
                 rf"{INSTALL}:10: spec.overrides.env.OPENAI_API_KEY: this variable carries a secret", id="override-the-plugins-own-secret"),
]


def _replace_re(root: Path, rel: str, pattern: str, repl: str, quote: bool = False) -> None:
    path = root / rel
    text = path.read_text()
    line = next(ln for ln in text.splitlines() if re.search(pattern, ln))
    key, _, value = line.partition(": ")
    new = re.sub(pattern, repl, value)
    path.write_text(text.replace(line, f'{key}: "{new}"' if quote else f"{key}: {new}"))


@pytest.mark.parametrize("mutate, expected", SHADOWING)
def test_names_match_whole_strings_and_platform_variables_are_never_overridden(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    _rejected(render, envs, tmp_path, expected)


def test_every_variable_the_platform_sets_is_a_reserved_name(envs, tmp_path, render):
    """bundle_context's own variables (plain and from secrets) are exactly what the models refuse."""
    from renderer.core.errors import InputError  # noqa: F401 (the load path below raises it on bad input)
    from renderer.pipeline.load import load
    from renderer.pipeline.plan import plan

    envs_plan = plan(load(envs), "x")
    seen: set[str] = set()
    for env in envs_plan:
        for b in env.bundles:
            ctx = bundle_context(b)
            own = set(b.spec.env) | {s.env for s in b.spec.secrets if s.env}
            names = [e["name"] for e in ctx["env"] + ctx["secret_env"]]
            assert len(names) == len(set(names)), names
            seen |= set(names) - own
    # the examples use SCRAM; the two TLS client-certificate variables appear with kafka.authentication: tls
    assert seen == PLATFORM_ENV_NAMES - {"KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN", "KAFKA_SSL_KEYSTORE_KEY"}


# ------------------------------------------------------------------------------------ class 8: no way out

def symlink(rel: str, target: str):
    """Replace ``rel`` with a symbolic link to ``target`` (absolute, or relative to the link)."""
    def apply(root: Path) -> None:
        path = root / rel
        if path.is_dir():
            import shutil
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.replace("{outside}", str(root.parent / "outside")), path)
    return apply


def with_outside(step):
    def apply(root: Path) -> None:
        outside = root.parent / "outside"
        outside.mkdir(exist_ok=True)
        (outside / "secret.sql").write_text("select 1;\n")
        (outside / "plugin.yaml").write_text((root / QUIZ).read_text())
        (outside / "tenant.yaml").write_text((root / TENANT).read_text())
        step(root)
    return apply


ESCAPES = [
    pytest.param(with_outside(symlink("catalog/quiz-generator/1.3.0/migrations/003_evil.sql", "{outside}/secret.sql")),
                 r"catalog/quiz-generator/1.3.0/migrations/003_evil.sql: is a symbolic link", id="migration-symlink-outside"),
    pytest.param(with_outside(symlink("catalog/quiz-generator/1.3.0/migrations/003_same.sql", "001_create_quizzes.sql")),
                 r"catalog/quiz-generator/1.3.0/migrations/003_same.sql: is a symbolic link", id="migration-symlink-inside"),
    pytest.param(with_outside(symlink(QUIZ, "{outside}/plugin.yaml")), rf"{QUIZ}: is a symbolic link", id="manifest-symlink"),
    pytest.param(with_outside(symlink(TENANT, "{outside}/tenant.yaml")), rf"{TENANT}: is a symbolic link", id="tenant-symlink"),
    pytest.param(with_outside(symlink(INSTALL, "/etc/hostname")), rf"{INSTALL}: is a symbolic link", id="install-symlink-to-etc"),
    pytest.param(with_outside(symlink("publishers/acme.yaml", "northwind.yaml")), r"publishers/acme.yaml: is a symbolic link",
                 id="publisher-symlink"),
    pytest.param(with_outside(symlink("dev/platform.yaml", "../prod/platform.yaml")), r"dev/platform.yaml: is a symbolic link",
                 id="platform-symlink"),
    pytest.param(with_outside(symlink("catalog/quiz-generator/1.3.0/signature.json", "../1.2.0/signature.json")),
                 r"catalog/quiz-generator/1.3.0/signature.json: is a symbolic link", id="signature-symlink"),
    pytest.param(with_outside(symlink("catalog/quiz-generator/1.3.0/migrations", "{outside}")),
                 r"catalog/quiz-generator/1.3.0/migrations: is a symbolic link", id="migrations-folder-symlink"),
    pytest.param(with_outside(symlink(f"dev/tenants/{T2}", "{outside}")), rf"dev/tenants/{T2}: is a symbolic link",
                 id="tenant-folder-symlink"),
    pytest.param(with_outside(symlink("catalog/grade-sync", "{outside}")), r"catalog/grade-sync: is a symbolic link",
                 id="catalog-plugin-folder-symlink"),
    pytest.param(with_outside(symlink(f"dev/tenants/{T1}/plugins", "{outside}")),
                 rf"dev/tenants/{T1}/plugins: is a symbolic link", id="tenant-plugins-folder-symlink"),
    pytest.param(with_outside(lambda root: (root / TENANT).unlink() or os.mkfifo(root / TENANT)),
                 rf"dev/tenants/{T1}: missing tenant.yaml", id="tenant-file-a-fifo"),
    pytest.param(with_outside(lambda root: (root / TENANT).unlink() or (root / TENANT).mkdir()),
                 rf"dev/tenants/{T1}: missing tenant.yaml", id="tenant-file-a-folder"),
    pytest.param(with_outside(lambda root: os.mkfifo(root / "catalog/quiz-generator/1.3.0/migrations/003_fifo.sql")),
                 r"catalog/quiz-generator/1.3.0/migrations/003_fifo.sql: not a regular file", id="migration-fifo"),
]


@pytest.mark.parametrize("mutate, expected", ESCAPES)
def test_no_file_outside_the_environments_repo_or_behind_a_link_is_read(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    _rejected(render, envs, tmp_path, expected, limit=30)
