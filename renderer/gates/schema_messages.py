"""Schema violations as people read them: a path into the object and one sentence, the same
whichever engine (jsonschema-rs or jsonschema) found them.

Where it sits: ``gates``, below ``gates.schema_compile`` and ``gates.schemas``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from typing import TYPE_CHECKING

import jsonschema_rs

if TYPE_CHECKING:  # jsonschema (the reference engine) is imported only when a check uses it
    import jsonschema

from renderer.core.errors import RenderError


# --------------------------------------------------------------------------- public types
class SchemaSetupError(RenderError):
    """The schema gate cannot be set up: bad schema location, unreadable or invalid schema file."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class UnsupportedKubernetesVersion(SchemaSetupError):
    """No built-in schemas for the requested Kubernetes version."""


@dataclass(frozen=True, order=True)
class SchemaViolation:
    """One schema problem in one object: ``path`` is where in the object (``spec.template.spec.
    containers[0].securityContext.runAsNonRot``; ``""`` for the object itself)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


# --------------------------------------------------------------------------- error messages
_TYPE_ORDER = ["object", "array", "string", "integer", "number", "boolean", "null"]
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")

_Found = tuple[tuple, str]  # (instance path parts, message)


def format_path(parts: Iterable[Any]) -> str:
    """``("spec", "containers", 0, "name")`` -> ``spec.containers[0].name``; odd keys are quoted:
    ``metadata.labels["app.kubernetes.io/name"]``."""
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _IDENT.fullmatch(p):
            out.append(f".{p}" if out else p)
        else:
            out.append(f"[{json.dumps(p, ensure_ascii=False)}]")
    return "".join(out)


def _finish(found: Iterable[_Found]) -> list[SchemaViolation]:
    def order(item: _Found) -> tuple:
        return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in item[0]), item[1]

    return [SchemaViolation(format_path(parts), msg) for parts, msg in sorted(set(found), key=order)]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("object", "array", "null"):
        return kind
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


def _types_text(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    names.sort(key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else len(_TYPE_ORDER))
    return " or ".join(names)


def _one_of_text(leaf_types: list[Any] | None, instance: Any, keyword: str) -> str:
    if leaf_types:
        return f"expected {_types_text(sorted(set(leaf_types), key=str))}, got {_describe(instance)}"
    return f"matches none of the allowed forms ({keyword}), got {_describe(instance)}"


def _from_fast(err: Any) -> list[_Found]:
    kind = err.kind
    parts = tuple(err.instance_path)
    K = jsonschema_rs.ValidationErrorKind
    if isinstance(kind, K.AdditionalProperties):
        return [(parts + (key,), "unknown field") for key in kind.unexpected]
    if isinstance(kind, K.Required):
        return [(parts + (kind.property,), "required field is missing")]
    if isinstance(kind, K.Type):
        return [(parts, f"expected {_types_text(kind.types)}, got {_describe(err.instance)}")]
    if isinstance(kind, K.Enum):
        return [(parts, f"must be one of {json.dumps(kind.options)}, got {_describe(err.instance)}")]
    if isinstance(kind, K.Format):
        return [(parts, f"must be a valid {kind.format}, got {_describe(err.instance)}")]
    if isinstance(kind, K.Pattern):
        return [(parts, f"must match pattern {json.dumps(kind.pattern)}, got {_describe(err.instance)}")]
    if isinstance(kind, (K.OneOfNotValid, K.AnyOf)):
        leaves = [e.kind for branch in kind.context for e in branch]
        types = None
        if leaves and all(isinstance(k, K.Type) for k in leaves):
            types = [t for k in leaves for t in k.types]
        return [(parts, _one_of_text(types, err.instance, kind.name))]
    if isinstance(kind, K.OneOfMultipleValid):
        return [(parts, "matches more than one of the allowed forms (oneOf)")]
    if isinstance(kind, K.Custom):
        return [(parts, err.message)]
    return [(parts, err.message)]


def _from_reference(err: jsonschema.ValidationError) -> list[_Found]:
    parts = tuple(err.absolute_path)
    keyword, value, instance = err.validator, err.validator_value, err.instance
    if keyword == "additionalProperties":
        props = err.schema.get("properties", {})
        patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
        extra = [k for k in instance if k not in props and not any(p.search(k) for p in patterns)]
        return [(parts + (key,), "unknown field") for key in extra]
    if keyword == "required":
        return [(parts + (p,), "required field is missing") for p in value if p not in instance]
    if keyword == "type":
        return [(parts, f"expected {_types_text(value)}, got {_describe(instance)}")]
    if keyword == "enum":
        return [(parts, f"must be one of {json.dumps(value)}, got {_describe(instance)}")]
    if keyword == "format":
        return [(parts, f"must be a valid {value}, got {_describe(instance)}")]
    if keyword == "pattern":
        return [(parts, f"must match pattern {json.dumps(value)}, got {_describe(instance)}")]
    if keyword in ("oneOf", "anyOf"):
        if not err.context:
            return [(parts, "matches more than one of the allowed forms (oneOf)")]
        types = None
        if all(c.validator == "type" for c in err.context):
            types = [t for c in err.context for t in ([c.validator_value] if isinstance(c.validator_value, str)
                                                      else c.validator_value)]
        return [(parts, _one_of_text(types, instance, keyword))]
    return [(parts, err.message)]


def _non_json(value: Any, parts: tuple = ()) -> list[_Found]:
    """Values YAML can produce that JSON (and so Kubernetes) cannot hold: dates, bytes, int keys."""
    found: list[_Found] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append((parts, f"key {key!r} is a {type(key).__name__}, not a string; quote it in the YAML"))
            else:
                found.extend(_non_json(item, parts + (key,)))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.extend(_non_json(item, parts + (i,)))
    elif not (value is None or isinstance(value, (str, bool, int, float))):
        found.append((parts, f"a {type(value).__name__} value is not JSON; quote it in the YAML"))
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
