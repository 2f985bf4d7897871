"""JSON text the way ``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)`` writes it.

Where it sits: core, below render: every bundle's bundle.json (``pipeline.provenance``) is written
through ``pretty``. The standard library's C encoder cannot indent, so an indented dump runs its
pure-Python encoder, a few hundred microseconds a bundle; ``pretty`` lays out containers itself and
leaves every scalar to the C encoder, so the bytes are the library's own (tests compare them on
generated documents). A value that is not plain JSON data (a non-string key, a tuple, a float
subclass...) goes to ``json.dumps`` itself.
"""

from __future__ import annotations

import json
from typing import Any

_scalar = json.JSONEncoder(ensure_ascii=False).encode  # numbers, true/false/null as json writes them
_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str (C)


class _NotPlain(Exception):
    pass


def pretty(value: Any) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)``, faster."""
    out: list = []
    try:
        _emit(value, "\n", out)
    except _NotPlain:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return "".join(out)


def _emit(value: Any, newline: str, out: list) -> None:
    kind = type(value)
    if kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        lead = "{" + inner
        for key in value:
            if type(key) is not str:  # json converts such keys (and may not sort them): its own way
                raise _NotPlain
        for key in sorted(value):
            out.append(lead + _string(key) + ": ")
            _emit(value[key], inner, out)
            lead = "," + inner
        out.append(newline + "}")
    elif kind is list:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        lead = "[" + inner
        for item in value:
            out.append(lead)
            _emit(item, inner, out)
            lead = "," + inner
        out.append(newline + "]")
    elif kind is str:
        out.append(_string(value))
    elif kind is int or kind is bool or value is None or kind is float:
        out.append(_scalar(value))
    else:
        raise _NotPlain
