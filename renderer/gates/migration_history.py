"""A plugin's catalog versions and their migration files, and the contract-step markers in them.

Read by the migration gate (``renderer.gates.migrations``) and, through ``unsafe_move``, by the
pipeline when a tenant moves between versions. Files are never read through a symlink.
"""

from __future__ import annotations

import re
from pathlib import Path

from renderer.core.semver import Version, is_semver

CONTRACT_MARKER_RE = re.compile(r"^[ \t]*--[ \t]*contract-since:[ \t]*(\S+)[ \t]*\r?$")


def rollback_floor(catalog_plugin_dir: Path, version: str) -> str | None:
    """The oldest version whose code may run on the schema that ``version``'s migrations leave.

    It is the highest ``-- contract-since:`` version among ``version``'s migration files (they
    hold the whole history, so every earlier contract step is counted); None when there is none,
    i.e. any earlier version may. The pipeline should move a tenant between versions A and B only
    if ``min(A, B) >= rollback_floor(max(A, B))``; a fresh install is always fine.
    """
    files = migrations(Path(catalog_plugin_dir) / version)
    best: Version | None = None
    for data in files.values():
        for _line, text in markers(data):
            if text is not None and is_semver(text):
                v = Version(text)
                if best is None or best < v:
                    best = v
    return None if best is None else best.text


def unsafe_move(catalog_plugin_dir: Path, current: str, target: str) -> str | None:
    """Why moving a tenant from ``current`` to ``target`` (either way) would break it, or None.

    Safe when ``min(current, target) >= rollback_floor(max(current, target))``: the older of the
    two can still run on the schema the newer one's migrations leave."""
    if current == target or not (is_semver(current) and is_semver(target)):
        return None
    low, high = sorted((Version(current), Version(target)))
    floor = rollback_floor(catalog_plugin_dir, high.text)
    if floor is None or not low < Version(floor):
        return None
    return (f"moving from {current} to {target} crosses a contract step: {high.text}'s migrations drop what "
            f"versions before {floor} still use; move to {floor} first, then to {target}")


def subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def versions(plugin_dir: Path) -> list[tuple[Version, str]]:
    return sorted((Version(d.name), d.name) for d in subdirs(plugin_dir) if is_semver(d.name))


def previous(plugin_dir: Path, version: str) -> str | None:
    this = Version(version)
    below = [text for ver, text in versions(plugin_dir) if ver < this]
    return below[-1] if below else None


def migrations(version_dir: Path) -> dict[str, bytes]:
    """The version's regular ``*.sql`` files; never through a symlink (``_links`` reports those)."""
    mig_dir = version_dir / "migrations"
    if mig_dir.is_symlink() or not mig_dir.is_dir():
        return {}
    return {
        p.name: p.read_bytes()
        for p in sorted(mig_dir.iterdir(), key=lambda p: p.name)
        if p.suffix == ".sql" and not p.is_symlink() and p.is_file()
    }


def first_difference(old: bytes, new: bytes) -> int:
    old_lines, new_lines = old.split(b"\n"), new.split(b"\n")
    for i, (a, b) in enumerate(zip(old_lines, new_lines)):
        if a != b:
            return i + 1
    return min(len(old_lines), len(new_lines)) + 1


def markers(data: bytes) -> list[tuple[int, str | None]]:
    """``contract-since`` lines: (1-based line, version text, or None when malformed)."""
    out = []
    for i, raw in enumerate(data.split(b"\n")):
        if b"contract-since" not in raw.lower():
            continue
        m = CONTRACT_MARKER_RE.match(raw.decode("utf-8", "replace"))
        out.append((i + 1, m.group(1) if m and is_semver(m.group(1)) else None))
    return out
