"""Use cases `render mark-good` and `render rollback`: the known-good ledger of the GitOps repo.

Where it sits: ``flows`` (called by ``cli``; calls ``gitops``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from renderer import gitops
from renderer.gitops import KnownGood, Outcome


@dataclass(frozen=True)
class BundleRef:
    repo: str
    env: str
    tenant: str
    plugin: str
    branch: Optional[str] = None


@dataclass(frozen=True)
class MarkGoodResult:
    record: KnownGood
    written: bool  # False: the same record was there already
    published: bool  # the record went to the remote


def mark_good(ref: BundleRef, *, commit: Optional[str] = None, push: bool = False) -> MarkGoodResult:
    record, written = gitops.mark_good(ref.repo, ref.env, ref.tenant, ref.plugin, commit_ish=commit,
                                       branch=ref.branch, push=push)
    return MarkGoodResult(record, written, gitops.is_url(ref.repo) or push)


def rollback(ref: BundleRef, *, push: bool = False) -> Outcome:
    return gitops.rollback(ref.repo, ref.env, ref.tenant, ref.plugin, branch=ref.branch, push=push)
