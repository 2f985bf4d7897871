"""How pydantic's validation errors of an input file become ``path:line: field: problem`` lines.

Where it sits: ``pipeline.load`` (stage 1) reports each error of a model's validation with these:
the location trimmed to what the document has, and pydantic's message in the words of the README.
"""

from __future__ import annotations


def real_path(data, loc: tuple) -> tuple:
    """Trim a pydantic error location to the part that exists in (or is missing from) the data."""
    out: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not part.startswith(("str", "int", "[")):
            out.append(part)  # a missing or unknown key: name it, it has no line of its own
            break
        else:
            continue
    return tuple(out)


def message(err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field (not part of the schema; check the spelling)"
    if kind == "missing":
        return "required field is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg
