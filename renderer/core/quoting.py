"""The single quoting path from Python values into template text.

Every ``{{ value }}`` in ``templates/`` goes through ``quote`` (Jinja's ``finalize``). A string
always becomes one double-quoted YAML scalar, a list or mapping one JSON flow collection (JSON
is YAML), so no value can start a new key, document or anchor. Types that have no safe textual
form (floats that aren't finite, arbitrary objects) are refused rather than guessed at.
"""

from __future__ import annotations

import json
import math
import re

_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _json(value) -> str:
    text = json.dumps(value, ensure_ascii=True, sort_keys=True, allow_nan=False)
    # JSON writes characters beyond U+FFFF as surrogate pairs; YAML needs one \U escape.
    # A pair can only come from json's own escaping: a literal backslash is written as \\,
    # so an odd run of backslashes before 'u' is an escape, which the pattern below honours.
    if "\\ud" in text:
        text = re.sub(r"(?<!\\)((?:\\\\)*)" + _SURROGATE_PAIR.pattern, lambda m: m.group(1) + _astral_from(m), text)
    return text


def _astral_from(m: re.Match) -> str:
    hi, lo = int(m.group(2), 16), int(m.group(3), 16)
    return "\\U%08x" % (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))


def quote(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("refusing to render a non-finite number")
        return repr(value)
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        return _json(value)
    if isinstance(value, (list, tuple, dict)):
        return _json(value)
    raise TypeError(f"refusing to render a {type(value).__name__} into a template; convert it to str first")
