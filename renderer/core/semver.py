"""Semantic versions (semver.org 2.0.0): parsing and precedence order.

Used by ``load`` (catalog folder names) and the migration gate (which version came before).
"""

from __future__ import annotations

import re
from functools import total_ordering

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)


@total_ordering
class Version:
    __slots__ = ("text", "_key")

    def __init__(self, text: str):
        m = SEMVER_RE.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])")
        self.text = text
        major, minor, patch, pre, _build = m.groups()
        # A release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones.
        pre_key = (
            (1,)
            if pre is None
            else (0,) + tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        )
        self._key = (int(major), int(minor), int(patch), pre_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key == other._key

    def __lt__(self, other: "Version") -> bool:
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"

    def __str__(self) -> str:
        return self.text


def is_semver(text: str) -> bool:
    return bool(SEMVER_RE.match(text))
