"""Where commits are built: the user's repository (a local path) or a private clone (a URL).

Where it sits: ``gitops``, below ``publish`` and ``ledger``. A ``Workspace`` reads and moves
branches (fetch, compare-and-swap publish, fast-forward of a local branch and its working tree
under a journal), serialises runs on one local repository with ``flock``, and finishes what a
killed run left half-done.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from renderer.core.errors import OutsideSystemError, RefusingToProceed, UsageError
from renderer.gitops.git import Git, GitFailed, is_url
from renderer.gitops.worktree import update_paths

LEDGER_BRANCH = "render-known-good"
LOCK_TIMEOUT = 300.0  # seconds to wait for another render run on the same local repository
JOURNAL = "render-journal.json"
LOCK = "render.lock"


def require_publishable(repo: str, push: bool, what: str) -> None:
    """A URL without --push would build the commit in a private clone and throw it away."""
    if is_url(repo) and not push:
        raise UsageError(f"{what} --repo {repo} without --push would publish nothing (the commit would be made in a "
                         "temporary clone and thrown away); add --push, or preview with `render diff`")


class Workspace:
    """Where commits are built: the user's repository (local path) or a private bare clone (URL).

    ``remote`` is "origin" when a remote is read and published to (a URL, or ``--push``)."""

    def __init__(self, g: Git, display: str, *, local: bool, remote: Optional[str], tmp: Path):
        self.g = g
        self.display = display
        self.local = local
        self.remote = remote
        self.tmp = tmp
        self.branch = "main"
        self.git_dir = Path(g.text("rev-parse", "--absolute-git-dir"))
        self.bare = g.text("rev-parse", "--is-bare-repository") == "true"
        self.worktree = None if self.bare else Path(g.text("rev-parse", "--show-toplevel"))
        self._lock_fd: Optional[int] = None
        self.notes: list[str] = []
        self.recovered = False  # ``locked`` finished what a killed run left half-done

    # -- refs
    def fetch(self) -> None:
        if not self.remote:
            return
        code, _, err = self.g.run("fetch", "-q", "--prune", "--no-tags", self.remote,
                                  f"+refs/heads/*:refs/remotes/{self.remote}/*", check=False, network=True)
        if code != 0:
            raise OutsideSystemError(f"cannot fetch from {self.display}: {_last_line(err)}")

    def default_branch(self) -> str:
        if self.remote:
            branches = self.g.text("for-each-ref", "--format=%(refname)", f"refs/remotes/{self.remote}/")
            if not branches:
                return "main"
            code, out, err = self.g.run("ls-remote", "--symref", self.remote, "HEAD", check=False, network=True)
            if code != 0:
                raise OutsideSystemError(f"cannot read the default branch of {self.display}: {_last_line(err)}")
            m = re.search(r"^ref: refs/heads/(\S+)\s+HEAD", out.decode(), re.M)
            if m and self.g.rev(f"refs/remotes/{self.remote}/{m.group(1)}"):
                return m.group(1)
            return "main"
        code, out, _ = self.g.run("symbolic-ref", "-q", "HEAD", check=False)
        head = out.decode().strip()
        if code == 0 and head.startswith("refs/heads/") and self.g.rev(head):
            return head[len("refs/heads/"):]
        return "main"

    def local_head(self, branch: str) -> Optional[str]:
        return self.g.rev(f"refs/heads/{branch}") if self.local else None

    def remote_head(self, branch: str) -> Optional[str]:
        return self.g.rev(f"refs/remotes/{self.remote}/{branch}") if self.remote else None

    def head(self, branch: str) -> Optional[str]:
        """The commit a run builds on: the remote's branch (a local branch that is ahead of it
        is built on, and published by the push); refuses when they diverged."""
        if not self.remote:
            return self.local_head(branch)
        remote, local = self.remote_head(branch), self.local_head(branch)
        if not self.local or local is None or remote is None:
            return remote or local
        if local == remote or self.g.is_ancestor(local, remote):
            return remote
        if self.g.is_ancestor(remote, local):
            return local
        raise RefusingToProceed(
            f"{self.display}: the local branch {branch} ({local[:12]}) and {self.remote}/{branch} ({remote[:12]}) "
            "have diverged; refusing to proceed")

    def publish(self, branch: str, new: str, old: Optional[str], ref_message: str) -> bool:
        """Move ``branch`` from ``old`` to ``new`` if it is still at ``old``: True when it moved."""
        if self.remote:
            code, out, err = self.g.run(
                "push", "--porcelain", "--no-verify", f"--force-with-lease=refs/heads/{branch}:{old or ''}",
                self.remote, f"{new}:refs/heads/{branch}", check=False, network=True)
            text = out.decode()
            if code == 0:
                return True
            rejected = [line for line in text.splitlines() if line.startswith("!")]
            if not rejected:
                raise OutsideSystemError(f"cannot push to {self.display}: {_last_line(err) or _last_line(text)}")
            reason = rejected[0].split("\t")[-1]
            if "stale info" in reason or "fetch first" in reason or "non-fast-forward" in reason or "lock" in reason \
                    or "failed to update ref" in reason:
                return False
            raise OutsideSystemError(f"{self.display} refused the push of {branch}: {reason}")
        return self._move_local(branch, old, new, ref_message)

    def behind(self, branch: str, target: Optional[str]) -> bool:
        """Whether ``sync_local(branch, target)`` would move a local branch (and its working tree)."""
        return bool(self.local and target and self.local_head(branch) != target)

    def sync_local(self, branch: str, target: Optional[str]) -> None:
        """Bring a local repository's branch (and its working tree when checked out) to ``target``
        when that is a fast-forward (after a push, or when the remote is ahead)."""
        if not self.local or not target:
            return
        current = self.local_head(branch)
        if current == target or (current is not None and not self.g.is_ancestor(current, target)):
            return
        if not self._move_local(branch, current, target, "render: fast-forward"):
            raise RefusingToProceed(f"{branch} of {self.display} moved while render was updating it; run it again")

    def _move_local(self, branch: str, old: Optional[str], new: str, ref_message: str) -> bool:
        """Compare-and-swap the local branch from ``old`` to ``new``, then update the working tree
        when the branch is checked out. Journaled: a crash half-way is finished by the next run."""
        if old is None:
            self._adopt_unborn_head(branch)
        checked_out = self._checked_out(branch)
        self._write_journal({"branch": branch, "old": old, "new": new})
        code, _, err = self.g.run("update-ref", "-m", ref_message, f"refs/heads/{branch}", new, old or self.g.zero,
                                  check=False)
        if code != 0:
            self._clear_journal()
            if self.local_head(branch) != old:
                return False
            raise GitFailed(f"cannot move {branch} in {self.display}: {_last_line(err)}")
        if checked_out:
            self._update_worktree(old, new)
        self._clear_journal()
        return True

    def _adopt_unborn_head(self, branch: str) -> None:
        """A fresh repository (bare or not) whose HEAD names a branch with no commits: name ours
        instead, so that a clone checks out the branch render writes."""
        code, out, _ = self.g.run("symbolic-ref", "-q", "HEAD", check=False)
        head = out.decode().strip()
        if code == 0 and head != f"refs/heads/{branch}" and not self.g.rev(head):
            self.g.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def _checked_out(self, branch: str) -> bool:
        if self.bare or self.worktree is None:
            return False
        code, out, _ = self.g.run("symbolic-ref", "-q", "HEAD", check=False)
        return code == 0 and out.decode().strip() == f"refs/heads/{branch}"

    def _update_worktree(self, old: Optional[str], new: str) -> None:
        locks = {"GIT_OPTIONAL_LOCKS": "1"}
        if not old:
            self.g.run("read-tree", "--reset", "-u", new, env=locks)
            return
        if update_paths(self.g, self.worktree, old, new, locks):  # the changed paths alone, when that is safe
            return
        # The two-tree merge checks every file it replaces or removes against the index's stat
        # data and refuses, before it writes the index or any file, when one differs. So the
        # whole-tree ``update-index --refresh`` (an lstat of every file, and a rewrite of the
        # index when stat data was stale) changes the outcome only when the merge refuses: a
        # copied or touched tree whose stat data is stale. Then refresh (content-checked: a file
        # really edited stays modified) and merge again, which is what ran every time before.
        if self.g.run("read-tree", "-m", "-u", old, new, env=locks, check=False)[0] != 0:
            self.g.run("update-index", "-q", "--refresh", check=False, env=locks)
            self.g.run("read-tree", "-m", "-u", old, new, env=locks)

    # -- journal, lock, cleanliness
    def _write_journal(self, data: dict) -> None:
        path = self.git_dir / JOURNAL
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _clear_journal(self) -> None:
        (self.git_dir / JOURNAL).unlink(missing_ok=True)

    def lock(self) -> None:
        path = self.git_dir / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + float(os.environ.get("RENDER_GIT_LOCK_TIMEOUT", LOCK_TIMEOUT))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise RefusingToProceed(f"another render run holds {path}; try again when it has finished")
                time.sleep(0.05)
        self._lock_fd = fd

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the repository lock (a local repository; a private clone needs none), finish what a
        killed run left half-done, and read the remote again."""
        if self.local and self._lock_fd is None:
            self.lock()
            try:
                note = self.recover()
                if note:
                    self.notes.append(note)
                    self.recovered = True
                self.fetch()
                yield
            finally:
                self.unlock()
        else:
            yield

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def recover(self) -> Optional[str]:
        """Finish or undo what a killed run left half-done (under the lock). Returns a note."""
        path = self.git_dir / JOURNAL
        (self.git_dir / (JOURNAL[:-5] + ".tmp")).unlink(missing_ok=True)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            branch, new = data["branch"], data["new"]
        except (ValueError, KeyError, TypeError):
            path.unlink()
            return None
        # git's own lock files that the killed run's update-ref or read-tree left behind (we hold
        # render.lock, and the journal says a run of ours was writing exactly these)
        for stale in ("index.lock", "HEAD.lock", "packed-refs.lock", f"refs/heads/{branch}.lock"):
            (self.git_dir / stale).unlink(missing_ok=True)
        note = None
        if self.local_head(branch) == new and self._checked_out(branch):
            self.g.run("read-tree", "--reset", "-u", new, env={"GIT_OPTIONAL_LOCKS": "1"})
            note = f"finished updating the working tree to {new[:12]} (a previous run was interrupted)"
        path.unlink()
        return note

    def clean_later(self) -> Callable[[], None]:
        """``require_clean``, run by a background thread from now (the status of 250,000 files takes
        a second or two while the caller builds the commit's objects, which publish nothing); the
        function returned waits for it and raises what it raised. Call it before anything is
        published or the working tree is touched."""
        if self.worktree is None:
            return lambda: None
        done: dict = {}

        def work() -> None:
            try:
                self.require_clean()
            except BaseException as exc:  # handed to the caller that waits
                done["error"] = exc

        worker = threading.Thread(target=work, name="git-status", daemon=True)
        worker.start()

        def wait() -> None:
            worker.join()
            if "error" in done:
                raise done["error"]

        return wait

    def require_clean(self) -> None:
        if self.worktree is None:
            return
        # One whole-tree pass, content-checked (a file whose stat data is stale but whose content
        # is unchanged is clean). It stays read-only (GIT_OPTIONAL_LOCKS=0): letting status write
        # the refreshed index would hold index.lock outside the journal, and a run killed then
        # would leave a lock that no later run may remove.
        # in the background (``clean_later``): one thread, not git's parallel preload, leaves the
        # other cores to the run it overlaps (0.2 s of a 1-change commit at 10,000 bundles on 2 cores)
        out = self.g.run("-c", "core.preloadIndex=false", "status", "--porcelain=v1", "-z", "--untracked-files=all",
                         "--ignore-submodules=none")[1]
        dirty = [e.decode(errors="replace")[3:] for e in out.split(b"\0") if len(e) > 3]
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise RefusingToProceed(
                f"the working tree of {self.display} has uncommitted changes ({shown}); refusing to proceed: "
                "commit, stash or remove them first")


@contextmanager
def workspace(repo: str, branch: Optional[str], *, remote: bool, write: bool, lock: bool = True,
              init: bool = False) -> Iterator[Workspace]:
    """Open ``repo`` (a local path or a git URL). ``remote``: read and publish the remote
    (always for a URL). ``write``: the run may change the repository; with ``lock`` the local
    repository is locked (and a killed run's work finished) from the start, else only inside
    ``Workspace.locked()``."""
    tmp = Path(tempfile.mkdtemp(prefix="render-gitops-"))
    ws: Optional[Workspace] = None
    try:
        if is_url(repo):
            path = tmp / "clone.git"
            g = Git(tmp)
            g.run("init", "-q", "--bare", str(path))
            g = Git(path)
            g.run("config", "core.logAllRefUpdates", "false")
            g.run("remote", "add", "origin", repo)
            ws = Workspace(g, repo, local=False, remote="origin", tmp=tmp)
        else:
            ws = _open_local(Path(repo), tmp, remote=remote, write=write, init=init, branch=branch)
        if write and lock and ws.local:
            ws.lock()
            note = ws.recover()
            if note:
                ws.notes = [note]
        ws.fetch()
        ws.branch = branch or ws.default_branch()
        if ws.branch == LEDGER_BRANCH or ws.g.run("check-ref-format", f"refs/heads/{ws.branch}", check=False)[0]:
            raise UsageError(f"--branch {ws.branch!r} is not a branch render can write")
        yield ws
    finally:
        if ws is not None:
            ws.unlock()
        shutil.rmtree(tmp, ignore_errors=True)


def _open_local(path: Path, tmp: Path, *, remote: bool, write: bool, init: bool = False,
                branch: Optional[str] = None) -> Workspace:
    display = str(path)
    path = path.resolve()
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        if not write:  # a diff against a repository that does not exist yet: an empty one
            stand_in = tmp / "empty.git"
            Git(tmp).run("init", "-q", "--bare", str(stand_in))
            return Workspace(Git(stand_in), display, local=False, remote=None, tmp=tmp)
        if not init:
            raise UsageError(f"--repo {display} {'is an empty folder' if path.exists() else 'does not exist'}; "
                             "pass --init to create a new GitOps repository there (a typo must not create one)")
        if remote:
            raise UsageError(f"--push needs a repository with a remote named origin; {path} is empty")
        path.mkdir(parents=True, exist_ok=True)
        Git(path).run("init", "-q", f"--initial-branch={branch or 'main'}", str(path))
    if not path.is_dir():
        raise RefusingToProceed(f"--repo {path} is not a folder; refusing to proceed")
    if not Git(path).is_repository_root():
        raise RefusingToProceed(
            f"--repo {path} is a folder with files but not a git repository; refusing to proceed: "
            "give a git repository, an empty folder or a git URL") from None
    g = Git(path)
    origin = None
    notes = []
    if remote:
        bare = g.text("rev-parse", "--is-bare-repository") == "true"
        if "origin" in g.text("remote").split():
            origin = "origin"
        elif bare:  # a local bare repository is itself the remote others clone: write it directly
            notes.append(f"{display} is a local bare repository with no origin: written directly, nothing to push")
        else:
            raise UsageError(f"--push needs a remote named origin in {path} (git remote add origin URL)")
    ws = Workspace(g, display, local=True, remote=origin, tmp=tmp)
    ws.notes.extend(notes)
    return ws


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""

