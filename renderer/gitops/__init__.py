"""The commit server: rendered files in, one commit out (Argo CD's commit-server idea).

Where it sits: below ``flows``; imports only ``core`` (and GitPython, in ``gitops.git`` alone).
It never renders and never calls up into rendering: ``flows`` snapshots the head with
``open_repo(...).snapshot()``, renders, and hands back a ``CommitRequest``.

Modules: ``git`` (plumbing, isolated from the caller's git config), ``workspace`` (local repo or
private clone, lock, journal), ``changes`` (units, managed-repo checks, planning and re-applying a
change), ``history`` (what the branch's history proves: render's commits, holds, reverts),
``publish`` (``open_repo``, ``Repo.snapshot/commit/diff``), ``ledger`` (known-good, rollback),
``texts`` (commit messages, generated files), ``report`` (diffs for people).
"""

from renderer.gitops.changes import Change, Conflict, rebase
from renderer.gitops.git import GitFailed, is_url
from renderer.gitops.history import HeldClaim
from renderer.gitops.ledger import (KnownGood, RollbackPlan, commit_on_branch, known_good, mark_good, prepare_rollback,
                                    read_known_good, rollback)
from renderer.gitops.publish import (DEFAULT_ATTEMPTS, DEFAULT_MAX_DELETE_SHARE, CommitOptions, CommitRequest,
                                     Outcome, Published, Repo, Snapshot, commit, open_repo)
from renderer.gitops.request import Rendered
from renderer.gitops.texts import commit_message, versions
from renderer.gitops.workspace import JOURNAL, LEDGER_BRANCH, Workspace, workspace

__all__ = [
    "Change", "CommitOptions", "CommitRequest", "Conflict", "DEFAULT_ATTEMPTS", "DEFAULT_MAX_DELETE_SHARE",
    "GitFailed", "HeldClaim", "JOURNAL", "KnownGood", "LEDGER_BRANCH", "Outcome", "Published", "Rendered", "Repo",
    "RollbackPlan", "Snapshot", "commit_on_branch", "Workspace", "commit", "commit_message", "is_url", "known_good", "mark_good",
    "open_repo", "prepare_rollback", "read_known_good", "rebase", "rollback", "versions", "workspace",
]
