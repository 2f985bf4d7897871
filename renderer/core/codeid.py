"""The identity of the code that computes a cached result: the renderer's own modules and the
versions of the libraries it names.

Where it sits: below every cache under RENDER_CACHE_DIR whose entries are a function of the
renderer's code (``pipeline.parsedinputs``: parsed documents; ``gates.migration_verdicts``: the
migration gate's findings). Any change of a module or of one of those libraries gives another
digest, so such a cache starts afresh instead of answering for code that no longer runs.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from renderer import __version__

_PACKAGE = Path(__file__).resolve().parent.parent


def _modules() -> bytes:
    """Every module of the renderer (relative path and bytes)."""
    return b"".join(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
                    for path in sorted(_PACKAGE.rglob("*.py")))


def code_digest(tag: str, libraries: tuple[str, ...]) -> str:
    """sha256 over ``tag`` (the cache's own format version), the renderer's version, the installed
    versions of ``libraries`` (distribution names) and every module of the renderer."""
    h = hashlib.sha256(f"{tag}\0{__version__}\0".encode())
    for name in libraries:
        try:
            h.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=?\0".encode())
    h.update(_modules())
    return h.hexdigest()
