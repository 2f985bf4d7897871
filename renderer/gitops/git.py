"""Git plumbing for the GitOps commit server: the only module of the project that imports ``git``.

Where it sits: ``gitops`` (below ``flows``; imports only ``core``). ``Git`` runs the real git
(through GitPython) in one repository, isolated from whoever runs it: no system or global
configuration, no hooks, no attribute filters, none of the caller's ``GIT_*`` variables, and
render's own author identity. Objects are written without filters (``hash-object --no-filters``,
``fast-import``) and trees are built in a private index, so nothing a repository's own
``.gitattributes`` says can run a program.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional

import git  # GitPython: the only import of git in the project

from renderer.core.errors import OutsideSystemError

RENDERER = "plugin-bundle-renderer"
DEFAULT_NAME = RENDERER
DEFAULT_EMAIL = "render@adapstory.invalid"
NETWORK_TIMEOUT = 300.0
BLOB = "100644"
PACK_THRESHOLD = 64  # more new blobs than this are written as one pack

Tree = dict  # path -> (mode, object id)


class GitFailed(OutsideSystemError):
    """A git command failed."""



def is_url(repo: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", repo) or re.match(r"^[^/\s:@]+@[^/\s:]+:", repo))


# Git must run no one else's code and read no one else's settings: no system or global config
# (a smudge filter or core.hooksPath there), no hooks, no fsmonitor, no attribute file, and none of
# the caller's GIT_* variables (GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_PARAMETERS, ...).
ISOLATION_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "core.attributesFile=/dev/null",
                    "core.askPass=", "credential.helper=", "gc.auto=0", "maintenance.auto=false",
                    "commit.gpgSign=false", "tag.gpgSign=false", "advice.detachedHead=false")


def identity_env() -> dict[str, str]:
    name = os.environ.get("RENDER_GIT_AUTHOR_NAME") or DEFAULT_NAME
    email = os.environ.get("RENDER_GIT_AUTHOR_EMAIL") or DEFAULT_EMAIL
    return {
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
        "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1",
        "GIT_CONFIG_COUNT": "0",
    }


def _command(args: tuple[str, ...], env: Mapping[str, str]) -> list[str]:
    """``env -u`` every GIT_* variable of the caller that render does not set itself, then git with
    the isolation settings: GitPython passes the caller's environment through, so it is unset here."""
    unset = [v for k in sorted(os.environ) if k.startswith("GIT_") and k not in env for v in ("-u", k)]
    config = [v for item in ISOLATION_CONFIG for v in ("-c", item)]
    return ["env", *unset, "git", *config, *args]


class Git:
    """Runs the real git through GitPython in one repository; raises ``GitFailed`` on failure."""

    def __init__(self, path: Path):
        self.path = path
        self._cmd = git.Git(str(path))
        self.env = identity_env()
        self._format: Optional[str] = None

    def run(self, *args: str, stdin=None, env: Optional[dict] = None, check: bool = True,
            network: bool = False) -> tuple[int, bytes, str]:
        """Run git; ``stdin``: bytes, or a file open for reading (streamed as it is)."""
        with tempfile.TemporaryFile() as fin:
            if isinstance(stdin, (bytes, bytearray)):
                fin.write(stdin)
                fin.seek(0)
            elif stdin is not None:
                fin = stdin
            run_env = {**self.env, **(env or {})}
            code, out, err = self._cmd.execute(
                _command(args, run_env), istream=fin if stdin is not None else None, with_extended_output=True,
                with_exceptions=False, stdout_as_string=False, strip_newline_in_stdout=False,
                env=run_env, kill_after_timeout=NETWORK_TIMEOUT if network else None)
        out = out or b""
        err = err.decode() if isinstance(err, bytes) else (err or "")
        if check and code != 0:
            raise GitFailed(f"git {' '.join(args[:3])} failed in {self.path}: {err.strip() or f'exit {code}'}")
        return code, out, err

    def is_repository_root(self) -> bool:
        """Whether this folder itself is a git repository (a work tree's top or a bare repository),
        never a folder inside some other repository."""
        code, out, _ = self.run("rev-parse", "--absolute-git-dir", check=False,
                                env={"GIT_CEILING_DIRECTORIES": str(self.path.resolve().parent)})
        return code == 0 and bool(out.strip())

    def text(self, *args: str, **kw) -> str:
        return self.run(*args, **kw)[1].decode().strip()

    def rev(self, ref: str) -> Optional[str]:
        code, out, _ = self.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return out.decode().strip() if code == 0 and out.strip() else None

    def object_id(self, spec: str) -> Optional[str]:
        code, out, _ = self.run("rev-parse", "--verify", "-q", spec, check=False)
        return out.decode().strip() if code == 0 and out.strip() else None

    @property
    def object_format(self) -> str:
        if self._format is None:
            code, out, _ = self.run("rev-parse", "--show-object-format", check=False)
            self._format = out.decode().strip() if code == 0 and out.strip() else "sha1"
        return self._format

    @property
    def zero(self) -> str:
        return "0" * (64 if self.object_format == "sha256" else 40)

    def blob_id(self, data: bytes) -> str:
        h = hashlib.new(self.object_format)
        h.update(b"blob %d\0" % len(data))
        h.update(data)
        return h.hexdigest()

    def is_ancestor(self, a: str, b: str) -> bool:
        return self.run("merge-base", "--is-ancestor", a, b, check=False)[0] == 0

    def tree(self, commit: Optional[str]) -> Tree:
        if not commit:
            return {}
        out = self.run("ls-tree", "-r", "-z", "--full-tree", commit)[1].decode()
        tree: Tree = {}
        for entry in out.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)  # "<mode> <type> <oid>\t<path>"
                tree[path] = (meta[:meta.index(" ")], meta[meta.rindex(" ") + 1:])
        return tree

    def read_blobs(self, oids) -> dict[str, bytes]:
        oids = sorted(set(oids))
        if not oids:
            return {}
        out = self.run("cat-file", "--batch", stdin=("\n".join(oids) + "\n").encode())[1]
        blobs: dict[str, bytes] = {}
        pos = 0
        for _ in oids:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].decode().split(" ")
            if len(header) < 3 or header[1] == "missing":
                raise GitFailed(f"git object {header[0]} is missing from {self.path}")
            size = int(header[2])
            blobs[header[0]] = out[nl + 1: nl + 1 + size]
            pos = nl + 1 + size + 1
        return blobs

    def write_blobs(self, blobs: Mapping[str, bytes], tmp: Path) -> None:
        """Store ``{object id: bytes}`` in the object database. Many blobs go in as one pack
        (``fast-import``), a few as loose objects (``hash-object``); either way a crash leaves at
        most unreferenced garbage."""
        todo = sorted(blobs.items())
        if not todo:
            return
        if len(todo) > PACK_THRESHOLD:
            with tempfile.TemporaryFile(dir=tmp) as stream:  # on disk: no second copy of every blob in memory
                stream.write(b"feature done\n")
                for _, data in todo:
                    stream.write(b"blob\ndata %d\n" % len(data))
                    stream.write(data)
                    stream.write(b"\n")
                stream.write(b"done\n")
                stream.seek(0)
                self.run("fast-import", "--quiet", "--done", stdin=stream)
            present = self.run("cat-file", "--batch-check=%(objectname)", stdin=("\n".join(o for o, _ in todo) + "\n")
                               .encode())[1].decode().split()
            if present != [oid for oid, _ in todo]:
                raise GitFailed("git fast-import did not store every object; refusing to commit")
            return
        folder = Path(tempfile.mkdtemp(prefix="blobs-", dir=tmp))
        paths = []
        for i, (oid, data) in enumerate(todo):
            p = folder / str(i)
            p.write_bytes(data)
            paths.append((oid, p))
        out = self.run("hash-object", "-w", "--no-filters", "--stdin-paths",
                       stdin="".join(f"{p}\n" for _, p in paths).encode())[1].decode().split()
        if out != [oid for oid, _ in paths]:
            raise GitFailed("git hash-object stored objects under unexpected ids; refusing to commit")
        shutil.rmtree(folder, ignore_errors=True)

    def make_tree(self, base: Optional[str], changes: Mapping[str, Optional[tuple[str, str]]], tmp: Path) -> str:
        index = tmp / f"index-{os.getpid()}-{random.randrange(1 << 30)}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            if base:
                self.run("read-tree", base, env=env)
            else:
                self.run("read-tree", "--empty", env=env)
            records = []
            for path, entry in sorted(changes.items()):
                if entry is None:
                    records.append(f"0 {self.zero}\t{path}")
            for path, entry in sorted(changes.items()):
                if entry is not None:
                    records.append(f"{entry[0]} {entry[1]}\t{path}")
            if records:
                self.run("update-index", "-z", "--index-info", stdin=("\0".join(records) + "\0").encode(), env=env)
            return self.text("write-tree", env=env)
        finally:
            index.unlink(missing_ok=True)

    def commit_tree(self, tree: str, parent: Optional[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-F", "-"]
        if parent:
            args[2:2] = ["-p", parent]
        return self.text(*args, stdin=message.encode())

