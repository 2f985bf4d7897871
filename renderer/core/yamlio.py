"""YAML in and out, through LibYAML, with the guards the renderer relies on.

Reading (``load_document``): one document per file, no duplicate keys, no anchors or aliases
(so no alias bombs), every mapping key a string, and a side table of line numbers by field path
so that ``load`` can say ``file:line: field: problem``.

Writing (``dump``): sorted keys, block style, LibYAML's C emitter: the single way the renderer
turns objects into bytes, so the same object always gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

try:  # LibYAML is a hard requirement for speed, but keep a readable failure.
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError as exc:  # pragma: no cover - the project pins a LibYAML build
    raise ImportError("PyYAML was built without LibYAML; reinstall pyyaml with libyaml available") from exc

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


STR_TAG = "tag:yaml.org,2002:str"
_MEMO_LIMIT = 200_000  # distinct scalars remembered per process (keys, names, literals repeat a lot)


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


class _BlockDumper(_Dumper):
    """LibYAML's emitter; multi-line strings (PEM keys) as literal blocks so they read as written."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data and all(c.isprintable() or c == "\n" for c in data) \
            and not data.startswith((" ", "\n")) and " \n" not in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_BlockDumper.add_representer(str, _represent_str)


def dump_reference(obj: Any) -> bytes:
    """PyYAML's own serialisation: sorted keys, block style, UTF-8, LF. ``dump`` gives these bytes."""
    return yaml.dump(
        obj, Dumper=_BlockDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    ).encode("utf-8")


class _Fallback(Exception):
    """A value the fast writer does not handle (floats, multi-line or very long keys): use PyYAML."""


_BREAKS = re.compile("[\n\r\x85\u2028\u2029]")
# strings PyYAML writes plain in block context (when they resolve to a string): no space, no break,
# no indicator first, a ':' never last (": " and a final ':' are block indicators; ',' is one in flow only)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./=:,-]*(?<!:)\Z")
_PLAIN_RESOLVER = yaml.resolver.Resolver()
_value_text: dict = {}
_key_text: dict = {}


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is not str:
        raise _Fallback
    text = _value_text.get(value)
    if text is None:
        if _PLAIN.match(value) and _PLAIN_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == STR_TAG:
            text = value  # PyYAML writes these plain: no indicator, no space, no break, resolves to a string
        else:
            text = dump_reference({"k": value}).decode()[3:-1]
            if _BREAKS.search(text):
                raise _Fallback  # a line break (YAML counts five): its text depends on the indentation
        if len(_value_text) < _MEMO_LIMIT:
            _value_text[value] = text
    return text


_block_text: dict = {}


def _block(value: str, indent: int) -> str:
    """``|`` header and lines of a multi-line string that is a mapping value at column ``indent``:
    PyYAML's own text at column 0 (memoised), its content lines moved right by ``indent`` (a
    literal block's lines are indented from their key; empty lines carry no indentation). A
    string PyYAML does not write as a literal block, or writes with ``|+`` (which can end the
    document with ``...``), goes to PyYAML directly."""
    parts = _block_text.get(value)
    if parts is None:
        text = dump_reference({"k": value}).decode()
        header, _, body = text[3:].partition("\n")
        if not header.startswith("|") or header.endswith("+") or "\r" in body or _BREAKS.search(body.replace("\n", "")):
            raise _Fallback
        parts = (header, tuple(body.split("\n")[:-1]))
        if len(_block_text) < _MEMO_LIMIT:
            _block_text[value] = parts
    header, lines = parts
    pad = " " * indent
    return header + "\n" + "".join(pad + line + "\n" if line else "\n" for line in lines)


def _key(value: Any) -> str:
    if type(value) is not str:
        raise _Fallback
    text = _key_text.get(value)
    if text is None:
        text = dump_reference({value: 1}).decode()
        if not text.endswith(": 1\n") or text.startswith("? ") or _BREAKS.search(text[:-1]):
            raise _Fallback
        text = text[:-4]
        if len(_key_text) < _MEMO_LIMIT:
            _key_text[value] = text
    return text


def _mapping(d: dict, indent: int, first: str, out: list) -> None:
    pad = " " * indent
    lead = first
    key_text, value_text = _key_text.get, _value_text.get  # the memos, looked up inline: this loop is hot
    for k, v in sorted(d.items()):  # keys are unique, so the sort never compares values
        line = lead + (key_text(k) or _key(k))
        lead = pad
        kind = type(v)
        if kind is str:
            if "\n" in v:
                out.append(line + ": " + _block(v, indent))
            else:
                out.append(line + ": " + (value_text(v) or _scalar(v)) + "\n")
        elif kind is dict:
            if v:
                out.append(line + ":\n")
                _mapping(v, indent + 2, " " * (indent + 2), out)
            else:
                out.append(line + ": {}\n")
        elif kind is list:
            if v:
                out.append(line + ":\n")
                _sequence(v, indent, pad, out)
            else:
                out.append(line + ": []\n")
        else:
            out.append(line + ": " + _scalar(v) + "\n")


def _sequence(items: list, indent: int, first: str, out: list) -> None:
    pad = " " * indent
    lead = first
    for item in items:
        prefix = lead + "- "
        lead = pad
        if type(item) is dict:
            if item:
                _mapping(item, indent + 2, prefix, out)
            else:
                out.append(prefix + "{}\n")
        elif type(item) is list:
            if item:
                _sequence(item, indent + 2, prefix, out)
            else:
                out.append(prefix + "[]\n")
        else:
            out.append(prefix + _scalar(item) + "\n")


def dump(obj: Any) -> bytes:
    """The renderer's one serialisation: byte for byte what ``dump_reference`` (PyYAML through
    LibYAML) writes, by a writer specialised to plain data; scalar texts come from PyYAML itself
    (memoised), so quoting decisions are PyYAML's. Anything unusual goes to PyYAML directly."""
    if type(obj) is not dict or not obj:
        return dump_reference(obj)
    out: list = []
    try:
        _mapping(obj, 0, "", out)
    except _Fallback:
        return dump_reference(obj)
    return "".join(out).encode("utf-8")
