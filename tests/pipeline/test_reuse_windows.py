"""Earlier files of the bundles (``BuildRequest.reuse``) are read a window of plans at a time, so a
run never holds every bundle's files at once; what is kept and written is the same."""

from __future__ import annotations

import json

import pytest

from renderer.flows import build as build_flow
from renderer.pipeline import build as build_mod
from renderer.pipeline import earlier
from tests.conftest import tree_digest


@pytest.fixture
def asked(monkeypatch) -> list:
    """The plans each call of the reuse function is asked for (the real function still answers)."""
    calls: list = []
    real = build_flow.reuse_from_folder

    def recording(root):
        reuse = real(root)

        def wrapped(plans):
            calls.append([p.path for p in plans])
            return reuse(plans)
        return wrapped

    monkeypatch.setattr(build_flow, "reuse_from_folder", recording)
    monkeypatch.setattr(earlier, "REUSE_WINDOW", 2)
    return calls


@pytest.mark.parametrize("workers", [pytest.param("1", id="in-process"), pytest.param("2", id="worker-processes")])
def test_earlier_files_are_read_a_window_at_a_time_and_every_bundle_is_kept_as_before(
        envs, tmp_path, render, asked, monkeypatch, workers):
    monkeypatch.setattr(build_mod, "PARALLEL_THRESHOLD", 1)  # the example's 9 bundles through the worker pool too
    out = tmp_path / "out"
    first = render("build", envs, "--out", out, "--offline", "--jobs", workers, "--format", "json")
    assert first.code == 0, first.err
    before = tree_digest(out)
    assert asked == []  # nothing written before: nothing to reuse

    again = render("build", envs, "--out", out, "--offline", "--jobs", workers, "--format", "json")
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    paths = [path for call in asked for path in call]
    assert max(len(call) for call in asked) == 2
    assert sorted(paths) == sorted(set(paths)) and len(paths) == doc["bundles"] == 9
    assert doc["kept"] == 9
    assert tree_digest(out) == before
