"""The one naming rule (CONTRACT §2): limits, hashes, collisions."""

from __future__ import annotations

import re
import shutil

import pytest

from renderer.pipeline.plan import label_value, shorten

LONG_PLUGIN = "a-very-long-plugin-name-that-keeps-going-and-going-for-ever-x"  # 61 chars, a DNS label


@pytest.mark.parametrize(
    "name, limit, sep",
    [
        pytest.param("plugin-" + "t" * 36 + "-" + LONG_PLUGIN, 63, "-", id="namespace"),
        pytest.param(("plugin_" + LONG_PLUGIN + "_" + "t" * 36).replace("-", "_"), 63, "_", id="postgres-role"),
        pytest.param("plugin-" + "t" * 30 + "-" + "x" * 20 + "-" * 5 + "y" * 30, 63, "-", id="dash-at-the-cut"),
    ],
)
def test_a_long_name_is_cut_to_its_limit_with_a_hash_and_never_ends_in_a_separator(name, limit, sep):
    short = shorten(name, limit, sep)
    assert len(short.encode()) <= limit
    assert not short.endswith(("-", "_"))
    assert re.search(re.escape(sep) + r"[0-9a-f]{10}$", short)
    assert shorten(name, limit, sep) == short, "deterministic"
    assert shorten(name + "z", limit, sep) != short, "the hash is of the full name"


def test_a_name_within_its_limit_is_kept_as_it_is():
    assert shorten("plugin-acme-quiz", 63, "-") == "plugin-acme-quiz"


@pytest.mark.parametrize("text, expected", [
    pytest.param("1.3.0", "1.3.0", id="release"),
    pytest.param("1.3.0-rc.1+build.7", "1.3.0-rc.1_build.7", id="build-metadata"),
])
def test_label_values_hold_only_allowed_characters(text, expected):
    assert label_value(text) == expected


def test_two_installs_that_map_to_one_namespace_are_an_error(envs, tmp_path, render):
    # Two tenants whose ids share the first 50 characters and two long plugin names collide only
    # if the rule ignored the hash; so force a true collision: the same tenant id twice is
    # impossible (folders), but the same (database, schema) pair is not.
    quiz = envs / "catalog/quiz-generator/1.3.0/plugin.yaml"
    grade = envs / "catalog/grade-sync/0.9.0/plugin.yaml"
    grade.write_text(grade.read_text().replace("database: {}", "database: {schema: quiz}"))
    result = render("build", envs, "--out", tmp_path / "out", "--offline")
    assert result.code == 1
    assert "riverside-academy/grade-sync and riverside-academy/quiz-generator map to the same (database, schema)" \
        " 'tenant_riverside_academy.quiz'" in result.err
    assert quiz.exists() and not (tmp_path / "out").exists()


def test_long_tenant_and_plugin_names_render_within_limits(envs, tmp_path, render):
    tenant = "t" * 36
    src = envs / "dev/tenants/riverside-academy"
    dst = envs / f"dev/tenants/{tenant}"
    shutil.copytree(src, dst)
    (dst / "tenant.yaml").write_text((dst / "tenant.yaml").read_text().replace("riverside-academy", tenant))
    from renderer.pipeline.load import load
    from renderer.pipeline.plan import plan

    envs_plan = plan(load(envs), "x")
    names = [b.names for e in envs_plan for b in e.bundles if b.tenant == tenant]
    assert names
    for n in names:
        assert len(n.namespace) <= 63 and len(n.db_role.encode()) <= 63
        assert n.db_role.startswith("plugin_") and "-" not in n.db_role
