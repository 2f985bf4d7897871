"""No value can inject YAML: every value reaches the objects as data, through one path
(``quoting.plain`` from Jinja's finalize, a slot in the template's parsed text)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core.quoting import plain
from renderer.core.yamlio import dump
from renderer.pipeline.load import load
from renderer.pipeline.plan import plan
from renderer.pipeline.render import Renderer, TemplateError
from renderer.pipeline.skeletons import Skeletons, slot

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
HOSTILE = [
    pytest.param("x\n        - name: INJECTED\n          value: yes", id="newline-and-list-item"),
    pytest.param('"}, {"name": "INJECTED', id="json-breakout"),
    pytest.param("*alias &anchor !!python/object:os.system", id="yaml-tags-and-anchors"),
    pytest.param("value # comment\n---\nkind: Secret", id="document-separator"),
    pytest.param("{{ 7*7 }} {% raw %}", id="jinja-syntax"),
    pytest.param("emoji \U0001F600 and \u2028 line separator and \\ backslash", id="unicode-and-escapes"),
    pytest.param("__render_slot_0__", id="the-slot-token-itself"),
    pytest.param("", id="empty"),
]


def yaml_string(value: str) -> str:
    """``value`` as one double-quoted YAML scalar (to write a hostile manifest)."""
    return yaml.dump(value, Dumper=yaml.CSafeDumper, default_style='"', width=1 << 16, allow_unicode=False).strip()


def render(template: str, **context) -> list:
    """``template`` through the renderer's own Jinja set-up and skeletons (a template of one's own)."""
    import jinja2
    env = jinja2.Environment(finalize=slot, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    values: list = []
    text = env.from_string(template).render(**context, _render_slot_values=values)
    return Skeletons().objects(text, values)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_string_becomes_exactly_one_value(value):
    assert render("k: {{ v }}\nother: 1\n", v=value) == [{"k": value, "other": 1}]


@pytest.mark.parametrize("value, expected", [
    pytest.param("a\ud83d\ude00", "a\U0001F600", id="surrogate-pair-becomes-its-character"),
    pytest.param((1, "x"), [1, "x"], id="tuple-becomes-a-list"),
    pytest.param({"b": 1, "a": [True, None]}, {"a": [True, None], "b": 1}, id="mapping-copied"),
    pytest.param(1.5, 1.5, id="finite-float"),
    pytest.param(10 ** 30, 10 ** 30, id="big-integer"),
])
def test_plain_gives_plain_data(value, expected):
    assert plain(value) == expected
    assert type(plain(value)) is type(expected)


@pytest.mark.parametrize("value, error", [
    pytest.param(float("nan"), "non-finite", id="nan"),
    pytest.param(math.inf, "non-finite", id="infinity"),
    pytest.param(object(), "refusing to render a object", id="object"),
    pytest.param(b"bytes", "refusing to render a bytes", id="bytes"),
    pytest.param("lone \ud800 surrogate", "lone surrogate", id="lone-surrogate"),
    pytest.param({1: "a"}, "int key", id="integer-key"),
    pytest.param({"k": [{"deep": object()}]}, "refusing to render a object", id="nested-object"),
])
def test_plain_refuses_values_without_a_plain_form(value, error):
    with pytest.raises((TypeError, ValueError), match=error):
        plain(value)


def test_plain_never_shares_a_container_with_its_input():
    value = {"labels": {"a": "1"}, "items": [{"x": 1}]}
    out = plain(value)
    out["labels"]["b"] = "2"
    out["items"][0]["y"] = 2
    assert value == {"labels": {"a": "1"}, "items": [{"x": 1}]}


@pytest.mark.parametrize("template, context, error", [
    pytest.param("name: x-{{ v }}\n", {"v": "y"}, "whole YAML node", id="value-inside-a-longer-scalar"),
    pytest.param("expr: |\n  sum({{ v }})\n", {"v": "y"}, "whole YAML node", id="value-inside-a-block-scalar"),
    pytest.param("{{ k }}: 1\n", {"k": 5}, "must be a string, not int", id="key-from-a-number"),
    pytest.param("a: 1\n{{ k }}: 2\n", {"k": "a"}, "repeats another key", id="key-from-a-value-repeats-a-key"),
    pytest.param("a: __render_slot_7__\n", {}, "of no value", id="token-of-no-value-in-the-text"),
])
def test_a_value_that_is_not_a_whole_node_is_refused(template, context, error):
    with pytest.raises(ValueError, match=error):
        render(template, **context)


def test_a_missing_variable_names_itself():
    import jinja2
    with pytest.raises(jinja2.UndefinedError, match="'dict object' has no attribute 'missing'"):
        render("k: {{ b.missing }}\n", b={})


def test_one_shape_is_parsed_once_and_every_render_gets_its_own_objects():
    skeletons = Skeletons()
    text = "metadata:\n  name: __render_slot_0__\n  labels: __render_slot_1__\nspec: {fixed: [1, 2]}\n"
    first = skeletons.objects(text, ["a", {"x": "1"}])
    second = skeletons.objects(text, ["b", {"x": "2"}])
    assert len(skeletons._shapes) == 1
    assert first == [{"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"fixed": [1, 2]}}]
    first[0]["spec"]["fixed"].append(3)
    first[0]["metadata"]["annotations"] = {}
    assert second == [{"metadata": {"name": "b", "labels": {"x": "2"}}, "spec": {"fixed": [1, 2]}}]


def test_past_its_limit_a_shape_is_parsed_again_and_still_right():
    skeletons = Skeletons(limit=1)
    for i in range(3):
        text = f"k{i}: __render_slot_0__\n"
        assert skeletons.objects(text, [str(i)]) == [{f"k{i}": str(i)}]
    assert len(skeletons._shapes) == 1


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(value=JSONISH)
def test_any_plain_value_is_written_and_read_back_as_itself(value):
    """Property: whatever the value, the object holds exactly it, and the bytes render writes
    parse back to the same object (no value can become YAML structure)."""
    try:
        expected = plain(value)
    except ValueError:  # lone surrogates: not text
        return
    [obj] = render("metadata:\n  name: fixed\nspec:\n  value: {{ v }}\n  after: 1\n", v=value)
    assert obj == {"metadata": {"name": "fixed"}, "spec": {"value": expected, "after": 1}}
    assert yaml.load(dump(obj), Loader=yaml.CSafeLoader) == obj


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_env_value_stays_one_env_value_in_the_deployment(envs: Path, value):
    manifest = envs / "catalog/lesson-summarizer/2.0.0/plugin.yaml"
    text = manifest.read_text().replace('SUMMARY_MAX_WORDS: "300"', f"SUMMARY_MAX_WORDS: {yaml_string(value)}")
    manifest.write_text(text)
    envs_plan = plan(load(envs), "x")
    bundle_plan = next(b for b in envs_plan[0].bundles if b.plugin == "lesson-summarizer")
    bundle = Renderer(TEMPLATES).render_bundle(bundle_plan)
    deployment = dict(bundle.objects)["deployment-lesson-summarizer.yaml"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == "SUMMARY_MAX_WORDS"] == [{"name": "SUMMARY_MAX_WORDS", "value": value}]
    assert not any(e["name"] == "INJECTED" for e in env)
    assert all(kind != "Secret" for kind in (o["kind"] for _, o in bundle.objects))
    # and the written bytes parse back to the same object
    written = dict(bundle.files)["deployment-lesson-summarizer.yaml"]
    assert yaml.load(written, Loader=yaml.CSafeLoader) == deployment


def _templates_with(tmp_path: Path, name: str, text: str) -> Path:
    broken = tmp_path / "templates"
    broken.mkdir()
    for t in TEMPLATES.iterdir():
        (broken / t.name).write_text(t.read_text())
    (broken / name).write_text(text)
    return broken


def test_a_template_that_emits_the_wrong_kind_is_refused(tmp_path):
    broken = _templates_with(tmp_path, "service.yaml.j2", "apiVersion: v1\nkind: Secret\nmetadata: {name: {{ b.plugin }}}\n")
    envs_plan = plan(load(Path(__file__).resolve().parents[2] / "environments"), "x")
    with pytest.raises(TemplateError, match="service.yaml.j2 must produce Service objects"):
        Renderer(broken).render_bundle(envs_plan[0].bundles[0])


def test_a_template_that_splices_a_value_into_a_name_is_refused_naming_the_template(tmp_path):
    broken = _templates_with(tmp_path, "service.yaml.j2",
                             "apiVersion: v1\nkind: Service\nmetadata: {name: svc-{{ b.plugin }}}\n")
    envs_plan = plan(load(Path(__file__).resolve().parents[2] / "environments"), "x")
    with pytest.raises(TemplateError, match=r"templates/service.yaml.j2: a \{\{ value \}\} must be a whole YAML node"):
        Renderer(broken).render_bundle(envs_plan[0].bundles[0])


def test_a_template_holding_the_slot_token_is_refused_when_loaded(tmp_path):
    broken = _templates_with(tmp_path, "service.yaml.j2",
                             "apiVersion: v1\nkind: Service\nmetadata: {name: __render_slot_0__}\n")
    with pytest.raises(TemplateError, match="service.yaml.j2: holds '__render_slot_'"):
        Renderer(broken)
