"""``Git.make_tree`` builds a commit's tree from the base and the changed paths only, against real
git repositories (SHA-1 and SHA-256) in a tmp folder.

The reference is the implementation it replaced (a private index: ``read-tree base``,
``update-index --index-info``, ``write-tree``), kept here: for any base and change set both must
give the same tree id, checked on random change sets (hypothesis) and on a table of edge cases.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderer.gitops.git import Git, GitFailed
from tests.support.git import git

CONTENTS = [b"", b"a: 1\n", b"b: 2\n", b"kind: ConfigMap\n", b"#!/bin/sh\n"]
# names whose order in a tree differs from plain string order once a folder counts as "name/"
# (and names git's line-based output must keep whole: a space, a colon, a newline, cat-file's words)
NAMES = ["a", "a-b", "a.b", "a0", "b", "\u00e9", "a b", "c:d", "t blob 1", "new\nline"]
FORMATS = ["sha1", "sha256"]


def reference_make_tree(g: Git, base: Optional[str], changes, tmp: Path) -> str:
    """``make_tree`` as it was: the whole base tree read into a private index."""
    index = tmp / f"index-{os.getpid()}-{random.randrange(1 << 30)}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        if base:
            g.run("read-tree", base, env=env)
        else:
            g.run("read-tree", "--empty", env=env)
        records = []
        for path, entry in sorted(changes.items()):
            if entry is None:
                records.append(f"0 {g.zero}\t{path}")
        for path, entry in sorted(changes.items()):
            if entry is not None:
                records.append(f"{entry[0]} {entry[1]}\t{path}")
        if records:
            g.run("update-index", "-z", "--index-info", stdin=("\0".join(records) + "\0").encode(), env=env)
        return g.text("write-tree", env=env)
    finally:
        index.unlink(missing_ok=True)


class Repo:
    """A real repository with the test contents stored as blobs."""

    def __init__(self, path: Path, object_format: str):
        path.mkdir(parents=True)
        git(path, "init", "-q", f"--object-format={object_format}")
        self.path, self.g = path, Git(path)
        self.tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=path / ".git"))
        self.blobs = [self.g.blob_id(c) for c in CONTENTS]
        self.g.write_blobs(dict(zip(self.blobs, CONTENTS)), self.tmp)

    def entry(self, mode: str, content: int) -> tuple[str, str]:
        return mode, self.blobs[content]

    def commit(self, files: dict) -> Optional[str]:
        """A commit of ``files`` (path -> (mode, content index)) built by the reference, or None."""
        if not files:
            return None
        changes = {p: self.entry(*e) for p, e in files.items()}
        return self.g.commit_tree(reference_make_tree(self.g, None, changes, self.tmp), None, "base")

    def changes(self, spec: dict) -> dict:
        return {p: None if e is None else self.entry(*e) for p, e in spec.items()}

    def both(self, base: Optional[str], changes: dict) -> tuple[str, str]:
        return self.g.make_tree(base, changes, self.tmp), reference_make_tree(self.g, base, changes, self.tmp)

    def files(self, tree: str) -> dict[str, str]:
        out = git(self.path, "ls-tree", "-r", "-t", "-z", tree)
        return {e.split("\t", 1)[1]: e.split(" ")[0] for e in out.split("\0") if e}


@pytest.fixture(scope="module", params=FORMATS)
def repo(request, tmp_path_factory) -> Repo:
    return Repo(tmp_path_factory.mktemp("make-tree") / request.param, request.param)


# ------------------------------------------------------------------------------------ random change sets

paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
entries = st.tuples(st.sampled_from(["100644", "100755"]), st.integers(0, len(CONTENTS) - 1))
bases = st.dictionaries(paths, entries, max_size=12)
change_sets = st.dictionaries(paths, st.none() | entries, min_size=1, max_size=10)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=bases, change=change_sets, on_base=st.booleans())
def test_any_change_set_gives_the_tree_the_private_index_gave(repo, base, change, on_base):
    base_commit = repo.commit(base) if on_base else None
    new, old = repo.both(base_commit, repo.changes(change))
    assert new == old


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=bases, change=change_sets)
def test_random_change_sets_applied_one_after_another_stay_equal_to_the_reference(repo, base, change):
    commit = repo.commit(base)
    for path, entry in sorted(change.items()):  # one commit per change: deep histories of edits
        tree, want = repo.both(commit, repo.changes({path: entry}))
        assert tree == want
        commit = repo.g.commit_tree(tree, commit, "step")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=bases, change=change_sets)
def test_a_change_touching_too_many_folders_goes_through_the_index_to_the_same_tree(repo, base, change):
    base_commit = repo.commit(base)
    changes = repo.changes(change)
    by_path = repo.g.make_tree(base_commit, changes, repo.tmp)
    repo.g.LARGE_CHANGE = 0  # folders with a change: from any number on
    try:
        assert repo.g.make_tree(base_commit, changes, repo.tmp) == by_path
    finally:
        del repo.g.LARGE_CHANGE


# ------------------------------------------------------------------------------------ edge cases

F, X = ("100644", 1), ("100755", 1)
EDGE_CASES = [
    pytest.param({"x/y": F}, {"n/m/o/p.yaml": F, "n/q": ("100644", 2)},
                 {"x/y": "100644", "n/m/o/p.yaml": "100644", "n/q": "100644"}, id="additions-in-new-folders"),
    pytest.param({"a/b/c/f": F, "a/g": F}, {"a/b/c/f": None},
                 {"a/g": "100644"}, id="a-deletion-that-empties-folders-removes-them-recursively"),
    pytest.param({"a/b/c/f": F}, {"a/b/c/f": None}, {}, id="deleting-every-file-gives-the-empty-tree"),
    pytest.param({"a": F, "b": F}, {"a": None, "a/b": F}, {"a/b": "100644", "b": "100644"},
                 id="a-file-becomes-a-folder"),
    pytest.param({"a": F}, {"a/b/c": F}, {"a/b/c": "100644"}, id="a-file-added-below-a-file-replaces-it"),
    pytest.param({"a/b": F, "a/c/d": F, "a-b": F}, {"a/b": None, "a/c/d": None, "a": F},
                 {"a": "100644", "a-b": "100644"}, id="a-folder-becomes-a-file"),
    pytest.param({"a/b": F, "a/c/d": F}, {"a": X}, {"a": "100755"}, id="a-file-added-where-a-folder-was-replaces-it"),
    pytest.param({"a/b": F, "c": X}, {"a/b": X, "c": F}, {"a/b": "100755", "c": "100644"}, id="mode-changes"),
    pytest.param({"a": F}, {"a": ("100664", 1), "b": ("100775", 2)}, {"a": "100644", "b": "100755"},
                 id="regular-file-modes-are-made-canonical"),
    pytest.param(None, {"a/b": F, "c": X}, {"a/b": "100644", "c": "100755"}, id="an-empty-repository"),
    pytest.param({"a/b": F}, {"a": None, "q/r": None, "a/b/c": None}, {"a/b": "100644"},
                 id="deleting-a-folder-a-missing-path-or-a-path-below-a-file-changes-nothing"),
    pytest.param({"a.b/x": F, "a/x": F, "a0/x": F, "a-b": F}, {"a/y": F, "a.b": None},
                 {"a.b/x": "100644", "a/x": "100644", "a/y": "100644", "a0/x": "100644", "a-b": "100644"},
                 id="a-folder-sorts-as-its-name-with-a-slash"),
]


@pytest.mark.parametrize("base, change, want", EDGE_CASES)
def test_edge_cases_give_the_reference_tree_and_a_valid_one(repo, base, change, want):
    base_commit = repo.commit(base) if base is not None else None
    new, old = repo.both(base_commit, repo.changes(change))
    assert new == old
    assert {p: m for p, m in repo.files(new).items() if m != "040000"} == want
    git(repo.path, "fsck", "--strict", "--no-dangling", "--no-progress")  # sort order, modes, no missing objects


def test_no_change_keeps_the_base_tree_id_and_an_empty_repository_gets_the_empty_tree(repo):
    base = repo.commit({"a/b": F})
    assert repo.both(base, {}) == (git(repo.path, "rev-parse", f"{base}^{{tree}}").strip(),) * 2
    new, old = repo.both(None, {})
    assert new == old == repo.g.empty_tree
    assert git(repo.path, "cat-file", "-t", new).strip() == "tree"


def test_an_empty_folder_in_a_hand_made_base_disappears_only_from_folders_that_change(repo):
    """Trees git writes never hold an empty folder, but one made with mktree can: the index never
    holds it, so a folder that is written again loses it; an untouched folder keeps its id."""
    empty = repo.g.text("mktree", stdin=b"")
    blob = repo.blobs[1]
    inner = repo.g.text("mktree", stdin=f"040000 tree {empty}\tgone\n100644 blob {blob}\tf\n".encode())
    kept = repo.g.text("mktree", stdin=f"040000 tree {empty}\tstays\n100644 blob {blob}\tf\n".encode())
    root = repo.g.text("mktree", stdin=f"040000 tree {inner}\tchanged\n040000 tree {kept}\tuntouched\n".encode())
    base = repo.g.commit_tree(root, None, "hand-made")
    new, old = repo.both(base, repo.changes({"changed/g": F}))
    assert new == old
    assert set(repo.files(new)) == {"changed", "changed/f", "changed/g", "untouched", "untouched/f",
                                    "untouched/stays"}


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("path", [
    pytest.param("../x", id="dot-dot"), pytest.param("a/./b", id="dot"), pytest.param("a//b", id="empty-name"),
    pytest.param("a/", id="trailing-slash"), pytest.param("/a", id="leading-slash"), pytest.param("", id="empty"),
    pytest.param(".git/config", id="dot-git"), pytest.param("x/.GIT/hooks/pre-commit", id="dot-git-any-case"),
    pytest.param("GIT~1/config", id="dot-git-short-name"), pytest.param(".git. /x", id="dot-git-with-dots"),
    pytest.param("a\\b", id="backslash"),
])
def test_a_path_git_would_not_store_is_refused_not_skipped(repo, path):
    with pytest.raises(GitFailed, match="refusing to commit"):
        repo.g.make_tree(repo.commit({"a/b": F}), repo.changes({path: F, "c": F}), repo.tmp)


@pytest.mark.parametrize("mode", [pytest.param("040000", id="a-folder"), pytest.param("644", id="no-type"),
                                  pytest.param("100644 ", id="trailing-space"), pytest.param("10064x", id="not-octal")])
def test_a_mode_that_is_not_a_files_is_refused(repo, mode):
    with pytest.raises(GitFailed, match=f"mode {mode!r}.*refusing to commit"):
        repo.g.make_tree(None, {"a": (mode, repo.blobs[1])}, repo.tmp)


@pytest.mark.parametrize("path, mode, says", [
    pytest.param(".git/config", "100644", "the path", id="a-path"), pytest.param("a", "040000", "mode", id="a-mode")])
def test_the_index_route_refuses_the_same_paths_and_modes(repo, path, mode, says):
    repo.g.LARGE_CHANGE = 0
    try:
        with pytest.raises(GitFailed, match=f"{says}.*refusing to commit"):
            repo.g.make_tree(repo.commit({"a/b": F}), {path: (mode, repo.blobs[1]), "c": repo.entry(*F)}, repo.tmp)
    finally:
        del repo.g.LARGE_CHANGE


def test_a_missing_blob_is_refused(repo):
    missing = repo.g.blob_id(b"never stored\n")
    with pytest.raises(GitFailed, match=f"{missing}.*refusing to commit"):
        repo.g.make_tree(repo.commit({"a/b": F}), {"a/c": ("100644", missing)}, repo.tmp)


def test_trees_git_stores_under_other_ids_than_computed_are_refused(tmp_path):
    """A git that hashes differently (here: render believes a SHA-1 repository is SHA-256) names
    the trees it stores other than render computed them: refused, never committed."""
    r = Repo(tmp_path / "repo", "sha1")
    r.g._format = "sha256"
    with pytest.raises(GitFailed, match="other ids than computed; refusing to commit"):
        r.g.make_tree(None, {"a": ("100644", r.blobs[1])}, r.tmp)


# ------------------------------------------------------------------------------------ cost


class Recording(Git):
    """The real git, recording each command and what it was given."""

    calls: list

    def run(self, *args, **kw):
        self.calls.append((args, kw.get("stdin")))
        return super().run(*args, **kw)


def test_a_one_file_change_reads_only_the_trees_on_its_path_and_never_the_whole_tree(tmp_path):
    r = Repo(tmp_path / "repo", "sha1")
    files = {f"env/plugins/t{t}/p{p}/f{f}.yaml": F for t in range(40) for p in range(3) for f in range(4)}
    base = r.commit(files)
    g = Recording(r.path)
    g.calls = []
    new = g.make_tree(base, r.changes({"env/plugins/t7/p1/f2.yaml": ("100644", 2)}), r.tmp)
    assert new == reference_make_tree(r.g, base, r.changes({"env/plugins/t7/p1/f2.yaml": ("100644", 2)}), r.tmp)
    commands = [args[:2] for args, _ in g.calls if args != ("rev-parse", "--show-object-format")]
    # no read-tree, ls-tree -r or write-tree: the trees on the path, a level a call; the blob; the new trees
    assert commands == [("cat-file", "--batch")] * 5 + [("cat-file", "--batch-check=%(objectname) %(objecttype)"),
                                                         ("mktree", "-z")]
    read = [stdin.decode().split() for args, stdin in g.calls if args[:2] == ("cat-file", "--batch")]
    assert read == [[f"{base}^{{tree}}"]] + [[r.g.object_id(f"{base}:{p}")] for p in
                                             ("env", "env/plugins", "env/plugins/t7", "env/plugins/t7/p1")]
    checked = [stdin.decode().split() for args, stdin in g.calls if args[1].startswith("--batch-check")]
    assert checked == [[r.blobs[2]]]  # checked for presence, never read
    written = [stdin for args, stdin in g.calls if args[0] == "mktree"][0]
    assert written.count(b"\0\0") == 5  # the five trees on the path, nothing else
    assert r.files(new)["env/plugins/t7/p1/f2.yaml"] == "100644" and len(
        [p for p, m in r.files(new).items() if m != "040000"]) == len(files)
