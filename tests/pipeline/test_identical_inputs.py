"""Byte-identical input files are parsed once (load) and resolved once (plan): what each install
gets must still be its own -- its path, its problems, its tenant's ceilings and names."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from renderer.pipeline.load import load
from renderer.pipeline.plan import plan

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
T2 = "riverside-academy"


def _same_quiz_install(envs: Path) -> None:
    """Both dev tenants install quiz-generator with the same bytes (the second tenant's file)."""
    shutil.copyfile(envs / f"dev/tenants/{T2}/plugins/quiz-generator.yaml",
                    envs / f"dev/tenants/{T1}/plugins/quiz-generator.yaml")


def _installs(inputs, env: str = "dev") -> dict:
    found = next(e for e in inputs.environments if e.name == env)
    return {src.path: src for t in found.tenants for src in t.installs}


def test_identical_install_files_share_one_model_but_keep_their_own_paths(envs):
    _same_quiz_install(envs)
    installs = _installs(load(envs))
    a = installs[f"dev/tenants/{T1}/plugins/quiz-generator.yaml"]
    b = installs[f"dev/tenants/{T2}/plugins/quiz-generator.yaml"]
    assert a.model is b.model and a.sha256 == b.sha256
    assert a.path != b.path


def test_identical_installs_are_planned_for_their_own_tenant(envs):
    _same_quiz_install(envs)
    dev = next(e for e in plan(load(envs), "0" * 64) if e.name == "dev")
    quiz = {b.tenant: b for b in dev.bundles if b.plugin == "quiz-generator"}
    assert quiz[T1].spec == quiz[T2].spec
    assert quiz[T1].names.namespace != quiz[T2].names.namespace
    assert T1 in quiz[T1].names.namespace and T2 in quiz[T2].names.namespace
    assert quiz[T1].input_digest != quiz[T2].input_digest  # the tenant file is an input of each


def test_an_install_that_differs_by_its_overrides_is_resolved_on_its_own(envs):
    dev = next(e for e in plan(load(envs), "0" * 64) if e.name == "dev")
    quiz = {b.tenant: b for b in dev.bundles if b.plugin == "quiz-generator"}
    assert quiz[T1].spec.replicas.max == 2 and quiz[T1].spec.env.get("LOG_LEVEL") == "debug"
    assert quiz[T2].spec.replicas.max == 4 and quiz[T2].spec.env["LOG_LEVEL"] == "info"  # the catalog's


def test_identical_broken_install_files_are_each_reported_at_their_own_path(envs, render, tmp_path):
    broken = "apiVersion: plugins.adapstory.io/v1\nkind: PluginInstall\nmetadata:\n  name: quiz-generator\nspec:\n  version: 9.9.9\n"
    for tenant in (T1, T2):
        (envs / f"dev/tenants/{tenant}/plugins/quiz-generator.yaml").write_text(broken)
    result = render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev")
    assert result.code == 1
    for tenant in (T1, T2):
        assert re.search(rf"dev/tenants/{tenant}/plugins/quiz-generator.yaml:6: spec.version: unknown catalog version",
                         result.out + result.err)
    assert not (tmp_path / "out").exists()


def test_an_install_over_one_tenants_ceiling_is_reported_for_that_tenant_only(envs, render, tmp_path):
    _same_quiz_install(envs)
    tenant = envs / f"dev/tenants/{T1}/tenant.yaml"
    text = tenant.read_text()
    tenant.write_text(re.sub(r"llmTokensPerDay: \d+", "llmTokensPerDay: 1", text, count=1))
    result = render("build", envs, "--out", tmp_path / "out", "--offline", "--env", "dev")
    assert result.code == 1
    text = result.out + result.err
    assert re.search(rf"dev/tenants/{T1}/plugins/quiz-generator.yaml:\d+: spec.version: llmTokensPerDay .* exceeds tenant {T1}",
                     text)
    assert f"exceeds tenant {T2}" not in text
