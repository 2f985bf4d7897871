"""Git plumbing for the GitOps commit server: the only module of the project that imports ``git``.

Where it sits: ``gitops`` (below ``flows``; imports only ``core``). ``Git`` runs the real git
(through GitPython) in one repository, isolated from whoever runs it: no system or global
configuration, no hooks, no attribute filters, none of the caller's ``GIT_*`` variables, and
render's own author identity. Objects are written without filters (``hash-object --no-filters``,
``fast-import``) and trees are computed here from the base's trees on the changed paths (written
with ``hash-object -t tree``, never through an index), so nothing a repository's own
``.gitattributes`` says can run a program.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Mapping, Optional

import git  # GitPython: the only import of git in the project

from renderer.core.errors import GitFailed
from renderer.gitops.trees import GITLINK, _bad_path, _canonical_mode, _Dir, _is_tree, _path_names, _serialise

RENDERER = "plugin-bundle-renderer"
DEFAULT_NAME = RENDERER
DEFAULT_EMAIL = "render@adapstory.invalid"
NETWORK_TIMEOUT = 300.0
BLOB = "100644"
TREE = "040000"  # as ``ls-tree`` shows a folder's mode (an outline's folded bundle folder: gitops.outline)
PACK_THRESHOLD = 64  # more new blobs than this are written as one pack

Tree = dict  # path -> (mode, object id)


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

    # folders with a changed entry from which make_tree builds in a private index: at 10,000 bundles
    # (253,000 files) both cost the same (~4 s) at ~5,000 folders, 200 folders cost 0.3 s by path
    LARGE_CHANGE = 2_000

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
        # fixed widths, no separators to search for: "<6-digit mode><object id><path>" (250,000 entries
        # at 10,000 bundles; -r lists files, links and gitlinks, whose modes all have 6 digits)
        return self._parse_tree(self._list_tree(commit))

    def _list_tree(self, commit: str) -> bytes:
        return self.run("ls-tree", "-r", "-z", "--full-tree", "--format=%(objectmode)%(objectname)%(path)", commit)[1]

    def _parse_tree(self, out: bytes) -> Tree:
        n = 6 + len(self.zero)
        return {entry[n:]: (entry[:6], entry[6:n]) for entry in out.decode().split("\0") if entry}

    def tree_later(self, commit: Optional[str]) -> Callable[[], Tree]:
        """``tree(commit)``, listed by a background thread: git lists 250,000 entries in about a
        second while the caller reads its inputs. The function returned waits for the listing (and
        raises what it raised), and parses it on its first call."""
        done: dict = {}

        def work() -> None:
            try:
                done["listing"] = self._list_tree(commit) if commit else None
            except BaseException as exc:  # handed to the caller that waits
                done["error"] = exc

        worker = threading.Thread(target=work, name="git-ls-tree", daemon=True)
        worker.start()

        def wait() -> Tree:
            if "tree" not in done:
                worker.join()
                if "error" in done:
                    raise done["error"]
                # parsed here, not in the thread: the caller's own work is not interrupted for it
                done["tree"] = {} if done["listing"] is None else self._parse_tree(done.pop("listing"))
            return done["tree"]

        return wait

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
        """The id of ``base``'s tree with ``changes`` applied (path -> (mode, blob id), or None to
        delete), written to the object database. Costs in proportion to the change: reads only the
        trees on the paths from the root to each changed entry and writes only those trees again
        (a change in more than ``LARGE_CHANGE`` folders goes through a private index instead).

        The tree is the one that index gives (``update-index --index-info`` of the deletions, then
        the additions in path order): a file replaces a folder, or a file above it; a folder left
        empty disappears (recursively); regular-file modes become 100644 or 100755; an untouched
        subtree keeps its id. But a path git would not store, or a mode that is not a file's, is
        refused, where the index skipped it without a word."""
        if len({path.rpartition("/")[0] for path in changes}) > self.LARGE_CHANGE:  # the index is faster then
            for path, e in changes.items():  # refuse what the index would skip without a word
                if _bad_path(path):
                    _path_names(path)
                if e is not None:
                    _canonical_mode(e[0], path)
            return self._make_tree_in_index(base, changes, tmp)
        edits = [(_path_names(path), _canonical_mode(e[0], path), e[1]) if e is not None else (_path_names(path), None, None)
                 for path, e in sorted(changes.items())]
        if not edits and not base:
            return self._write_trees([])
        if not edits:  # the index would keep the base tree's own id
            return self.text("rev-parse", "--verify", f"{base}^{{tree}}")
        root = self._read_base(base, [names for names, _, _ in edits])
        self._require_blobs(sorted({oid for _, mode, oid in edits if mode and mode != GITLINK}))
        folders: dict[tuple[bytes, ...], _Dir] = {(): root}  # the folders met so far, by path
        for names, mode, oid in [e for e in edits if e[1] is None] + [e for e in edits if e[1] is not None]:
            node = folders.get(names[:-1])
            if node is None:
                node = root
                for depth, name in enumerate(names[:-1], 1):
                    child = node.get(name)
                    if not isinstance(child, _Dir):
                        if mode is None:  # nothing to delete below a file or a missing folder
                            node = None
                            break
                        child = node[name] = _Dir()  # a new folder, or one replacing a file
                    node = folders[names[:depth]] = child
                if node is None:
                    continue
            entry = node.get(names[-1])
            if mode is None:
                if isinstance(entry, tuple) and not _is_tree(entry[0]):
                    del node[names[-1]]  # a file only: a deleted path that is a folder stays
            else:
                if isinstance(entry, _Dir):  # a file replaces a whole folder: forget the folders in it
                    folders = {k: v for k, v in folders.items() if k[:len(names)] != names}
                node[names[-1]] = (mode, oid)
        trees: list[tuple[bytes, bytes]] = []
        root_id = _serialise(root, trees, self.hash_tree, self.empty_tree)
        return self._write_trees(trees) if root_id else self._write_trees([])

    def _make_tree_in_index(self, base: Optional[str], changes, tmp: Path) -> str:
        """``make_tree`` through a private index: whole-repository work, but in git's own code."""
        index = tmp / f"index-{os.getpid()}-{secrets.token_hex(8)}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self.run("read-tree", *([base] if base else ["--empty"]), env=env)
            records = [f"0 {self.zero}\t{path}" for path, entry in sorted(changes.items()) if entry is None]
            records += [f"{e[0]} {e[1]}\t{path}" for path, e in sorted(changes.items()) if e is not None]
            self.run("update-index", "-z", "--index-info", stdin=("\0".join(records) + "\0").encode(), env=env)
            return self.text("write-tree", env=env)
        finally:
            index.unlink(missing_ok=True)

    @property
    def empty_tree(self) -> str:
        return self.hash_tree(b"")

    def hash_tree(self, content: bytes) -> str:
        h = hashlib.new(self.object_format)
        h.update(b"tree %d\0" % len(content))
        h.update(content)
        return h.hexdigest()

    def _read_base(self, base: Optional[str], paths: list[tuple[bytes, ...]]) -> "_Dir":
        """The base's root with every folder it has on the way to a changed path loaded as a
        ``_Dir``: one ``cat-file --batch`` a level, by id (by path git reads each tree above again)."""
        if not base:
            return _Dir()
        kind, _, body = self._read_objects([f"{base}^{{tree}}"])[0]
        if kind != "tree":
            raise GitFailed(f"{base} is not a commit in {self.path}")
        root, level = _Dir(self._tree_entries(body)), {(): None}
        for depth in range(1, max(map(len, paths))):
            level = {names[:depth]: None for names in paths if len(names) > depth and names[:depth - 1] in level}
            todo = []
            for folder in level:
                node = root
                for name in folder[:-1]:
                    node = node[name]
                entry = node.get(folder[-1])
                if isinstance(entry, tuple) and _is_tree(entry[0]):
                    todo.append((folder, node, entry[1]))
            level = {folder: None for folder, _, _ in todo}
            for (folder, node, oid), (kind, got, body) in zip(todo, self._read_objects([t[2] for t in todo])):
                if (kind, got) != ("tree", oid):
                    raise GitFailed(f"git read {oid} as {kind} {got}, not the tree of {folder!r} in {base}")
                node[folder[-1]] = _Dir(self._tree_entries(body))
            if not todo:
                break
        return root

    def folders(self, oids: list[str]) -> list[dict[str, tuple[str, str]]]:
        """The entries (name -> (mode, id)) of each tree ``oids`` names, read with one ``cat-file
        --batch``; raises when one is missing or not a tree."""
        out: list[dict[str, tuple[str, str]]] = []
        if not oids:
            return out
        for oid, (kind, got, body) in zip(oids, self._read_objects(list(oids))):
            if (kind, got) != ("tree", oid):
                raise GitFailed(f"git object {oid} is missing from {self.path} (or is not a folder)")
            out.append({name.decode("utf-8", "surrogateescape"): entry for name, entry in self._tree_entries(body).items()})
        return out

    def _require_blobs(self, oids: list[str]) -> None:
        """Every blob the changes name is stored (one ``cat-file --batch-check``, nothing read)."""
        out = self.run("cat-file", "--batch-check=%(objectname) %(objecttype)",
                       stdin="".join(f"{oid}\n" for oid in oids).encode())[1].decode().splitlines() if oids else []
        missing = [oid for oid, line in zip(oids, out) if line != f"{oid} blob"]
        if missing or len(out) != len(oids):
            raise GitFailed(f"git object {(missing or oids)[0]} is missing from {self.path} (or is not a file); "
                            "refusing to commit")

    def _read_objects(self, specs: list[str]) -> list[tuple[str, str, bytes]]:
        """(type or "missing", id, content) of each spec, with one ``cat-file --batch``."""
        out = self.run("cat-file", "--batch", stdin=("\n".join(specs) + "\n").encode("utf-8", "surrogateescape"))[1]
        objects, pos = [], 0
        for _ in specs:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split(b" ")
            if len(header) == 3 and header[1] in (b"blob", b"tree", b"commit", b"tag") and header[2].isdigit():
                size = int(header[2])
                objects.append((header[1].decode(), header[0].decode(), out[nl + 1: nl + 1 + size]))
                pos = nl + 1 + size + 1
            else:  # "<spec> missing" (or ambiguous)
                objects.append(("missing", "", b""))
                pos = nl + 1
        return objects

    def _tree_entries(self, body: bytes) -> dict:
        """A tree object's entries: name -> (mode, id)."""
        size_of_id = 32 if self.object_format == "sha256" else 20
        entries, i = {}, 0
        while i < len(body):
            space, nul = body.index(b" ", i), body.index(b"\0", i)
            entries[body[space + 1:nul]] = (body[i:space].decode(), body[nul + 1:nul + 1 + size_of_id].hex())
            i = nul + 1 + size_of_id
        return entries

    def _write_trees(self, trees: list[tuple[bytes, bytes]]) -> str:
        """Store the trees (children first; none: the empty tree) with one ``mktree``, which sorts
        the entries its own way: ids other than those computed here are refused. Returns the last.
        (``--missing``: entries are the base's or checked blobs; a lookup of each costs more than
        all the rest in a repository of loose trees.)"""
        want = [self.hash_tree(content) for content, _ in trees] or [self.empty_tree]
        args = ("mktree", "-z", "--missing", "--batch") if trees else ("mktree",)
        code, out, err = self.run(*args, stdin=b"".join(records + b"\0" for _, records in trees), check=False)
        if code != 0:
            raise GitFailed(f"git mktree refused the new trees in {self.path}: {err.strip()}; refusing to commit")
        if out.decode().split() != want:
            raise GitFailed("git mktree stored trees under other ids than computed; refusing to commit")
        return want[-1]

    def commit_tree(self, tree: str, parent: Optional[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-F", "-"]
        if parent:
            args[2:2] = ["-p", parent]
        return self.text(*args, stdin=message.encode())

