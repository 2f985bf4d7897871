"""``jsontext.pretty`` writes what ``json.dumps(indent=2, sort_keys=True, ensure_ascii=False)`` writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core.jsontext import pretty

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)


def reference(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(value=JSON)
def test_any_json_document_is_written_as_json_dumps_writes_it(value):
    assert pretty(value) == reference(value)


@pytest.mark.parametrize("value", [
    pytest.param({1: "a", 2: "b"}, id="number-keys"),
    pytest.param({"a": (1, 2)}, id="a-tuple"),
    pytest.param({"a": 1, 2: 3}, id="mixed-keys-that-do-not-sort"),
    pytest.param({"k": True, "n": None}, id="bool-and-null"),
])
def test_what_is_not_plain_json_data_is_written_by_json_itself(value):
    try:
        expected = reference(value)
    except TypeError:
        with pytest.raises(TypeError):
            pretty(value)
        return
    assert pretty(value) == expected
