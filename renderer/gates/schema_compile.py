"""How a JSON schema becomes a fast validator: the formats kubeconform asserts, the draft a
schema is read in, Go-RE2 patterns for Python, and one schema compiled twice (jsonschema-rs for
speed, jsonschema as the reference). The reference engine (jsonschema, referencing) is imported
only when a check asks for it: a run whose objects all pass never loads it.

Where it sits: ``gates``, below ``gates.schemas`` (the store).
"""

from __future__ import annotations

import calendar
import functools
import importlib.util
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema_rs

from renderer.core.errors import OutsideSystemError
from renderer.gates.schema_messages import (SchemaSetupError, SchemaViolation, _describe, _finish, _first_line,
                                            _from_fast, _from_reference, _non_json)

FETCH_TIMEOUT_SECONDS = 30


# --------------------------------------------------------------------------- formats
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))", re.ASCII)
_DURATION = re.compile(
    r"P(?:\d+W|(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?)",
    re.ASCII)


def _is_date_time(value: Any) -> bool:
    """RFC 3339 date-time, as kubeconform asserts it (``2024-05-01T12:00:00Z``)."""
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.fullmatch(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    off_h, off_m = m.group(7), m.group(8)
    return off_h is None or (int(off_h) <= 23 and int(off_m) <= 59)


def _is_duration(value: Any) -> bool:
    """ISO 8601 duration (``P1D``, ``PT5M``), the JSON Schema ``duration`` format."""
    return not isinstance(value, str) or _DURATION.fullmatch(value) is not None


def _any(value: Any) -> bool:
    return True


_FORMATS = {"date-time": _is_date_time, "duration": _is_duration}
# jsonschema-rs knows more formats than these two; they are switched off so both engines (and the
# README's promise) agree: only date-time and duration are asserted.
_FAST_FORMATS = {
    **{name: _any for name in (
        "date", "time", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6", "iri",
        "iri-reference", "uri", "uri-reference", "uri-template", "json-pointer", "relative-json-pointer",
        "regex", "uuid")},
    **_FORMATS,
}


@functools.cache
def _format_checker() -> Any:
    """The reference engine's checker of the same formats (made on first use)."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, check in _FORMATS.items():
        checker.checks(name)(check)
    return checker


# --------------------------------------------------------------------------- drafts
_DRAFTS = {
    # $schema (without trailing '#') -> (jsonschema-rs class, name of the jsonschema class)
    "http://json-schema.org/draft-04/schema": (jsonschema_rs.Draft4Validator, "Draft4Validator"),
    "http://json-schema.org/draft-06/schema": (jsonschema_rs.Draft6Validator, "Draft6Validator"),
    "http://json-schema.org/draft-07/schema": (jsonschema_rs.Draft7Validator, "Draft7Validator"),
    "https://json-schema.org/draft/2019-09/schema": (jsonschema_rs.Draft201909Validator, "Draft201909Validator"),
    "https://json-schema.org/draft/2020-12/schema": (jsonschema_rs.Draft202012Validator, "Draft202012Validator"),
}


def _reference_class(draft: str) -> Any:
    import jsonschema

    return getattr(jsonschema, _DRAFTS[draft][1])
_DEFAULT_DRAFT = "http://json-schema.org/draft-04/schema"  # kubeconform: no $schema means draft-04


def _draft_of(schema: dict, source: str) -> str:
    declared = schema.get("$schema")
    if declared is None:
        return _DEFAULT_DRAFT
    key = str(declared).rstrip("#")
    if key not in _DRAFTS:
        raise SchemaSetupError(f"{source}: unsupported $schema {declared!r}",
                               "use draft-04, -06, -07, 2019-09 or 2020-12, or drop $schema (draft-04)")
    return key


# Patterns that are not ECMA-262 regexes (jsonschema-rs rejects the whole schema then) are moved to
# this keyword and checked with Python's re, the same engine as the reference implementation.
_PY_PATTERN = "x-renderer-python-pattern"


class _PythonPattern:
    def __init__(self, parent_schema: dict, value: str, schema_path: list) -> None:
        self.pattern = value
        self.regex = re.compile(value)

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and not self.regex.search(instance):
            raise ValueError(f"must match pattern {json.dumps(self.pattern)}, got {_describe(instance)}")


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "additionalItems", "not", "contains", "propertyNames",
               "if", "then", "else", "unevaluatedProperties", "unevaluatedItems")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")


def _rewrite_patterns(node: Any, is_ecma: Any) -> tuple[Any, bool]:
    """Copy of a schema with non-ECMA ``pattern``s moved to ``_PY_PATTERN`` (only what changes is
    copied); the flag says whether anything changed."""
    if not isinstance(node, dict):
        return node, False
    changed = False
    out: dict = {}
    for key, value in node.items():
        new = value
        if key == "pattern" and isinstance(value, str) and not is_ecma(value):
            out[_PY_PATTERN] = value
            changed = True
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            pairs = {k: _rewrite_patterns(v, is_ecma) for k, v in value.items()}
            if any(c for _, c in pairs.values()):
                new = {k: v for k, (v, _) in pairs.items()}
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            sub, c = _rewrite_patterns(value, is_ecma)
            new = sub if c else value
        elif key in _SCHEMA_LIST and isinstance(value, list):
            items = [_rewrite_patterns(v, is_ecma) for v in value]
            if any(c for _, c in items):
                new = [v for v, _ in items]
        if new is not value:
            changed = True
        out[key] = new
    return (out if changed else node), changed


# --------------------------------------------------------------------------- compiled schemas
class _Compiled:
    """One schema, compiled lazily for the fast engine and (on demand) for the reference one."""

    __slots__ = ("source", "schema", "draft", "builtin_dir", "_fast", "_reference")

    def __init__(self, source: str, schema: dict, builtin_dir: Path | None):
        self.source = source
        self.schema = schema
        self.draft = _draft_of(schema, source)
        self.builtin_dir = builtin_dir  # set when $refs go to that folder's _definitions.json
        self._fast = None
        self._reference = None

    @property
    def fast(self) -> Any:
        if self._fast is None:
            rs_class = _DRAFTS[self.draft][0]
            kwargs: dict[str, Any] = {"formats": _FAST_FORMATS, "validate_formats": True, "offline": True}
            if self.builtin_dir is not None:
                kwargs["registry"] = _builtin_definitions(self.builtin_dir)[1]
            try:
                self._fast = rs_class(self.schema, **kwargs)
            except jsonschema_rs.ValidationError:
                # Most likely a pattern that is not ECMA-262 (jsonschema-rs meta-validates the
                # schema): check those with Python's re and try again.
                meta = self.draft + ("#" if "/draft-0" in self.draft else "")
                schema, changed = _rewrite_patterns(
                    self.schema, lambda p: jsonschema_rs.meta.is_valid({"$schema": meta, "pattern": p}))
                if not changed:
                    raise self._unusable(None) from None
                try:
                    self._fast = rs_class(schema, keywords={_PY_PATTERN: _PythonPattern}, **kwargs)
                except Exception as exc:  # noqa: BLE001 - any compile failure is the schema's fault
                    raise self._unusable(exc) from None
            except Exception as exc:  # noqa: BLE001
                raise self._unusable(exc) from None
        return self._fast

    def _unusable(self, exc: BaseException | None) -> SchemaSetupError:
        import jsonschema

        detail = f": {_first_line(exc)}" if exc is not None else ""
        try:
            jsonschema.validators.validator_for(self.schema, default=_reference_class(self.draft)).check_schema(self.schema)
        except jsonschema.SchemaError as schema_error:
            detail = f": {_first_line(schema_error)}"
        return SchemaSetupError(f"{self.source}: not a usable JSON schema{detail}",
                                "fix or regenerate the schema file (render schemas import)")

    @property
    def reference(self) -> Any:
        if self._reference is None:
            cls = _reference_class(self.draft)
            kwargs: dict[str, Any] = {"format_checker": _format_checker()}
            if self.builtin_dir is not None:
                kwargs["registry"] = _reference_registry(self.builtin_dir)
            self._reference = cls(self.schema, **kwargs)
        return self._reference

    def validate(self, obj: dict) -> list[SchemaViolation]:
        try:
            if self.fast.is_valid(obj):
                return []
            found = [v for err in self.fast.iter_errors(obj) for v in _from_fast(err)]
        except ValueError:  # the object holds something that is not JSON (a date, bytes, an int key)
            found = _non_json(obj) or [v for err in self.reference.iter_errors(obj) for v in _from_reference(err)]
        return _finish(found)

    def reference_validate(self, obj: dict) -> list[SchemaViolation]:
        return _finish([v for err in self.reference.iter_errors(obj) for v in _from_reference(err)])


# Process-wide caches: a schema file is read and compiled once per process, whatever store asks.
_COMPILED: dict[tuple[str, str], _Compiled | None] = {}
_DEFINITIONS: dict[Path, tuple[dict, Any]] = {}


def _builtin_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaSetupError("the kubernetes-validate package is not installed",
                               "install the project with its dependencies (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema"


def _builtin_definitions(folder: Path) -> tuple[dict, Any]:
    """``_definitions.json`` of one built-in folder: (contents, jsonschema-rs Registry)."""
    if folder not in _DEFINITIONS:
        path = folder / "_definitions.json"
        contents = _read_json(path)
        uri = contents.get("$id", "https://kubernetes.io/api/_definitions.json")
        _DEFINITIONS[folder] = (contents, jsonschema_rs.Registry([(uri, contents)]))
    return _DEFINITIONS[folder]


_REFERENCE_REGISTRIES: dict[Path, Any] = {}


def _reference_registry(folder: Path) -> Any:
    """The same definitions as a ``referencing`` Registry, for the reference engine."""
    if folder not in _REFERENCE_REGISTRIES:
        import referencing

        contents = _builtin_definitions(folder)[0]
        uri = contents.get("$id", "https://kubernetes.io/api/_definitions.json")
        _REFERENCE_REGISTRIES[folder] = referencing.Registry().with_resource(
            uri, referencing.Resource.from_contents(contents))
    return _REFERENCE_REGISTRIES[folder]


_DIGESTS: dict[int, str] = {}


def content_digest(compiled: "_Compiled") -> str:
    """sha256 over what decides a verdict of one schema: its content and, for a built-in schema,
    the bytes of the definitions its $refs reach (computed once per process). Not where it was
    found: the same schema installed elsewhere gives the same verdicts, and the same digest."""
    digest = _DIGESTS.get(id(compiled))
    if digest is None:
        h = hashlib.sha256(json.dumps(compiled.schema, sort_keys=True, separators=(",", ":")).encode())
        if compiled.builtin_dir is not None:
            try:
                h.update(b"\0" + (compiled.builtin_dir / "_definitions.json").read_bytes())
            except OSError:
                h.update(b"\0-")
        digest = _DIGESTS[id(compiled)] = h.hexdigest()
    return digest


def _read_json(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise SchemaSetupError(f"{path}: cannot read JSON schema: {exc}",
                               "fix or regenerate the schema file (render schemas import)") from None
    if not isinstance(data, dict):
        raise SchemaSetupError(f"{path}: a JSON schema must be an object",
                               "fix or regenerate the schema file (render schemas import)")
    return data


def _fetch_json(url: str) -> dict | None:
    """GET a schema; None on 404 (no schema there)."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise OutsideSystemError(f"schema location {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OutsideSystemError(f"schema location {url}: cannot fetch: {getattr(exc, 'reason', exc)}") from None
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise SchemaSetupError(f"{url}: not JSON: {exc}", "point the schema location at JSON schemas") from None
    if not isinstance(data, dict):
        raise SchemaSetupError(f"{url}: a JSON schema must be an object", "point the schema location at JSON schemas")
    return data


def _load(kind_of_source: str, where: str, builtin_dir: Path | None = None) -> _Compiled | None:
    key = (kind_of_source, where)
    if key not in _COMPILED:
        if kind_of_source == "url":
            data = _fetch_json(where)
        else:
            data = _read_json(Path(where)) if os.path.isfile(where) else None
        _COMPILED[key] = None if data is None else _Compiled(where, data, builtin_dir)
    return _COMPILED[key]
