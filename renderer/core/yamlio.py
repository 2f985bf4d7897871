"""YAML in and out, through LibYAML, with the guards the renderer relies on.

Reading (``load_document``): one document per file, no duplicate keys, no anchors or aliases
(so no alias bombs), every mapping key a string, and a side table of line numbers by field path
so that ``load`` can say ``file:line: field: problem``.

Writing (``dump``, re-exported from ``yamlwrite``): sorted keys, block style, byte for byte what
LibYAML's emitter writes: the single way the renderer turns objects into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # LibYAML is a hard requirement for speed, but keep a readable failure.
    from yaml import CSafeLoader as _Loader
except ImportError as exc:  # pragma: no cover - the project pins a LibYAML build
    raise ImportError("PyYAML was built without LibYAML; reinstall pyyaml with libyaml available") from exc

from renderer.core.yamlwrite import MEMO_LIMIT as _MEMO_LIMIT, STR_TAG, dump, dump_reference  # noqa: E402,F401  (re-exported)

MAX_NUMBER_CHARS = 64  # a plain scalar that starts like a number: longer is hostile
MAX_INPUT_BYTES = 1 << 20  # 1 MiB: a manifest is a few KiB; anything bigger is hostile or a mistake


class YamlProblem(Exception):
    """The text is not a single, plain YAML mapping. ``line`` is 1-based (0 = unknown)."""

    def __init__(self, line: int, field: str, message: str):
        super().__init__(message)
        self.line = line
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Document:
    data: Any
    lines: dict  # field path tuple -> 1-based line

    def line_of(self, path: tuple) -> int:
        """Line of the deepest known prefix of ``path`` (the field itself, or its parent)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def field_name(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _walk(node: yaml.Node, path: tuple, lines: dict, seen: set) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        if len(node.value) > MAX_NUMBER_CHARS and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            # never converted when huge: int() of 5,000 digits fails, and 1e999999999 is no quantity
            raise YamlProblem(node.start_mark.line + 1, field_name(path),
                              f"a number of {len(node.value)} characters is too long (at most {MAX_NUMBER_CHARS})")
        return
    if id(node) in seen:
        raise YamlProblem(
            node.start_mark.line + 1, field_name(path), "YAML aliases (*ref) are not allowed in renderer input"
        )
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise YamlProblem(
                    key_node.start_mark.line + 1, field_name(path), "mapping keys must be plain strings"
                )
            key = key_node.value
            if key == "<<":
                raise YamlProblem(key_node.start_mark.line + 1, field_name(path), "YAML merge keys (<<) are not allowed")
            if key in keys:
                raise YamlProblem(
                    key_node.start_mark.line + 1,
                    field_name(path + (key,)),
                    f"duplicate key (first defined on line {keys[key]})",
                )
            keys[key] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines, seen)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines, seen)


def load_document(text: bytes) -> Document:
    """Parse one YAML mapping with guards; raise ``YamlProblem`` on anything unusual."""
    if len(text) > MAX_INPUT_BYTES:
        raise YamlProblem(0, "", f"file is larger than {MAX_INPUT_BYTES} bytes")
    if b"\x00" in text:
        raise YamlProblem(0, "", "file contains NUL bytes; not a YAML text file")
    if b"&" in text or b"*" in text:
        _reject_anchors(text)
    loader = _TemplateLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlProblem(1, "", "file is empty; expected a YAML mapping")
        lines: dict = {}
        _walk(node, (), lines, set())
        if not isinstance(node, yaml.MappingNode):
            raise YamlProblem(node.start_mark.line + 1, "", "expected a YAML mapping at the top level")
        data = _build(loader, node)  # _walk refused duplicate and merge keys, aliases, odd keys
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlProblem(line, "", f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(0, "", f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Document(data, lines)


def _reject_anchors(text: bytes) -> None:
    """Anchors and aliases are refused before composing, so no alias bomb is ever expanded."""
    loader = _Loader(text)
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                kind = "aliases (*" if isinstance(event, yaml.AliasEvent) else "anchors (&"
                raise YamlProblem(
                    event.start_mark.line + 1, "", f"YAML {kind}{anchor}) are not allowed in renderer input"
                )
            if isinstance(event, yaml.StreamEndEvent):
                return
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(mark.line + 1 if mark else 0, "", f"invalid YAML: {exc.problem or exc.context}") from None
    finally:
        loader.dispose()




class _TemplateLoader(_Loader):
    """LibYAML's parser and composer; scalar resolution memoised and construction done by
    ``_build`` below: the same objects as PyYAML's SafeConstructor (tests compare them on every
    golden file), several times faster on the renderer's hot path."""

    _resolved: dict = {}

    def resolve(self, kind, value, implicit):
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        if not implicit[0]:
            return STR_TAG  # a quoted or block scalar: what BaseResolver returns (SafeLoader has no path resolvers)
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._resolved) < _MEMO_LIMIT:
                self._resolved[key] = tag
        return tag


_constructed: dict = {}


def _build(loader: _TemplateLoader, node: yaml.Node) -> Any:
    kind = type(node)
    if kind is yaml.ScalarNode:
        if node.tag == STR_TAG:
            return node.value
        key = (node.tag, node.value)
        try:
            return _constructed[key]
        except KeyError:
            value = loader.construct_object(node, deep=True)
            if len(_constructed) < _MEMO_LIMIT:
                _constructed[key] = value
            return value
    if kind is yaml.MappingNode:
        if node.tag != "tag:yaml.org,2002:map":
            return loader.construct_object(node, deep=True)
        out = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ValueError(f"line {key_node.start_mark.line + 1}: merge keys (<<) are not allowed")
            key = _build(loader, key_node)
            if key in out:
                raise ValueError(f"line {key_node.start_mark.line + 1}: duplicate or merge key {key!r}")
            out[key] = _build(loader, value_node)
        return out
    if node.tag != "tag:yaml.org,2002:seq":
        return loader.construct_object(node, deep=True)
    return [_build(loader, item) for item in node.value]


def parse_rendered(text: str) -> list:
    """Parse what a template produced (trusted text, untrusted values): every document.
    Raises ``yaml.YAMLError`` or ``ValueError`` (duplicate key) on a broken template."""
    loader = _TemplateLoader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(_build(loader, node))
        return docs
    finally:
        loader.dispose()


def parse_rendered_reference(text: str) -> list:
    """The same, through PyYAML's own constructor: the reference the fast path is tested against."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
