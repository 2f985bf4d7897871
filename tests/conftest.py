"""Shared fixtures: the example environments, schema locations, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from renderer import cli
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "environments"
# CI runs in a fresh clone with a copy of shared/ beside it: <repo>/../shared/schemas/crds. Only the
# schema gate's own tests and the shipped-schema comparison read it; every render uses the schemas
# the package ships (renderer/_data/schemas).
SHARED_CRDS = REPO.parent / "shared" / "schemas" / "crds"


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory):
    """Session-wide: module-scoped fixtures render too, before any function-scoped monkeypatch."""
    saved = {k: os.environ.get(k) for k in ("RENDER_SCHEMA_LOCATION", "RENDER_CACHE_DIR")}
    os.environ.pop("RENDER_SCHEMA_LOCATION", None)  # the shipped schemas, as an installed `render` has
    os.environ["RENDER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def envs(tmp_path) -> Path:
    """A private copy of the example environments repo, free to edit."""
    dest = tmp_path / "environments"
    shutil.copytree(EXAMPLE, dest)
    return dest


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def render(capsys):
    """Run the CLI in-process (exceptions escape, so a traceback fails the test)."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def tree_digest(root: Path) -> str:
    """sha256 over every file path and content below root (missing root: a fixed value)."""
    h = hashlib.sha256()
    if not root.exists():
        return "absent"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
