"""The compiled writer (``yamlwrite.Program``) gives exactly ``dump`` of the filled tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core.yamlwrite import Program, dump, dump_reference
from tests.core.test_yamlio import TRICKY


class Hole:
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def fill(node, values):
    if type(node) is dict:
        return {(values[k.index] if type(k) is Hole else k): fill(v, values) for k, v in node.items()}
    if type(node) is list:
        return [fill(item, values) for item in node]
    return values[node.index] if type(node) is Hole else node


def written(tree, values) -> bytes:
    program = Program.compile(tree, Hole)
    assert program is not None
    return program.dump(values, lambda: fill(tree, values), lambda node: fill(node, values))


SCALARS = st.sampled_from(TRICKY) | st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(TRICKY) | st.text(max_size=6), inner, max_size=3), max_leaves=8)
KEYS = st.sampled_from(["a", "b", "kind", "metadata", "z-1", "é", "x y", "1"])
TREES = st.recursive(
    st.sampled_from(["static", "multi\nline\n", 3, True, None, [], {}]) | st.just("HOLE"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.just("HOLE-KEY"), inner, max_size=4),
    max_leaves=10,
)


def with_holes(node, holes: list):
    """The drawn tree with "HOLE" leaves and "HOLE-KEY" keys as holes, numbered in order."""
    if node == "HOLE":
        holes.append(None)
        return Hole(len(holes) - 1)
    if type(node) is list:
        return [with_holes(item, holes) for item in node]
    if type(node) is dict:
        out = {}
        for k, v in node.items():
            if k == "HOLE-KEY":
                holes.append("key")
                k = Hole(len(holes) - 1)
            out[k] = with_holes(v, holes)
        return out
    return node


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(tree=st.dictionaries(KEYS, TREES, min_size=1, max_size=4), data=st.data())
def test_a_compiled_tree_writes_what_dump_writes_for_any_values(tree, data):
    """Property: holes as mapping values, sequence items and keys, values of every plain kind
    (multi-line text, YAML-looking strings, nested containers): the same bytes as ``dump``."""
    holes: list = []
    skeleton = with_holes(tree, holes)
    values = [data.draw(st.sampled_from(TRICKY) | st.text(min_size=1, max_size=8)) if kind == "key"
              else data.draw(VALUES) for kind in holes]
    filled = fill(skeleton, values)
    if type(filled) is dict and len({k for k in filled}) != len(skeleton):
        return  # two keys the same: the skeleton refuses such a fill before writing
    program = Program.compile(skeleton, Hole)
    if program is None:  # only a tree dump would hand to PyYAML whatever the values
        assert dump(filled) == dump_reference(filled)
        return
    assert written(skeleton, values) == dump(filled)


@pytest.mark.parametrize("tree", [
    pytest.param([Hole(0)], id="a-list-at-the-top"),
    pytest.param({}, id="an-empty-mapping"),
    pytest.param(Hole(0), id="a-hole-at-the-top"),
    pytest.param({"ratio": 0.5, "v": Hole(0)}, id="a-float-in-the-text"),
    pytest.param({1: "x", "v": Hole(0)}, id="a-number-as-key"),
])
def test_a_tree_that_dump_hands_to_pyyaml_is_not_compiled(tree):
    assert Program.compile(tree, Hole) is None


@pytest.mark.parametrize("value", [
    pytest.param(0.25, id="a-float"),
    pytest.param({"nested": [1.5]}, id="a-float-inside"),
    pytest.param({"a\nb": 1}, id="a-key-with-a-line-break"),
])
def test_a_value_the_fast_writer_does_not_handle_sends_the_object_to_pyyaml(value):
    tree = {"metadata": {"name": "x"}, "spec": {"value": Hole(0), "after": [Hole(1)]}}
    values = [value, "y"]
    assert written(tree, values) == dump_reference(fill(tree, values)) == dump(fill(tree, values))


def test_a_mapping_keyed_by_values_is_written_in_the_order_of_its_filled_keys():
    tree = {"data": {Hole(0): "1", "m": Hole(1), Hole(2): "3"}, "kind": "ConfigMap"}
    values = ["zz", "middle", "aa"]
    text = written(tree, values).decode()
    assert text == "data:\n  aa: '3'\n  m: middle\n  zz: '1'\nkind: ConfigMap\n"
    assert text.encode() == dump(fill(tree, values))


def test_a_program_is_reused_for_other_values_without_keeping_any():
    tree = {"a": Hole(0), "b": [Hole(1), {"c": Hole(2)}]}
    program = Program.compile(tree, Hole)
    for values in (["x", 1, None], ["multi\nline\n", [], {"k": "v"}], ["yes", "- item", "a: b"]):
        assert program.dump(values, lambda: fill(tree, values), lambda n: fill(n, values)) == dump(fill(tree, values))
