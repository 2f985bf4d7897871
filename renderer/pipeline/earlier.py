"""Bundles written before: kept only with proof, held by a rollback, read a window at a time.

Where it sits: ``pipeline.build`` asks here what to do with the files a bundle had before (the
GitOps head's, or an earlier ``render build`` output's: ``BuildRequest.reuse``) and with a held
bundle's files, before rendering it.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

from renderer.core.errors import ValidationFailed
from renderer.pipeline.holds import Held
from renderer.pipeline.provenance import files_intact, files_of
from renderer.pipeline.render import Bundle
from renderer.pipeline.validate import BundleGates, policy_key

# Plans whose earlier files (``BuildRequest.reuse``: the GitOps head's, when the kept index cannot
# keep them) are read at once: the next window is read while the workers render this one, so the
# run holds at most two windows of files, not every bundle's (1.1 GB at 10,000 before).
REUSE_WINDOW = 512


def kept_bundle(p, source, gates: BundleGates, passed: frozenset) -> tuple[Optional[Bundle], tuple, Optional[str]]:
    """A bundle written before for these inputs, kept only if its exact bytes passed these gates on
    this machine (the local, content-addressed verdict cache): what an output folder or the GitOps
    repo says of itself (bundle.json digests) is a claim, never proof. Returns the kept bundle (or
    None: render it), the files found, and a drift note when they are not what render wrote."""
    files = files_of(source)
    if not files:
        return None, (), None
    if not files_intact(files):
        return None, files, f"drift: {p.path} differs from its own bundle.json filesDigest (changed outside render)"
    if policy_key(gates.policy_digest, files) not in passed:
        return None, files, None  # not proven here: render it and compare
    return Bundle.from_files(p, files), files, None


HELD_AS = {"rollback": "rolled back to", "revert": "reverted (git revert) to"}


def held_bundle(p, claim: Held) -> Bundle:
    held = Bundle.from_files(p, tuple(sorted(claim.files)))
    if held is None:
        raise ValidationFailed([f"{p.path}/bundle.json: -: hold: the held files are not the ones render wrote at "
                                f"{claim.written_at[:12]} (filesDigest); refusing to keep them"])
    return held


def render_windows(plans: list, reuse: Optional[Callable], chunk: int) -> Iterator[list]:
    """The render tasks ((bounds, the earlier files of those plans)), a window of plans at a time:
    earlier files are read when their window comes (``REUSE_WINDOW``), never all at once."""
    for start in range(0, len(plans), REUSE_WINDOW):
        end = min(start + REUSE_WINDOW, len(plans))
        found = dict(reuse(tuple(plans[start:end]))) if reuse else {}
        yield [((i, min(i + chunk, end)), {p.path: found[p.path] for p in plans[i:min(i + chunk, end)] if p.path in found})
               for i in range(start, end, chunk)]
