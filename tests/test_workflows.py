"""The GitHub workflows cannot run here; keep them honest: every `render` command they run exists
in the CLI with the flags they pass, and the real kubeconform and conftest read the same schemas
and policies the in-process gates use."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from renderer.cli.parser import parser

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def _run_lines():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for job in doc["jobs"].values():
            for step in job["steps"]:
                for line in str(step.get("run", "")).replace("\\\n", " ").splitlines():
                    yield path.name, line.strip()


RENDER_LINES = [pytest.param(line, id=f"{name}:{line[:40]}") for name, line in _run_lines() if line.startswith("render ")]


def test_the_workflows_run_render_kubeconform_and_conftest():
    lines = [line for _, line in _run_lines()]
    assert any(line.startswith("render diff") and "--format markdown" in line for line in lines)
    assert any(line.startswith("render build") for line in lines)
    assert any("kubeconform -strict" in line and "RENDER_SCHEMA_LOCATION" in line for line in lines)
    assert any("conftest test --policy renderer/policies --combine" in line for line in lines)
    assert any("conftest verify --policy renderer/policies" in line for line in lines)
    assert any(line == "make test" for line in lines)


@pytest.mark.parametrize("line", RENDER_LINES)
def test_every_render_command_in_a_workflow_parses_with_the_cli(line):
    argv = shlex.split(line.split(">")[0])[1:]
    args = parser().parse_args(argv)  # a usage error raises SystemExit(2) and fails the test
    assert args.command == argv[0]
