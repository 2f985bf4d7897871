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


GITLINK = "160000"
# a path component git will not store (``verify_path`` with core.protectNTFS/HFS, which default to on)
_BAD_NAME = re.compile(r"(?i)^(\.\.?|\.git[. ]*|\.git::.*|git~\d+)$")


class _Dir:
    """A folder of the tree being built: name -> (mode, id) for a file or an untouched subtree,
    or a ``_Dir`` for a folder on the way to a change (its tree is written again)."""

    __slots__ = ("entries",)

    def __init__(self, entries: dict):
        self.entries = entries


def _is_tree(mode: str) -> bool:
    return mode.lstrip("0") == "40000"


def _path_names(path: str) -> tuple[bytes, ...]:
    names = path.split("/")
    if any(not n or _BAD_NAME.match(n) or "\\" in n or "\0" in n or "\n" in n for n in names):
        raise GitFailed(f"cannot commit the path {path!r}: git does not store it; refusing to commit")
    return tuple(n.encode("utf-8", "surrogateescape") for n in names)


def _canonical_mode(mode: str) -> Optional[str]:
    """The mode an index entry gets (``create_ce_mode``): a regular file is 100644 or 100755."""
    if mode in ("100644", "100755", "120000", GITLINK):
        return mode
    if re.fullmatch(r"100[0-7]{3}", mode):
        return "100755" if int(mode, 8) & 0o100 else "100644"
    return None


def _entry_mode(path: str, mode: str) -> str:
    canonical = _canonical_mode(mode)
    if canonical is None:
        raise GitFailed(f"cannot commit {path!r} with mode {mode!r} (not a file's); refusing to commit")
    return canonical


def _serialise(node: _Dir, out: list[bytes], hash_tree, empty_tree: str) -> Optional[str]:
    """Write ``node``'s tree (and its changed subtrees first) into ``out``: its id, or None when
    it holds no file (an empty folder disappears from its parent, like one the index never had).
    Entries sort by name bytes, a folder's name compared as ``name/`` (git's tree order)."""
    items = []
    for name, entry in node.entries.items():
        if isinstance(entry, _Dir):
            oid = _serialise(entry, out, hash_tree, empty_tree)
            if oid is not None:
                items.append((name + b"/", b"40000 " + name, oid))
        elif _is_tree(entry[0]):
            if entry[1] != empty_tree:
                items.append((name + b"/", b"40000 " + name, entry[1]))
        else:
            items.append((name, (_canonical_mode(entry[0]) or entry[0]).encode() + b" " + name, entry[1]))
    if not items:
        return None
    items.sort()
    content = b"".join(head + b"\0" + bytes.fromhex(oid) for _, head, oid in items)
    out.append(content)
    return hash_tree(content)



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
        """The id of ``base``'s tree with ``changes`` applied (path -> (mode, blob id), or None to
        delete), written to the object database. Costs in proportion to the change: reads only the
        trees on the paths from the root to each changed entry and writes only those trees again.

        It builds the tree a private index would (``read-tree base``, ``update-index --index-info``
        of the deletions then the additions in path order, ``write-tree``): a file added where a
        folder was replaces the whole folder and a file added below a file replaces that file, a
        folder left empty disappears from its parent (recursively), regular-file modes become
        100644 or 100755, a subtree nobody touched keeps its id. Unlike that index it refuses
        (instead of silently skipping) a path git would not store or a mode that is not a file's,
        and a path with a newline (the trees on the way are read by path, one a line)."""
        edits = [(_path_names(path), _entry_mode(path, e[0]), e[1]) if e is not None else (_path_names(path), None, None)
                 for path, e in sorted(changes.items())]
        if not edits and not base:
            return self._write_trees([b""], tmp)[0]
        if not edits:  # the index would keep the base tree's own id
            return self.text("rev-parse", "--verify", f"{base}^{{tree}}")
        root = self._read_base(base, [names for names, _, _ in edits],
                               sorted({oid for _, mode, oid in edits if mode and mode != GITLINK}))
        for names, mode, oid in [e for e in edits if e[1] is None] + [e for e in edits if e[1] is not None]:
            node = root
            for name in names[:-1]:
                child = node.entries.get(name)
                if not isinstance(child, _Dir):
                    if mode is None:  # nothing to delete below a file or a missing folder
                        break
                    child = node.entries[name] = _Dir({})  # a new folder, or one replacing a file
                node = child
            else:
                if mode is None:
                    if isinstance(node.entries.get(names[-1]), tuple) and not _is_tree(node.entries[names[-1]][0]):
                        del node.entries[names[-1]]  # a file only: a deleted path that is a folder stays
                else:
                    node.entries[names[-1]] = (mode, oid)
        contents: list[bytes] = []
        root_id = _serialise(root, contents, self._hash_tree, self.empty_tree) or self.empty_tree
        if not contents:
            contents.append(b"")
        self._write_trees(contents, tmp)
        return root_id

    @property
    def empty_tree(self) -> str:
        return self._hash_tree(b"")

    def _hash_tree(self, content: bytes) -> str:
        h = hashlib.new(self.object_format)
        h.update(b"tree %d\0" % len(content))
        h.update(content)
        return h.hexdigest()

    def _read_base(self, base: Optional[str], paths: list[tuple[bytes, ...]], blobs: list[str]) -> "_Dir":
        """The base's root folder with, loaded as ``_Dir``, every folder on the way to a changed
        path that the base has; and every blob the changes name must be stored. One ``cat-file``."""
        folders = sorted({names[:depth] for names in paths for depth in range(1, len(names))}, key=len)
        specs = [f"{base}:{b'/'.join(f).decode('utf-8', 'surrogateescape')}" for f in folders] if base else []
        objects = self._read_objects(([f"{base}^{{tree}}"] if base else []) + specs + blobs)
        if base and objects[0][0] != "tree":
            raise GitFailed(f"{base} is not a commit in {self.path}")
        root = _Dir(self._tree_entries(objects[0][2]) if base else {})
        for folder, (kind, oid, body) in zip(folders, objects[1:] if base else []):
            node = root
            for name in folder[:-1]:
                node = node.entries.get(name)
                if not isinstance(node, _Dir):
                    break
            else:
                entry = node.entries.get(folder[-1])
                if isinstance(entry, tuple) and _is_tree(entry[0]):
                    if (kind, oid) != ("tree", entry[1]):
                        raise GitFailed(f"git read {base}:{folder!r} as {kind} {oid}, not the tree {entry[1]}")
                    node.entries[folder[-1]] = _Dir(self._tree_entries(body))
        for oid, (kind, _, _) in zip(blobs, objects[len(objects) - len(blobs):]):
            if kind != "blob":
                raise GitFailed(f"git object {oid} is missing from {self.path} (or is not a file); refusing to commit")
        return root

    def _read_objects(self, specs: list[str]) -> list[tuple[str, str, bytes]]:
        """(type, id, content) of each spec with one ``cat-file --batch``; type "missing" when
        the spec names nothing."""
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

    def _write_trees(self, contents: list[bytes], tmp: Path) -> list[str]:
        """Store tree objects with one ``hash-object``; refuses when git names them other than
        their computed ids."""
        want = [self._hash_tree(c) for c in contents]
        folder = Path(tempfile.mkdtemp(prefix="trees-", dir=tmp))
        try:
            for i, content in enumerate(contents):
                (folder / str(i)).write_bytes(content)
            got = self.run("hash-object", "-t", "tree", "-w", "--no-filters", "--stdin-paths",
                           stdin="".join(f"{folder / str(i)}\n" for i in range(len(contents))).encode())[1]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if got.decode().split() != want:
            raise GitFailed("git hash-object stored trees under unexpected ids; refusing to commit")
        return want

    def commit_tree(self, tree: str, parent: Optional[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-F", "-"]
        if parent:
            args[2:2] = ["-p", parent]
        return self.text(*args, stdin=message.encode())

