"""YAML in and out, through LibYAML, with the guards the renderer relies on.

Reading (``load_document``): one document per file, no duplicate keys, no anchors or aliases
(so no alias bombs), every mapping key a string, and a side table of line numbers by field path
so that ``load`` can say ``file:line: field: problem``.

Writing (``dump``): sorted keys, block style, LibYAML's C emitter: the single way the renderer
turns objects into bytes, so the same object always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # LibYAML is a hard requirement for speed, but keep a readable failure.
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError as exc:  # pragma: no cover - the project pins a LibYAML build
    raise ImportError("PyYAML was built without LibYAML; reinstall pyyaml with libyaml available") from exc

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
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlProblem(1, "", "file is empty; expected a YAML mapping")
        lines: dict = {}
        _walk(node, (), lines, set())
        if not isinstance(node, yaml.MappingNode):
            raise YamlProblem(node.start_mark.line + 1, "", "expected a YAML mapping at the top level")
        data = loader.construct_document(node)
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


def parse_rendered(text: str) -> Any:
    """Parse what a template produced (trusted source, untrusted values): a single document."""
    return yaml.load(text, Loader=_Loader)


class _BlockDumper(_Dumper):
    """LibYAML's emitter; multi-line strings (PEM keys) as literal blocks so they read as written."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data and data.isprintable() is False and all(c.isprintable() or c == "\n" for c in data) \
            and not data.startswith((" ", "\n")) and " \n" not in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_BlockDumper.add_representer(str, _represent_str)


def dump(obj: Any) -> bytes:
    """The renderer's one serialisation: sorted keys, block style, UTF-8, LF."""
    return yaml.dump(
        obj, Dumper=_BlockDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    ).encode("utf-8")
