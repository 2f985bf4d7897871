"""Fixtures of the pipeline tests: the example environments rendered once per module, and a private
copy of that output per test, free to edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    from renderer import cli
    out = tmp_path_factory.mktemp("pristine") / "out"
    assert cli.main(["build", str(EXAMPLE), "--out", str(out), "--offline"]) == 0
    return out


@pytest.fixture
def rendered(pristine, tmp_path) -> Path:
    copy_ = tmp_path / "rendered"
    shutil.copytree(pristine, copy_)
    return copy_
