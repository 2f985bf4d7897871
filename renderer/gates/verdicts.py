"""The policy-verdict cache: which exact bundles already passed the exact policies.

Where it sits: ``pipeline`` loads it before rendering and saves it after a successful run;
``validate.BundleGates.check`` skips the Rego evaluation (about 30 ms a bundle in rego-cpp) of
a bundle whose key is in it. A key is sha256 over the policy files and every byte of the
bundle's files (``validate.policy_key``), so a hit means the same policies already passed the
very same objects. Only passes are stored. Lives under RENDER_CACHE_DIR beside the signature
cache; ``--no-cache`` ignores it. One file per policy digest, written atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Optional

MAX_KEYS = 200_000
_KEY = re.compile(r"^[0-9a-f]{64}$")


def _path(cache_dir: Path, policy_digest: str) -> Path:
    return cache_dir / "policy-verdicts" / "v1" / f"{policy_digest}.txt"


def load_passed(cache_dir: Optional[Path], policy_digest: str) -> frozenset:
    if cache_dir is None:
        return frozenset()
    try:
        text = _path(cache_dir, policy_digest).read_text()
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(line for line in text.splitlines() if _KEY.match(line))


def save_passed(cache_dir: Optional[Path], policy_digest: str, known: frozenset, new: Iterable[str]) -> None:
    if cache_dir is None:
        return
    new = set(new)
    keys = new if len(known) + len(new) > MAX_KEYS else set(known) | new
    if not new - known:
        return
    path = _path(cache_dir, policy_digest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".verdicts-")
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(sorted(keys)) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
