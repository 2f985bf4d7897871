"""No value can inject YAML: one quoting path, and the rendered text is parsed back and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from renderer.pipeline.load import load
from renderer.pipeline.plan import plan
from renderer.core.quoting import quote
from renderer.pipeline.render import Renderer, TemplateError

HOSTILE = [
    pytest.param("x\n        - name: INJECTED\n          value: yes", id="newline-and-list-item"),
    pytest.param('"}, {"name": "INJECTED', id="json-breakout"),
    pytest.param("*alias &anchor !!python/object:os.system", id="yaml-tags-and-anchors"),
    pytest.param("value # comment\n---\nkind: Secret", id="document-separator"),
    pytest.param("{{ 7*7 }} {% raw %}", id="jinja-syntax"),
    pytest.param("emoji \U0001F600 and \u2028 line separator and \\ backslash", id="unicode-and-escapes"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_any_string_as_one_scalar(value):
    doc = yaml.load(f"k: {quote(value)}\nother: 1\n", Loader=yaml.CSafeLoader)
    assert doc == {"k": value, "other": 1}


@pytest.mark.parametrize("value", [pytest.param(float("nan"), id="nan"), pytest.param(object(), id="object")])
def test_quote_refuses_values_without_a_safe_text_form(value):
    with pytest.raises((TypeError, ValueError)):
        quote(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_env_value_stays_one_env_value_in_the_deployment(envs: Path, value):
    manifest = envs / "catalog/lesson-summarizer/2.0.0/plugin.yaml"
    text = manifest.read_text().replace('SUMMARY_MAX_WORDS: "300"', f"SUMMARY_MAX_WORDS: {quote(value)}")
    manifest.write_text(text)
    envs_plan = plan(load(envs), "x")
    bundle_plan = next(b for b in envs_plan[0].bundles if b.plugin == "lesson-summarizer")
    bundle = Renderer(Path(__file__).resolve().parents[2] / "templates").render_bundle(bundle_plan)
    deployment = dict(bundle.objects)["deployment-lesson-summarizer.yaml"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == "SUMMARY_MAX_WORDS"] == [{"name": "SUMMARY_MAX_WORDS", "value": value}]
    assert not any(e["name"] == "INJECTED" for e in env)
    assert all(kind != "Secret" for kind in (o["kind"] for _, o in bundle.objects))
    # and the written bytes parse back to the same object
    written = dict(bundle.files)["deployment-lesson-summarizer.yaml"]
    assert yaml.load(written, Loader=yaml.CSafeLoader) == deployment


def test_a_template_that_emits_the_wrong_kind_is_refused(tmp_path):
    templates = Path(__file__).resolve().parents[2] / "templates"
    broken = tmp_path / "templates"
    broken.mkdir()
    for t in templates.iterdir():
        (broken / t.name).write_text(t.read_text())
    (broken / "service.yaml.j2").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: {{ b.plugin }}}\n")
    envs_plan = plan(load(Path(__file__).resolve().parents[2] / "environments"), "x")
    with pytest.raises(TemplateError, match="service.yaml.j2 must produce Service objects"):
        Renderer(broken).render_bundle(envs_plan[0].bundles[0])
