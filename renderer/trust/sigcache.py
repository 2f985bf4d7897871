"""The verified-signature cache: evidence kept by (repository, digest, key fingerprint) and
verified again on every hit, so a cache entry is never trusted as stored.

Where it sits: ``trust``, below ``trust.signatures``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Mapping, Optional


from renderer.core.errors import SignatureError
from renderer.trust.registry import (
    ImageRef,
)
from renderer.trust.cosign import Candidate, Rejected, Trust
from renderer.trust.sources import _accept


# ------------------------------------------------------------------------------------ cache


def default_cache_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """``RENDER_CACHE_DIR``, else ``$XDG_CACHE_HOME/render``, else ``~/.cache/render``."""
    env = os.environ if environ is None else environ
    if env.get("RENDER_CACHE_DIR"):
        return Path(env["RENDER_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "render"
    return Path(env.get("HOME") or Path.home()) / ".cache" / "render"


def _cache_path(cache_dir: Path, ref: ImageRef, fingerprint: str) -> Path:
    key = hashlib.sha256(f"{ref.repository}@{ref.digest}\n{fingerprint}".encode()).hexdigest()
    return cache_dir / "signatures" / "v1" / key[:2] / f"{key}.json"


def _cache_read(cache_dir: Path, ref: ImageRef, trust: Trust) -> Optional[str]:
    """Payload digest from a cache entry that still verifies; None on a miss or a bad entry."""
    path = _cache_path(cache_dir, ref, trust.fingerprint)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if (
            entry.get("repository") != ref.repository
            or entry.get("imageDigest") != ref.digest
            or entry.get("keyFingerprint") != trust.fingerprint
        ):
            return None
        cand = Candidate(
            payload=base64.b64decode(entry["payload"], validate=True),
            signature_b64=entry["signature"],
            origin="cache",
            certificate=entry.get("certificate"),
            chain=entry.get("chain"),
            bundle=entry.get("bundle"),
        )
        return _accept(cand, trust, ref)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error, Rejected, SignatureError):
        return None


def _cache_write(cache_dir: Path, ref: ImageRef, trust: Trust, cand: Candidate, payload_digest: str) -> None:
    path = _cache_path(cache_dir, ref, trust.fingerprint)
    entry = {
        "repository": ref.repository,
        "imageDigest": ref.digest,
        "keyFingerprint": trust.fingerprint,
        "payloadDigest": payload_digest,
        "payload": base64.b64encode(cand.payload).decode(),
        "signature": cand.signature_b64,
    }
    for name in ("certificate", "chain", "bundle"):
        if getattr(cand, name):
            entry[name] = getattr(cand, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass  # a cache that cannot be written only costs a re-fetch next time
