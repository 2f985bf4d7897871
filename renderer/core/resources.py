"""Where the renderer's own data lives: the Jinja2 templates, the Rego policies and the shipped
custom-resource schemas. The one owner of those paths (in a checkout: the project's top-level
``templates/``, ``policies/`` and ``schemas/`` folders; installed: the same folders packaged
beside the code as ``renderer/_data/...``)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_CHECKOUT = _PACKAGE.parent


def _find(name: str) -> Path:
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _CHECKOUT / name


TEMPLATES = _find("templates")
POLICIES = _find("policies")
