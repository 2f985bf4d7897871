"""Edits of a copy of the environments repo, as table entries: each returns a function that
applies the edit to the repo's root (the hostile-input and rejection tables use them)."""

from __future__ import annotations

from pathlib import Path


def edit(rel: str, old: str, new: str):
    """Replace the first ``old`` in file ``rel`` with ``new`` (``old`` must be there)."""
    def apply(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))
    return apply


def write(rel: str, text: str):
    """Write file ``rel`` (its folders made as needed)."""
    def apply(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return apply


def rename(rel: str, new_rel: str):
    def apply(root: Path) -> None:
        (root / rel).rename(root / new_rel)
    return apply
