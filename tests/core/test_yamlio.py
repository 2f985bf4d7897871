"""The fast YAML paths give exactly what PyYAML gives: same objects parsed, same bytes written."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core.yamlio import dump, dump_reference, parse_rendered, parse_rendered_reference

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TRICKY = ["", "yes", "no", "on", "null", "~", "1", "1.0", "0x1f", "1e3", "-", "- x", "a: b", "#c", "x #c", "k8s-app",
          "tenant.4f1c.quiz.", "é", "tab\tx", "quote'\"", "{a}", "[b]", "*x", "&y", "!t", "%p", "@a", "`b", "|", ">",
          "trailing ", " leading", "multi\nline\n", "multi\nline", "-----BEGIN KEY-----\nAB==\n-----END KEY-----\n",
          "\U0001F600", "\u2028", "a\u2029b", "c\x85d", "e\rf", "2026-11-26", "12:30", "=", "<<", "x" * 300, "?", ":", ",", "a,b", "0o17", ".inf", "1_000", "0b101", "1:30", "true", "True", "Off", "NULL", "=", ".5", "-1", "1e-3", "0.0.0.0/0",
          "a:", "a:b", "plugin:x:y", "a,b:c", "1:2:3", "x::", "k=v,a=b", "12:30:45", "a:,",
          "a\n\nb\n", "kept\n\n", " lead\nx\n", "x\n  indented\n  more\n", "trailing \nx", "x\n\n\ny", "\nleading-break",
          "tab\n\tx\n", "é\nü\n", "a\u2028b\nc", "#x\n- y\n", "x\r\ny"]


PLAIN_LOOKING = "aZ09_./=-:,+ #"


def _random_value(rng: random.Random, depth: int):
    roll = rng.random()
    if roll < 0.15:  # strings near the fast writer's plain-scalar shortcut
        return "".join(rng.choice(PLAIN_LOOKING) for _ in range(rng.randint(1, 6)))
    if depth > 3 or roll < 0.5:
        return rng.choice(TRICKY + [True, False, None, 0, 7, -3, 10**12])
    if roll < 0.75:
        return {rng.choice(TRICKY): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _golden_files():
    return sorted(p for p in GOLDEN.rglob("*.yaml"))


def test_the_fast_writer_matches_pyyaml_on_every_golden_object():
    files = _golden_files()
    assert len(files) > 150
    for path in files:
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        assert dump(obj) == dump_reference(obj) == path.read_bytes(), path


@pytest.mark.parametrize("seed", range(40))
def test_the_fast_writer_and_parser_match_pyyaml_on_random_documents(seed):
    rng = random.Random(seed)
    for _ in range(50):
        obj = {rng.choice(TRICKY): _random_value(rng, 0) for _ in range(rng.randint(1, 5))}
        text = dump(obj)
        assert text == dump_reference(obj)
        assert parse_rendered(text.decode()) == parse_rendered_reference(text.decode()) == [obj]


def test_the_fast_parser_matches_pyyaml_on_template_style_text():
    text = 'a: "x"\nb: 1\nc: [1, "2", true, null]\nd: {"k": "v"}\ne: yes\nf: 0x1f\ng: 1_000\n---\nh: ~\n'
    assert parse_rendered(text) == parse_rendered_reference(text)


def test_the_fast_parser_refuses_duplicate_keys_in_template_output():
    with pytest.raises(ValueError, match="duplicate"):
        parse_rendered("a: 1\na: 2\n")


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(value=st.text(alphabet="aZ09_./=-:,+ #\n", min_size=1, max_size=8))
def test_the_fast_writer_quotes_a_plain_looking_string_as_pyyaml_does(value):
    obj = {"k": value, "l": [value]}
    assert dump(obj) == dump_reference(obj)
