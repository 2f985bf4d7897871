"""CRD import: turns CustomResourceDefinitions into strict JSON schemas for the schema gate.

Where it sits: outside the render flow. ``render schemas import CRD_FILE... --to DIR`` calls
``import_crds`` to fill a schema location that ``renderer.schemas.SchemaStore`` then reads
(``{DIR}/{group}/{kind lowercased}_{version}.json``, the kubeconform / CRDs-catalog layout).

Rules (shared/schemas/README.md, "Conversion rules"; kubeconform's openapi2jsonschema plus):

* one file per *served* version (``versions`` narrows the list);
* strict: ``additionalProperties: false`` on every structural node (properties / items /
  additionalProperties, root included) that has ``properties`` and does not set
  ``additionalProperties``, unless it has ``x-kubernetes-preserve-unknown-fields: true``;
  sub-schemas under allOf/anyOf/oneOf/not only add constraints and stay open;
* ``format: int-or-string`` / ``x-kubernetes-int-or-string: true`` (and controller-gen's
  ``anyOf: [integer, string]``) become ``oneOf: [{type: string}, {type: integer}]``;
* ``nullable: true`` adds ``"null"`` to ``type`` (and ``null`` to ``enum``);
* root: ``apiVersion``/``kind`` pinned by ``enum`` and required, ``metadata`` is a loose ObjectMeta,
  ``x-kubernetes-group-version-kind`` added; embedded resources get apiVersion/kind/metadata;
* ``required: []`` is dropped (draft-04 forbids it), a leading ``^(?i)`` becomes ``(?i)^``;
* YAML is read with YAML 1.2 booleans (``on``/``no``/``yes`` stay strings) and no timestamps.

Default, example and enum values are data and never rewritten.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from renderer.core.errors import RenderError

__all__ = ["CrdImportError", "convert_crd", "import_crds", "load_crds"]


class CrdImportError(RenderError):
    """A CRD file cannot be read or converted."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint or "give CustomResourceDefinition YAML files (as from `kubectl get crd -o yaml`)"


# --------------------------------------------------------------------------- YAML (1.2-style scalars)
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CrdLoader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader whose implicit booleans are only true/false and which parses no timestamps."""


_CrdLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CrdLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
# A plain "=" resolves to the YAML "value" tag, which SafeLoader cannot build: keep it a string.
_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))


def load_crds(path: Path) -> list[dict]:
    """Every CustomResourceDefinition in a YAML file: multi-document, or ``kind: List``."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.load_all(f, Loader=_CrdLoader))
    except OSError as exc:
        raise CrdImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CrdImportError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    crds: list[dict] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "CustomResourceDefinition":
            crds.append(doc)
        elif isinstance(doc.get("items"), list):
            crds.extend(i for i in doc["items"] if isinstance(i, dict) and i.get("kind") == "CustomResourceDefinition")
    return crds


# --------------------------------------------------------------------------- conversion
_INT_OR_STRING = ({"type": "string"}, {"type": "integer"})
_LEADING_FLAGS = re.compile(r"^\^\(\?([a-zA-Z]+)\)")

_STRING_MAP = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
# The description is kept word for word as the shared reference conversion writes it, so that
# imported schemas equal the ones in shared/schemas/crds.
_OBJECT_META = {
    "description": "Standard Kubernetes ObjectMeta (added by convert_crds.py; field names checked, "
                   "labels/annotations must be string maps).",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": ["array", "null"], "items": {"type": "string"}},
        "ownerReferences": {"type": ["array", "null"], "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "selfLink": {"type": "string"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": ["integer", "null"]},
        "managedFields": {"type": ["array", "null"], "items": {"type": "object"}},
    },
    "additionalProperties": False,
}


def _is_int_or_string_pair(alternatives: Any) -> bool:
    if not isinstance(alternatives, list) or len(alternatives) != 2:
        return False
    return sorted(map(_canonical, alternatives)) == sorted(map(_canonical, _INT_OR_STRING))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _convert(node: Any, structural: bool) -> Any:
    """A converted copy of one OpenAPI v3 schema node (``structural``: not below allOf/anyOf/oneOf/not)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)

    if out.get("x-kubernetes-int-or-string") is True or out.get("format") == "int-or-string":
        out.pop("x-kubernetes-int-or-string", None)
        out.pop("type", None)
        if out.get("format") == "int-or-string":
            del out["format"]
        if _is_int_or_string_pair(out.get("anyOf")):
            del out["anyOf"]
        if "oneOf" not in out or _is_int_or_string_pair(out["oneOf"]):
            out["oneOf"] = [dict(alt) for alt in _INT_OR_STRING]
        else:  # another oneOf is there already: require int-or-string as well
            out["allOf"] = [{"oneOf": [dict(alt) for alt in _INT_OR_STRING]}] + list(out.get("allOf", []))

    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str) and kind != "null":
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = kind + ["null"]
        elif kind is None and "oneOf" in out:
            out["oneOf"] = out["oneOf"] + [{"type": "null"}]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]

    if out.get("required") == []:
        del out["required"]
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _LEADING_FLAGS.sub(r"(?\1)^", out["pattern"])

    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _convert(sub, structural) for name, sub in out[key].items()}
    for key in ("additionalProperties", "items", "additionalItems"):
        value = out.get(key)
        if isinstance(value, dict):
            out[key] = _convert(value, structural)
        elif isinstance(value, list):
            out[key] = [_convert(sub, structural) for sub in value]
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_convert(sub, False) for sub in out[key]]
    if isinstance(out.get("not"), dict):
        out["not"] = _convert(out["not"], False)

    if out.get("x-kubernetes-embedded-resource") is True and "properties" in out:
        props = out["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})

    if (structural and "properties" in out and "additionalProperties" not in out
            and out.get("x-kubernetes-preserve-unknown-fields") is not True):
        out["additionalProperties"] = False
    return out


def convert_crd(crd: dict, version: str, openapi_schema: dict) -> dict:
    """The strict JSON schema of one version of a CRD."""
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schema = _convert(copy.deepcopy(openapi_schema), structural=True)
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {
        "description": props.get("apiVersion", {}).get("description", "APIVersion of this object."),
        "type": "string",
        "enum": [f"{group}/{version}"],
    }
    props["kind"] = {
        "description": props.get("kind", {}).get("description", "Kind of this object."),
        "type": "string",
        "enum": [kind],
    }
    props["metadata"] = copy.deepcopy(_OBJECT_META)
    required = list(schema.get("required", []))
    required += [field for field in ("apiVersion", "kind") if field not in required]
    schema["required"] = required
    schema.setdefault("additionalProperties", False)
    head: dict = {"description": schema.pop("description")} if "description" in schema else {}
    head["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    head.update(schema)
    return head


def _identity(crd: dict, path: Path) -> tuple[str, str]:
    spec = crd.get("spec")
    names = spec.get("names") if isinstance(spec, dict) else None
    if not (isinstance(spec, dict) and isinstance(spec.get("group"), str)
            and isinstance(names, dict) and isinstance(names.get("kind"), str)):
        name = (crd.get("metadata") or {}).get("name", "?")
        raise CrdImportError(f"{path}: CustomResourceDefinition {name} has no spec.group or spec.names.kind")
    return spec["group"], names["kind"]


def import_crds(files: Sequence[Path], to_dir: Path, versions: Sequence[str] | None = None) -> list[Path]:
    """Convert every served version (or only those in ``versions``) of every CRD in ``files`` into
    ``to_dir/<group>/<kind lowercased>_<version>.json``; returns the files written, in order."""
    written: list[Path] = []
    wanted = set(versions) if versions else None
    for path in map(Path, files):
        crds = load_crds(path)
        if not crds:
            raise CrdImportError(f"{path}: no CustomResourceDefinition in the file")
        for crd in crds:
            group, kind = _identity(crd, path)
            legacy = (crd["spec"].get("validation") or {}).get("openAPIV3Schema")  # apiextensions v1beta1
            for entry in crd["spec"].get("versions") or []:
                version = entry.get("name")
                schema = (entry.get("schema") or {}).get("openAPIV3Schema") or legacy
                if not entry.get("served", False) or not schema or (wanted is not None and version not in wanted):
                    continue
                dest = Path(to_dir) / group / f"{kind.lower()}_{version}.json"
                dest.parent.mkdir(parents=True, exist_ok=True)
                text = json.dumps(convert_crd(crd, version, schema), indent=2, ensure_ascii=False) + "\n"
                dest.write_text(text, encoding="utf-8")
                written.append(dest)
    if not written:
        only = f" among {', '.join(sorted(wanted))}" if wanted else ""
        raise CrdImportError(f"no served CRD version with an openAPIV3Schema{only} in {', '.join(map(str, files))}",
                             "check the files and the versions asked for")
    return written
