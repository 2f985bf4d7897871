"""The schema gate: every rendered Kubernetes object is checked, strictly, against a JSON schema.

Where it sits: cli -> pipeline -> load -> plan -> verify -> render -> **validate** -> write -> gitops.
The ``validate`` stage asks a ``SchemaStore`` about each rendered object; an empty list means the
object is valid. It is the in-process equivalent of ``kubeconform -strict`` with the schema
locations of the contract (``--schema-location`` / ``RENDER_SCHEMA_LOCATION``).

Where schemas come from (first hit wins):

1. built-in kinds: the strict schemas that the ``kubernetes-validate`` package ships for the chosen
   Kubernetes minor version (``<kind>-<group prefix>-<version>.json`` with ``$ref`` into
   ``_definitions.json``). A file only counts when its ``x-kubernetes-group-version-kind`` names
   the object's full group, so ``apps.example.com/v1 Deployment`` is not taken for ``apps/v1``;
2. custom resources: each schema location in order. A folder means the CRDs-catalog layout
   ``{dir}/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json``; a string with kubeconform
   placeholders (``{{.Group}}``, ``{{.ResourceKind}}``, ``{{.ResourceAPIVersion}}``,
   ``{{.KindSuffix}}``, ``{{.NormalizedKubernetesVersion}}``, ``{{.StrictSuffix}}``) is a path or
   http(s) URL template; an http(s) URL without placeholders is a base URL in the folder layout.
   ``default`` (kubeconform's name for the built-ins) is accepted and ignored: built-ins always come
   first. Nothing is fetched while a store is created; a schema is read the first time its kind is
   validated.
3. last, always: the schemas the package ships (``renderer/_data/schemas``, the same folder layout)
   for exactly the custom-resource kinds the renderer emits, so ``render`` works with no location;
   a given location that holds the same kind overrides them (the first hit wins).

A kind without a schema is a violation unless ``ignore_missing=True``.

Engine (see ``bench/bench_schemas.py`` for the numbers): objects are validated with
``jsonschema-rs`` (a compiled Rust validator: about 2 us per object, 80-400x faster than
``jsonschema`` depending on the kind, ~160x over a whole bundle);
``jsonschema`` stays the reference implementation (``SchemaStore.reference_validate``), and the
tests check that both agree. Drafts follow kubeconform: a schema without ``$schema`` (the CRD
schemas) is draft-04, and the built-in schemas declare 2020-12. The formats kubeconform asserts,
``date-time`` (RFC 3339) and ``duration`` (ISO 8601), are asserted here too, with the same Python
checks in both engines; other formats (``int32``, ``byte`` ...) are not asserted. A ``pattern`` that
is not an ECMA-262 regex (``(?i)^...`` in PrometheusRule, valid in Go RE2) is checked with Python's
``re`` instead, because jsonschema-rs refuses such a schema.

Each schema is compiled once per process (module-level cache) and only when first needed; a store
pickles as its settings only, so it can be handed to worker processes.
"""

from __future__ import annotations

import calendar
import importlib.util
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jsonschema
import jsonschema_rs
import referencing

from renderer.core.errors import OutsideSystemError, RenderError
from renderer.core.resources import SCHEMAS as SHIPPED_SCHEMAS

__all__ = [
    "SchemaSetupError",
    "SchemaStore",
    "SchemaViolation",
    "UnsupportedKubernetesVersion",
    "format_path",
    "locations_from_env",
    "supported_kubernetes_versions",
]

ENV_SCHEMA_LOCATION = "RENDER_SCHEMA_LOCATION"
FETCH_TIMEOUT_SECONDS = 30


# --------------------------------------------------------------------------- public types
@dataclass(frozen=True, order=True)
class SchemaViolation:
    """One schema problem in one object: ``path`` is where in the object (``spec.template.spec.
    containers[0].securityContext.runAsNonRot``; ``""`` for the object itself)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SchemaSetupError(RenderError):
    """The schema gate cannot be set up: bad schema location, unreadable or invalid schema file."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class UnsupportedKubernetesVersion(SchemaSetupError):
    """No built-in schemas for the requested Kubernetes version."""


def locations_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Schema locations from ``RENDER_SCHEMA_LOCATION`` (comma-separated; blanks dropped)."""
    raw = (os.environ if environ is None else environ).get(ENV_SCHEMA_LOCATION, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def supported_kubernetes_versions() -> list[str]:
    """Kubernetes minor versions (``"1.33"``) with built-in schemas, oldest first."""
    found = []
    root = _builtin_root()
    for entry in os.listdir(root) if root.is_dir() else ():
        m = re.fullmatch(r"v(\d+)\.(\d+)\.0-local-strict", entry)
        if m:
            found.append((int(m.group(1)), int(m.group(2))))
    return [f"{a}.{b}" for a, b in sorted(found)]


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
_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
for _name, _check in _FORMATS.items():
    _FORMAT_CHECKER.checks(_name)(_check)


# --------------------------------------------------------------------------- drafts
_DRAFTS = {
    # $schema (without trailing '#') -> (jsonschema-rs class, jsonschema class, meta-schema URI)
    "http://json-schema.org/draft-04/schema": (jsonschema_rs.Draft4Validator, jsonschema.Draft4Validator),
    "http://json-schema.org/draft-06/schema": (jsonschema_rs.Draft6Validator, jsonschema.Draft6Validator),
    "http://json-schema.org/draft-07/schema": (jsonschema_rs.Draft7Validator, jsonschema.Draft7Validator),
    "https://json-schema.org/draft/2019-09/schema": (jsonschema_rs.Draft201909Validator,
                                                      jsonschema.Draft201909Validator),
    "https://json-schema.org/draft/2020-12/schema": (jsonschema_rs.Draft202012Validator,
                                                      jsonschema.Draft202012Validator),
}
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
        detail = f": {_first_line(exc)}" if exc is not None else ""
        try:
            jsonschema.validators.validator_for(self.schema, default=_DRAFTS[self.draft][1]).check_schema(self.schema)
        except jsonschema.SchemaError as schema_error:
            detail = f": {_first_line(schema_error)}"
        return SchemaSetupError(f"{self.source}: not a usable JSON schema{detail}",
                                "fix or regenerate the schema file (render schemas import)")

    @property
    def reference(self) -> Any:
        if self._reference is None:
            cls = _DRAFTS[self.draft][1]
            kwargs: dict[str, Any] = {"format_checker": _FORMAT_CHECKER}
            if self.builtin_dir is not None:
                kwargs["registry"] = _builtin_definitions(self.builtin_dir)[2]
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
_DEFINITIONS: dict[Path, tuple[dict, Any, Any]] = {}


def _builtin_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaSetupError("the kubernetes-validate package is not installed",
                               "install the project with its dependencies (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema"


def _builtin_definitions(folder: Path) -> tuple[dict, Any, Any]:
    """``_definitions.json`` of one built-in folder: (contents, jsonschema-rs Registry, referencing Registry)."""
    if folder not in _DEFINITIONS:
        path = folder / "_definitions.json"
        contents = _read_json(path)
        uri = contents.get("$id", "https://kubernetes.io/api/_definitions.json")
        fast = jsonschema_rs.Registry([(uri, contents)])
        ref = referencing.Registry().with_resource(uri, referencing.Resource.from_contents(contents))
        _DEFINITIONS[folder] = (contents, fast, ref)
    return _DEFINITIONS[folder]


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


# --------------------------------------------------------------------------- locations
_PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
_KNOWN_PLACEHOLDERS = {"Group", "ResourceKind", "ResourceAPIVersion", "KindSuffix",
                       "NormalizedKubernetesVersion", "StrictSuffix"}
_FOLDER_LAYOUT = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"


@dataclass(frozen=True)
class _Location:
    given: str
    template: str
    is_url: bool

    def resolve(self, values: Mapping[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)


def _parse_location(given: str) -> _Location | None:
    text = given.strip()
    if text == "default":
        return None
    is_url = text.startswith(("http://", "https://"))
    if text.startswith("file://"):
        text = text[len("file://"):]
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - _KNOWN_PLACEHOLDERS)
    if unknown:
        raise SchemaSetupError(
            f"schema location {given!r}: unknown placeholder(s) {', '.join(unknown)}",
            "use {{.Group}}, {{.ResourceKind}}, {{.ResourceAPIVersion}}, {{.KindSuffix}}, "
            "{{.NormalizedKubernetesVersion}} or {{.StrictSuffix}}")
    if _PLACEHOLDER.search(text):
        return _Location(given, text, is_url)
    if is_url:
        return _Location(given, text.rstrip("/") + "/" + _FOLDER_LAYOUT, True)
    if not os.path.isdir(text):
        raise SchemaSetupError(
            f"schema location {given!r} is not a folder",
            "give a folder in the {group}/{kind}_{version}.json layout, or a template with {{.Group}}, "
            "{{.ResourceKind}} and {{.ResourceAPIVersion}}")
    return _Location(given, os.path.join(text, _FOLDER_LAYOUT), False)


def _shipped() -> tuple[_Location, ...]:
    """The schemas the package ships for the custom resources it emits: always a location."""
    if not SHIPPED_SCHEMAS.is_dir():
        return ()
    return (_Location(f"the shipped schemas ({SHIPPED_SCHEMAS})", os.path.join(str(SHIPPED_SCHEMAS), _FOLDER_LAYOUT),
                      False),)


# --------------------------------------------------------------------------- the store
_GROUP = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_VERSION = re.compile(r"[a-z0-9]+")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class SchemaStore:
    """Schemas for one Kubernetes version and a list of custom-resource schema locations.

    Cheap to create (nothing is read until an object of a kind is validated); pickles as its
    settings only, so it can be given to worker processes.
    """

    def __init__(self, kubernetes_version: str, locations: Sequence[str] = (), ignore_missing: bool = False):
        self.kubernetes_version = _normalize_version(kubernetes_version)
        self.locations = tuple(locations)
        self.ignore_missing = bool(ignore_missing)
        self._builtin_dir = _builtin_root() / f"v{self.kubernetes_version}.0-local-strict"
        if not self._builtin_dir.is_dir():
            supported = supported_kubernetes_versions()
            raise UnsupportedKubernetesVersion(
                f"Kubernetes {kubernetes_version} is not supported by the schema check",
                f"use one of {', '.join(supported)}" if supported else "reinstall kubernetes-validate")
        # the given locations first (earlier wins, so they override), the shipped schemas last
        self._locations = tuple(loc for loc in (_parse_location(g) for g in self.locations) if loc) + _shipped()
        self._lookup: dict[tuple[str, str], _Compiled | None] = {}

    def __reduce__(self) -> tuple:
        return (SchemaStore, (self.kubernetes_version, self.locations, self.ignore_missing))

    def __repr__(self) -> str:
        return (f"SchemaStore({self.kubernetes_version!r}, locations={list(self.locations)!r}, "
                f"ignore_missing={self.ignore_missing})")

    # ---- public
    def validate(self, obj: Any) -> list[SchemaViolation]:
        """Schema problems of one object, sorted by path; ``[]`` when valid. Never changes ``obj``."""
        if not isinstance(obj, dict):
            return [SchemaViolation("", f"a Kubernetes object must be a mapping, got {_describe(obj)}")]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        compiled = _UNSEEN
        if type(api_version) is str and type(kind) is str:
            compiled = self._lookup.get((api_version, kind), _UNSEEN)
        if compiled is _UNSEEN:
            problems = _identity_problems(obj)
            if problems:
                return problems
            compiled = self._find(obj["apiVersion"], obj["kind"])
        if compiled is None:
            return [] if self.ignore_missing else [self._missing(obj["apiVersion"], obj["kind"])]
        return compiled.validate(obj)

    def reference_validate(self, obj: Any) -> list[SchemaViolation]:
        """The same check with the ``jsonschema`` reference implementation (slow; for tests and
        debugging)."""
        if not isinstance(obj, dict):
            return [SchemaViolation("", f"a Kubernetes object must be a mapping, got {_describe(obj)}")]
        problems = _identity_problems(obj)
        if problems:
            return problems
        compiled = self._find(obj["apiVersion"], obj["kind"])
        if compiled is None:
            return [] if self.ignore_missing else [self._missing(obj["apiVersion"], obj["kind"])]
        return compiled.reference_validate(obj)

    def schema_source(self, api_version: str, kind: str) -> str | None:
        """The file or URL whose schema applies to ``kind`` in ``api_version`` (None: no schema)."""
        compiled = self._find(api_version, kind)
        return compiled.source if compiled else None

    # ---- lookup
    def _find(self, api_version: str, kind: str) -> _Compiled | None:
        key = (api_version, kind)
        if key not in self._lookup:
            self._lookup[key] = self._search(api_version, kind)
        return self._lookup[key]

    def _search(self, api_version: str, kind: str) -> _Compiled | None:
        group, _, version = api_version.rpartition("/")
        compiled = self._builtin(group, version, kind)
        if compiled is not None:
            return compiled
        values = {
            "Group": group,
            "ResourceKind": kind.lower(),
            "ResourceAPIVersion": version,
            "KindSuffix": "-" + (group.split(".")[0] + "-" if group else "") + version,
            "NormalizedKubernetesVersion": f"v{self.kubernetes_version}.0",
            "StrictSuffix": "-strict",
        }
        for location in self._locations:
            where = location.resolve(values)
            compiled = _load("url" if location.is_url else "file", where)
            if compiled is not None:
                return compiled
        return None

    def _builtin(self, group: str, version: str, kind: str) -> _Compiled | None:
        prefix = group.split(".")[0] + "-" if group else ""
        path = self._builtin_dir / f"{kind.lower()}-{prefix}{version}.json"
        compiled = _load("file", str(path), self._builtin_dir)
        if compiled is None:
            return None
        gvks = compiled.schema.get("x-kubernetes-group-version-kind") or []
        if {"group": group, "kind": kind, "version": version} not in gvks:
            return None  # e.g. a CRD "apps.example.com/v1 Deployment": not the built-in Deployment
        return compiled

    def _missing(self, api_version: str, kind: str) -> SchemaViolation:
        places = [f"Kubernetes {self.kubernetes_version} built-in schemas"] + [loc.given for loc in self._locations]
        return SchemaViolation(
            "", f"no schema for kind {kind} in apiVersion {api_version} (looked in: {'; '.join(places)}); "
                "fix apiVersion/kind, or add the CRD's schema to a schema location (render schemas import)")


_UNSEEN: Any = object()


def _normalize_version(version: str) -> str:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", str(version).strip())
    if not m:
        supported = supported_kubernetes_versions()
        raise UnsupportedKubernetesVersion(
            f"Kubernetes version {version!r} is not a version like 1.33 or 1.33.0",
            f"use one of {', '.join(supported)}" if supported else "give a version like 1.33")
    return f"{int(m.group(1))}.{int(m.group(2))}"


def _identity_problems(obj: dict) -> list[SchemaViolation]:
    problems = []
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if value is None:
            problems.append(SchemaViolation(field, "required field is missing"))
        elif not isinstance(value, str) or not value:
            problems.append(SchemaViolation(field, f"expected a non-empty string, got {_describe(value)}"))
    if problems:
        return problems
    group, _, version = obj["apiVersion"].rpartition("/")
    if not _VERSION.fullmatch(version) or (group and not _GROUP.fullmatch(group)):
        problems.append(SchemaViolation("apiVersion", f"not an apiVersion like v1 or apps/v1: {obj['apiVersion']!r}"))
    if not _KIND.fullmatch(obj["kind"]):
        problems.append(SchemaViolation("kind", f"not a kind like Deployment: {obj['kind']!r}"))
    return problems


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
