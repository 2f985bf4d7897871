"""Writing YAML: the renderer's one serialisation of objects into bytes, and its compiled form.

Where it sits: core, below render (``pipeline.render`` writes every bundle file through it) and the
GitOps writer. ``dump`` gives byte for byte what ``dump_reference`` (PyYAML through LibYAML's
emitter: sorted keys, block style, UTF-8, LF, literal blocks for multi-line text) writes, by a writer
specialised to plain data; scalar texts come from PyYAML itself (memoised), so quoting decisions are
PyYAML's. Anything unusual goes to PyYAML directly.

``Program`` is ``dump`` compiled for a tree with holes (the parsed skeleton of a template, see
``pipeline.skeletons``): the text of everything that is not a hole is worked out once, so writing
an object of that shape costs only its values' texts. ``Program.dump`` gives exactly ``dump`` of
the filled tree; a value the fast writer does not handle sends the whole object to ``dump``'s own
fallback, as ``dump`` would.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

import yaml

from yaml import CSafeDumper as _Dumper  # yamlio refuses a PyYAML without LibYAML first

STR_TAG = "tag:yaml.org,2002:str"
MEMO_LIMIT = 200_000  # distinct scalars remembered per process (keys, names, literals repeat a lot)


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
        if len(_value_text) < MEMO_LIMIT:
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
        if len(_block_text) < MEMO_LIMIT:
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
        if len(_key_text) < MEMO_LIMIT:
            _key_text[value] = text
    return text


def _mapping(d: dict, indent: int, first: str, out: list) -> None:
    pad = " " * indent
    lead = first
    key_text, value_text = _key_text.get, _value_text.get  # the memos, looked up inline: this loop is hot
    for k, v in sorted(d.items()):  # keys are unique, so the sort never compares values
        line = lead + (key_text(k) or _key(k))
        lead = pad
        if type(v) is str and "\n" not in v:
            out.append(line + ": " + (value_text(v) or _scalar(v)) + "\n")
        else:
            _entry(line, v, indent, pad, out)


def _entry(line: str, v: Any, indent: int, pad: str, out: list) -> None:
    """One mapping entry: ``line`` is its lead and key, ``v`` its value."""
    kind = type(v)
    if kind is str:
        if "\n" in v:
            out.append(line + ": " + _block(v, indent))
        else:
            out.append(line + ": " + (_value_text.get(v) or _scalar(v)) + "\n")
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
        _item(lead + "- ", item, indent, out)
        lead = pad


def _item(prefix: str, item: Any, indent: int, out: list) -> None:
    """One sequence item: ``prefix`` is its lead and ``- ``."""
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


class Program:
    """``dump`` of one shape of tree, compiled: literal texts and holes, in output order.

    ``tree`` holds hole objects (instances of ``hole``, with an ``index`` into the values) where
    the values go: as mapping values, sequence items or mapping keys. A mapping with a hole among
    its keys is written when filled (its order depends on the keys). ``compile`` returns None for
    a tree ``dump`` would hand to PyYAML whatever the values (not a mapping, a float, an odd key).
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: list):
        self._parts = parts

    @classmethod
    def compile(cls, tree: Any, hole: type) -> "Optional[Program]":
        if type(tree) is not dict or not tree:
            return None
        out: list = []
        try:
            _c_mapping(tree, 0, "", out, hole)
        except (_Fallback, TypeError):  # TypeError: keys that do not sort (dump fails on them too)
            return None
        parts: list = []
        for part in out:  # adjacent texts joined once
            if type(part) is str and parts and type(parts[-1]) is str:
                parts[-1] += part
            else:
                parts.append(part)
        return cls(parts)

    def dump(self, values: list, filled: Callable[[], Any], fill: Callable[[Any], Any]) -> bytes:
        """The bytes ``dump(filled())`` gives: ``values`` go into the holes; ``fill(node)`` is a
        subtree of the tree with its values in (for a mapping keyed by holes); ``filled()`` the
        whole filled object (only for the fallback)."""
        out: list = []
        try:
            for part in self._parts:
                if type(part) is str:
                    out.append(part)
                elif part[0] == 0:
                    _entry(part[1], values[part[2]], part[3], part[4], out)
                elif part[0] == 1:
                    _item(part[1], values[part[2]], part[3], out)
                else:
                    _mapping(fill(part[1]), part[2], part[3], out)
        except _Fallback:
            return dump_reference(filled())
        return "".join(out).encode("utf-8")


def _c_mapping(d: dict, indent: int, first: str, out: list, hole: type) -> None:
    if any(type(k) is hole for k in d):
        out.append((2, d, indent, first))
        return
    pad = " " * indent
    lead = first
    for k, v in sorted(d.items()):
        line = lead + _key(k)
        lead = pad
        kind = type(v)
        if kind is hole:
            out.append((0, line, v.index, indent, pad))
        elif kind is dict and v:
            out.append(line + ":\n")
            _c_mapping(v, indent + 2, " " * (indent + 2), out, hole)
        elif kind is list and v:
            out.append(line + ":\n")
            _c_sequence(v, indent, pad, out, hole)
        else:
            _entry(line, v, indent, pad, out)


def _c_sequence(items: list, indent: int, first: str, out: list, hole: type) -> None:
    pad = " " * indent
    lead = first
    for item in items:
        prefix = lead + "- "
        lead = pad
        kind = type(item)
        if kind is hole:
            out.append((1, prefix, item.index, indent))
        elif kind is dict and item:
            _c_mapping(item, indent + 2, prefix, out, hole)
        elif kind is list and item:
            _c_sequence(item, indent + 2, prefix, out, hole)
        else:
            _item(prefix, item, indent, out)
