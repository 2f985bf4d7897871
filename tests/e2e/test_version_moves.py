"""A tenant never moves across a migration contract step (docs/migrations.md): the version it runs
(an earlier output's or the GitOps repo's bundle.json) and the new one must share a schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from renderer.gates.migrations import unsafe_move

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"
CONTRACT = """-- contract-since: 1.3.0
-- 1.3.0 stopped reading quizzes.legacy_title; 1.4.0 drops it.
SET lock_timeout = '2s';
SET statement_timeout = '30s';
ALTER TABLE quiz.quizzes DROP COLUMN IF EXISTS legacy_title;
"""


def _add_contract_version(envs: Path) -> Path:
    src, dst = envs / "catalog/quiz-generator/1.3.0", envs / "catalog/quiz-generator/1.4.0"
    shutil.copytree(src, dst)
    (dst / "signature.json").unlink()
    (dst / "plugin.yaml").write_text((dst / "plugin.yaml").read_text().replace("version: 1.3.0", "version: 1.4.0"))
    (dst / "migrations/003_drop_legacy_title.sql").write_text(CONTRACT)
    return dst.parent


@pytest.mark.parametrize("current, target, safe", [
    pytest.param("1.3.0", "1.4.0", True, id="from-the-floor-up"),
    pytest.param("1.4.0", "1.3.0", True, id="roll-back-to-the-floor"),
    pytest.param("1.2.0", "1.4.0", False, id="skipping-the-floor-up"),
    pytest.param("1.4.0", "1.2.0", False, id="rolling-back-below-the-floor"),
    pytest.param("1.2.0", "1.3.0", True, id="no-contract-between"),
])
def test_a_move_is_safe_only_between_versions_on_one_side_of_a_contract_step(envs, current, target, safe):
    plugin_dir = _add_contract_version(envs)
    reason = unsafe_move(plugin_dir, current, target)
    assert (reason is None) == safe, reason
    if not safe:
        assert "move to 1.3.0 first" in reason


def test_build_refuses_to_move_a_tenant_across_a_contract_step(envs, tmp_path, render):
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0  # prod T1 runs quiz-generator 1.2.0
    _add_contract_version(envs)
    install = envs / f"prod/tenants/{T1}/plugins/quiz-generator.yaml"
    install.write_text(install.read_text().replace("version: 1.2.0", "version: 1.4.0"))
    before = sorted(p.as_posix() for p in out.rglob("*"))
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 1
    assert (f"prod/tenants/{T1}/plugins/quiz-generator.yaml:6: spec.version: moving from 1.2.0 to 1.4.0 crosses a "
            "contract step") in result.err, result.err
    assert "(the bundle runs 1.2.0 now)" in result.err
    assert sorted(p.as_posix() for p in out.rglob("*")) == before
