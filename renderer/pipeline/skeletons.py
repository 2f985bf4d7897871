"""Part of stage 4 (render): a template's text parsed once per shape, filled with values per bundle.

load -> plan -> verify -> **render** -> validate -> write.  Jinja renders a template with every
``{{ value }}`` replaced by a slot token (``__render_slot_<n>__``, Jinja's ``finalize``) and the
value kept aside as plain data (``quoting.plain``). That text, the *skeleton*, is the same for
every bundle whose loops and conditions went the same way, so it is parsed as YAML once (LibYAML,
``yamlio.parse_rendered``) and remembered; each render puts its own values into a fresh copy of
the parsed tree. A value never passes through the YAML parser, so nothing it holds can become
YAML structure. A token must be a whole node (``key: {{ v }}``, ``{{ k }}: v``, ``- {{ v }}``,
``[{{ v }}]``); one inside a longer scalar is refused, and so is a key from a value that is not a
string or that repeats another key. Each shape also keeps, per document, its ``yamlwrite.Program``:
the document's bytes worked out once but for its values, so writing it costs only their texts.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

import jinja2

from renderer.core.quoting import plain
from renderer.core.yamlio import dump, parse_rendered
from renderer.core.yamlwrite import Program

SLOT = "__render_slot_"
VALUES = "_render_slot_values"  # the render context's list of this render's values
_TOKEN = re.compile(r"__render_slot_(0|[1-9][0-9]*)__\Z")
MAX_SKELETONS = 4096  # distinct shapes remembered per process; past it, parsed every time (still correct)


class SkeletonError(ValueError):
    """The template put a value somewhere other than a whole YAML node."""


@jinja2.pass_context  # also keeps Jinja from calling it at compile time on constant expressions
def slot(context, value) -> str:
    """Jinja's ``finalize``: keep ``value`` (checked, as plain data) aside; the text gets its token."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    values = context[VALUES]
    values.append(plain(value))
    return f"{SLOT}{len(values) - 1}__"


class _Slot:
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _compile(node, count: int, used: set):
    """The parsed skeleton with each token replaced by its ``_Slot``."""
    kind = type(node)
    if kind is str:
        if SLOT not in node:
            return node
        match = _TOKEN.match(node)
        if match is None:
            raise SkeletonError("a {{ value }} must be a whole YAML node (`key: {{ v }}` or `- {{ v }}`), "
                                "not part of a longer text")
        index = int(match.group(1))
        if index >= count or index in used:
            raise SkeletonError(f"the template's text holds the slot token {node!r} of no value")
        used.add(index)
        return _Slot(index)
    if kind is dict:
        return {_compile(k, count, used): _compile(v, count, used) for k, v in node.items()}
    if kind is list:
        return [_compile(item, count, used) for item in node]
    return node


def _fill(node, values: list):
    kind = type(node)
    if kind is dict:
        out = {}
        for key, value in node.items():
            if type(key) is _Slot:
                key = values[key.index]
                if type(key) is not str:
                    raise SkeletonError(f"a mapping key from a value must be a string, not {type(key).__name__}")
            out[key] = _fill(value, values)
        if len(out) != len(node):
            raise SkeletonError("a mapping key from a value repeats another key of the same mapping")
        return out
    if kind is list:
        return [_fill(item, values) for item in node]
    if kind is _Slot:
        return values[node.index]  # fresh data from ``plain``, each slot used once: never shared
    return node


def _copy(node):
    """A skeleton's tree, fresh containers, the same slots."""
    kind = type(node)
    if kind is dict:
        return {k: _copy(v) for k, v in node.items()}
    if kind is list:
        return [_copy(item) for item in node]
    return node


class Shape:
    """One template text, parsed: its documents with slots, and their compiled writers."""

    __slots__ = ("docs", "_programs")

    def __init__(self, docs: list):
        self.docs = docs
        self._programs: dict = {}

    def objects(self, values: list) -> list:
        """The documents with ``values`` in their slots (fresh trees, never shared)."""
        return [_fill(doc, values) for doc in self.docs]

    def written(self, values: list, finish: Callable[[dict], dict],
                on_skeleton: Callable[[dict], Optional[dict]]) -> list[tuple[dict, bytes]]:
        """Each document filled with ``values`` and given to ``finish`` (the caller's checks and
        last touches), with its bytes: ``dump`` of the finished object. ``on_skeleton`` makes the
        same touches on a copy of the skeleton, or returns None where it could not act on the
        skeleton as on every filled object (a touched field from a value): that document is
        written by ``dump`` itself. A document's ``Program`` is compiled once per ``on_skeleton``."""
        out = []
        for i, doc in enumerate(self.docs):
            obj = finish(_fill(doc, values))
            key = (i, on_skeleton)
            program = self._programs.get(key, False)
            if program is False:
                tree = on_skeleton(_copy(doc))
                program = self._programs[key] = Program.compile(tree, _Slot) if tree is not None else None
            if program is None:
                out.append((obj, dump(obj)))
            else:
                out.append((obj, program.dump(values, lambda: obj, lambda node: _fill(node, values))))
        return out


class Skeletons:
    """The parsed shapes of one process's renders, by text."""

    def __init__(self, limit: int = MAX_SKELETONS):
        self.limit = limit
        self._shapes: dict[str, Shape] = {}

    def shape(self, text: str, values: list) -> Shape:
        """The shape of ``text`` (rendered with ``values``), parsed once. Raises ``SkeletonError``,
        or ``yaml.YAMLError``/``ValueError`` when the text is not YAML."""
        shape = self._shapes.get(text)
        if shape is None:
            used: set = set()
            shape = Shape([_compile(doc, len(values), used) for doc in parse_rendered(text)])
            if len(self._shapes) < self.limit:
                self._shapes[text] = shape
        return shape

    def objects(self, text: str, values: list) -> list:
        """The documents of ``text`` with ``values`` in their slots (``shape(...).objects``)."""
        return self.shape(text, values).objects(values)
