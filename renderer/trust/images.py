"""Image references: ``host[:port]/path[:tag][@sha256:hex]`` split and checked, and the digest of bytes.

Where it sits: ``trust``, below ``registry`` (which fetches what a reference names) and
``signatures``; it reads nothing and calls nothing outside the standard library.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Optional

from renderer.trust.credentials import DOCKER_HUB

DOCKER_HUB_API = "registry-1.docker.io"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """``host[:port]/path[:tag][@sha256:hex]``, split. ``repository`` is ``host/path``."""

    host: str  # as written (docker.io for Docker Hub)
    path: str  # repository path inside the registry, e.g. acme/quiz-generator
    tag: Optional[str]
    digest: Optional[str]

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.path}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(image: str) -> ImageRef:
    """Split an image reference. Raises ``ValueError`` on anything that is not one.

    A first component without '.', ':' or 'localhost' is a Docker Hub path (``nginx`` ->
    ``docker.io/library/nginx``), as docker and cosign read it.
    """
    text = image.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{image!r} is not an image reference")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ValueError(f"{image!r}: digest must be sha256:<64 lowercase hex>")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag):
            raise ValueError(f"{image!r}: {tag!r} is not a valid tag")
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, path = parts[0], "/".join(parts[1:])
    else:
        host, path = DOCKER_HUB, text
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    host = host.lower()
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?", host):
        raise ValueError(f"{image!r}: {host!r} is not a registry host")
    if not re.fullmatch(r"[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*", path):
        raise ValueError(f"{image!r}: {path!r} is not a repository path (lowercase, '/'-separated)")
    return ImageRef(host=host, path=path, tag=tag, digest=digest)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
