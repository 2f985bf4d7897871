"""Hostile and broken input: every case exits 1 with `file:line: field`, no traceback, nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from tests.support.edits import edit, rename, write

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
T2 = "riverside-academy"
INSTALL = f"dev/tenants/{T1}/plugins/quiz-generator.yaml"
TENANT = f"dev/tenants/{T1}/tenant.yaml"
QUIZ = "catalog/quiz-generator/1.3.0/plugin.yaml"


ALIAS_BOMB = """apiVersion: plugins.adapstory.io/v1
kind: PluginInstall
metadata: {name: quiz-generator}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]
spec: {version: 1.3.0}
"""

CASES = [
    pytest.param(edit(TENANT, "spec:\n", "spec: [\n"), rf"{TENANT}:\d+: invalid YAML", id="malformed-yaml"),
    pytest.param(edit(INSTALL, "spec:\n", "spec:\n  version: 1.2.0\n"),
                 rf"{INSTALL}:7: spec.version: duplicate key \(first defined on line 6\)", id="duplicate-key"),
    pytest.param(write(INSTALL, ALIAS_BOMB), rf"{INSTALL}:4: YAML anchors \(&a\) are not allowed", id="alias-bomb"),
    pytest.param(edit(QUIZ, "  port: 8080", "  port: 8080\n  imagePullSecret: x"),
                 rf"{QUIZ}:10: spec.imagePullSecret: unknown field", id="unknown-field"),
    pytest.param(edit(QUIZ, "  port: 8080", '  port: "8080"'), rf"{QUIZ}:9: spec.port: Input should be a valid integer",
                 id="wrong-type-port-as-string"),
    pytest.param(edit(QUIZ, "  port: 8080", "  port: 70000"), rf"{QUIZ}:9: spec.port: Input should be less than or equal to 65535",
                 id="port-out-of-range"),
    pytest.param(edit(QUIZ, "replicas: {min: 1, max: 4}", "replicas: {min: 5, max: 4}"),
                 rf"{QUIZ}:\d+: spec.replicas: .*min \(5\) is larger than replicas.max \(4\)", id="replicas-min-above-max"),
    pytest.param(edit(TENANT, f"name: {T1}", "name: Tenant-A"), rf"{TENANT}:4: metadata.name: 'Tenant-A' is not a tenant id",
                 id="uppercase-tenant-id"),
    pytest.param(edit(INSTALL, "name: quiz-generator", "name: quiz/generator"),
                 rf"{INSTALL}:4: metadata.name: 'quiz/generator' is not a DNS label", id="slash-in-name"),
    pytest.param(edit(INSTALL, "name: quiz-generator", "name: .."), rf"{INSTALL}:4: metadata.name: '..' is not a DNS label",
                 id="dot-dot-name"),
    pytest.param(edit(INSTALL, "name: quiz-generator", 'name: "quiz\\ngenerator"'),
                 rf"{INSTALL}:4: metadata.name: 'quiz\\ngenerator' is not a DNS label", id="newline-in-name"),
    pytest.param(edit(TENANT, f"name: {T1}", f"name: {T1}-x"), rf"{TENANT}:4: metadata.name: .* at most 36 characters",
                 id="tenant-id-over-36"),
    pytest.param(edit(QUIZ, "quiz-generator:1.3.0@sha256:", "quiz-generator:1.3.0#"),
                 rf"{QUIZ}:8: spec.image: .*not a valid image reference", id="image-garbage"),
    pytest.param(lambda root: _drop_digest(root), rf"{QUIZ}:8: spec.image: .*must be pinned by digest", id="image-without-digest"),
    pytest.param(edit(QUIZ, "registry.adapstory.io/acme/quiz-generator", "registry.adapstory.io/acme-evil/quiz-generator"),
                 rf"{QUIZ}:8: spec.image: image repository 'registry.adapstory.io/acme-evil/quiz-generator' is outside publisher 'acme'",
                 id="image-outside-publisher-registries"),
    pytest.param(edit(QUIZ, "vaultKey: llm/openai", "vaultKey: ../other-tenant/openai"),
                 rf"{QUIZ}:\d+: spec.secrets\[0\].vaultKey: '../other-tenant/openai' is not a Vault key", id="vault-key-traversal"),
    pytest.param(edit(QUIZ, "vaultKey: llm/openai", "vaultKey: llm//openai"),
                 rf"{QUIZ}:\d+: spec.secrets\[0\].vaultKey: 'llm//openai' is not a Vault key", id="vault-key-doubled-slash"),
    pytest.param(edit(QUIZ, "- name: openai-api-key", "- name: openai api key"),
                 rf"{QUIZ}:\d+: spec.secrets\[0\].name: 'openai api key' is not a secret name", id="secret-name-with-spaces"),
    pytest.param(edit(INSTALL, "llmTokensPerDay: 50000", "llmTokensPerDay: 5000000"),
                 rf"{INSTALL}:8: spec.overrides.budgets.llmTokensPerDay: llmTokensPerDay 5000000 exceeds tenant {T1}'s ceiling 1000000",
                 id="override-above-ceiling"),
    pytest.param(edit(INSTALL, "replicas: {max: 2}", "replicas: {max: 10}"),
                 rf"{INSTALL}:9: spec.overrides.replicas.max: cpu 5 exceeds tenant {T1}'s ceiling 4", id="replicas-above-cpu-ceiling"),
    pytest.param(edit(f"dev/tenants/{T2}/tenant.yaml", 'cpu: "3"', 'cpu: "2200m"'),
                 rf"dev/tenants/{T2}/tenant.yaml:7: spec.ceilings.cpu: installs need 2400m cpu in total "
                 r"\(grade-sync, quiz-generator\), above the ceiling 2200m",
                 id="tenant-total-above-ceiling"),
    pytest.param(edit(QUIZ, "egress: [plugin-gateway, kafka, data-model-engine]", "egress: [plugin-gateway, kafka, internet]"),
                 rf"{QUIZ}:\d+: spec.egress\[2\]: unknown egress target 'internet'", id="unknown-egress-target"),
    pytest.param(edit(INSTALL, "version: 1.3.0", "version: 9.9.9"),
                 rf"{INSTALL}:6: spec.version: unknown catalog version quiz-generator@9.9.9 \(known versions: 1.2.0, 1.3.0\)",
                 id="unknown-catalog-version"),
    pytest.param(rename(INSTALL, f"dev/tenants/{T1}/plugins/quiz.yaml"),
                 rf"dev/tenants/{T1}/plugins/quiz.yaml:4: metadata.name: 'quiz-generator' differs from the file name 'quiz'",
                 id="file-name-differs-from-metadata-name"),
    pytest.param(edit(QUIZ, "version: 1.3.0", "version: 1.3.1"),
                 rf"{QUIZ}:6: metadata.version: '1.3.1' differs from the folder name '1.3.0'", id="version-differs-from-folder"),
    pytest.param(edit("publishers/acme.yaml", "kind: Publisher", "kind: Publisher\nextra: 1"),
                 r"publishers/acme.yaml:3: extra: unknown field", id="unknown-top-level-field"),
    pytest.param(edit(QUIZ, "publisher: acme", "publisher: nobody"),
                 rf"{QUIZ}:5: metadata.publisher: unknown publisher 'nobody'", id="unknown-publisher"),
]


def _drop_digest(root: Path) -> None:
    path = root / QUIZ
    path.write_text(re.sub(r"@sha256:[0-9a-f]{64}", "", path.read_text()))


def _prepare_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "dev").mkdir(parents=True)
    (out / ".render-output").write_text("marker\n")
    (out / "dev" / "keep.yaml").write_text("previous: run\n")
    return out


@pytest.mark.parametrize("mutate, expected", CASES)
def test_hostile_input_is_rejected_with_file_line_and_field_and_nothing_is_written(envs, tmp_path, render, mutate, expected):
    mutate(envs)
    out = _prepare_out(tmp_path)
    before = tree_digest(out)
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1, result.err
    assert re.search(expected, result.err), f"expected /{expected}/ in:\n{result.err}"
    assert "Traceback" not in result.err
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environments", "out"], "no staging folder left behind"


def test_every_problem_of_a_run_is_reported_at_once(envs, tmp_path, render):
    edit(QUIZ, "  port: 8080", "  port: 0")(envs)
    edit(f"dev/tenants/{T2}/plugins/quiz-generator.yaml", "version: 1.3.0", "version: 9.9.9")(envs)
    edit(TENANT, f"name: {T1}", "name: UPPER")(envs)
    result = render("build", envs, "--out", tmp_path / "out", "--offline")
    assert result.code == 1
    problems = [line for line in result.err.splitlines() if re.match(r"^\S+:\d+: ", line)]
    assert len(problems) == 3, result.err  # port, unknown catalog version, tenant id
    assert "error: 3 problem(s) in the input" in result.err
    assert not (tmp_path / "out").exists()


def test_a_usage_error_exits_2(render, tmp_path):
    result = render("build", "--out", tmp_path / "o", "--only", "no-slash")
    assert result.code == 2
    assert "--only takes TENANT/PLUGIN" in result.err


def test_an_output_folder_the_renderer_did_not_write_is_refused(envs, tmp_path, render):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1
    assert "refusing to proceed" in result.err
    assert (out / "notes.txt").read_text() == "mine\n"
