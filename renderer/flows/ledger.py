"""Use cases `render mark-good` and `render rollback`: the known-good ledger of the GitOps repo.

Where it sits: ``flows`` (called by ``cli``; calls ``gitops``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from renderer import gitops
from renderer.core.layout import BundleKey
from renderer.gitops import KnownGood, Outcome
from renderer.pipeline.build import BuildRequest
from renderer.pipeline.restore import check_restored


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


def rollback(ref: BundleRef, check: BuildRequest, *, push: bool = False) -> Outcome:
    """Restore a bundle's last known-good state: prepared by gitops under the repository lock,
    gated like a rendered bundle (``pipeline.restore``), then committed."""
    with gitops.prepare_rollback(ref.repo, ref.env, ref.tenant, ref.plugin, branch=ref.branch, push=push) as plan:
        if plan.files:
            check_restored(check, BundleKey(ref.env, ref.tenant, ref.plugin), plan.files, plan.from_version,
                           plan.to_version)
        return plan.commit()
