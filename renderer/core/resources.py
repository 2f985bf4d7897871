"""Where the renderer's own data lives: the Jinja2 templates, the Rego policies and the shipped
custom-resource schemas. The one owner of those paths: ``renderer/_data/<name>`` when it is there
(installed: pyproject.toml packages ``templates/`` and ``policies/`` as ``renderer._data.templates``
and ``renderer._data.policies``; the schemas always live in ``renderer/_data/schemas``), else the
checkout's top-level ``templates/`` and ``policies/``."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_CHECKOUT = _PACKAGE.parent


def _find(name: str) -> Path:
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _CHECKOUT / name


TEMPLATES = _find("templates")
POLICIES = _find("policies")
# The JSON schemas of exactly the custom-resource kinds the renderer emits (kubeconform layout,
# made by `render schemas import` from the pinned upstream CRDs: tests/tools/ship_schemas.py).
SCHEMAS = _PACKAGE / "_data" / "schemas"
