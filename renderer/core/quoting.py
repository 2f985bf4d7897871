"""The single path from Python values into rendered objects.

Every ``{{ value }}`` in ``templates/`` goes through ``plain`` (from Jinja's ``finalize``, see
``pipeline.skeletons``): the value is checked and copied as plain data (strings, integers,
booleans, null, finite floats, lists, mappings with string keys), and the template's text only
ever holds a slot token in its place. The text is parsed as YAML with the tokens in it, and the
values are put into the parsed tree as data, so no value is ever read as YAML: it cannot start a
new key, document, tag or anchor, whatever characters it holds. Types that have no plain form
(arbitrary objects, bytes, non-finite floats, lone surrogates) are refused rather than guessed at.
"""

from __future__ import annotations

import math


def _text(value: str) -> str:
    """A string as it would round-trip through UTF-8: a surrogate pair becomes its character; a
    lone surrogate, which no UTF-8 file can hold, is refused."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("refusing to render a string with a lone surrogate (not text)") from None


def plain(value):
    """``value`` as fresh plain data (never shared with the caller), or TypeError/ValueError."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _text(value)
    if value is None or value is True or value is False or kind is int:
        return value
    if kind is dict or isinstance(value, dict):
        out = {}
        for key in sorted(value, key=_key):
            out[plain(str.__str__(key))] = plain(value[key])
        return out
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, str):  # a str subclass (an enum's value): its characters, as a str
        return plain(str.__str__(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("refusing to render a non-finite number")
        return float(value)
    raise TypeError(f"refusing to render a {type(value).__name__} into a template; convert it to str first")


def _key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"refusing to render a mapping with a {type(key).__name__} key; keys must be strings")
    return key
