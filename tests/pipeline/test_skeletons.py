"""A shape writes its objects through its compiled program: the same bytes as ``dump``."""

from __future__ import annotations

import pytest

from renderer.core.yamlio import dump
from renderer.pipeline.render import _waved_skeleton, with_sync_wave
from renderer.pipeline.skeletons import Skeletons

STATIC = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: __render_slot_0__\n  annotations:\n    a: __render_slot_1__\ndata:\n  k: __render_slot_2__\n"


@pytest.mark.parametrize("text, values, compiled", [
    pytest.param(STATIC, ["cm", "x", "multi\nline\n"], True, id="annotations-in-the-text"),
    pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: __render_slot_0__\ndata:\n  k: __render_slot_1__\n",
                 ["cm", "yes"], True, id="no-annotations"),
    pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: __render_slot_0__\n  annotations: __render_slot_1__\n",
                 ["cm", {"b": "1", "argocd.argoproj.io/sync-wave": "9"}], False, id="annotations-from-a-value"),
    pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: __render_slot_0__\n  __render_slot_1__:\n    b: '1'\n",
                 ["cm", "annotations"], False, id="a-metadata-key-from-a-value"),
    pytest.param("apiVersion: __render_slot_1__\nkind: ConfigMap\nmetadata:\n  name: __render_slot_0__\n",
                 ["cm", "v1"], False, id="apiVersion-from-a-value"),
])
def test_a_shape_writes_each_object_as_dump_writes_it_with_its_sync_wave(text, values, compiled):
    """The sync wave goes into the skeleton only where it lands there as in every filled object;
    elsewhere the object is written by ``dump`` itself. Either way: the bytes of ``dump``."""
    skeletons = Skeletons()
    shape = skeletons.shape(text, values)
    [(obj, data)] = shape.written(values, with_sync_wave, _waved_skeleton)
    assert obj == with_sync_wave(skeletons.objects(text, values)[0])
    assert data == dump(obj)
    assert obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].lstrip("-").isdigit()
    assert (shape._programs[(0, _waved_skeleton)] is not None) == compiled


def test_a_shape_compiles_its_program_once_and_reuses_it_for_new_values():
    skeletons = Skeletons()
    first = ["cm", "x", "1"]
    shape = skeletons.shape(STATIC, first)
    shape.written(first, with_sync_wave, _waved_skeleton)
    program = shape._programs[(0, _waved_skeleton)]
    second = ["other", "- y", "a: b"]
    [(obj, data)] = skeletons.shape(STATIC, second).written(second, with_sync_wave, _waved_skeleton)
    assert shape._programs[(0, _waved_skeleton)] is program
    assert data == dump(obj) and obj["data"] == {"k": "a: b"} and obj["metadata"]["name"] == "other"
