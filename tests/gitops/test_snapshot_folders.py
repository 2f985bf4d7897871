"""The snapshot's bundle folders on the head's outline (``Snapshot.bundle_ids``, ``kept_files``,
``bundle_files``), and ``Repo.snapshot``: a head render committed is not listed again (its outline
was recorded), a head with no record is listed once and recorded, and a record that does not prove
to be the head's is listed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renderer.gitops.git import TREE, Git
from renderer.gitops.outline import fold
from renderer.gitops.publish import CommitOptions, Snapshot, open_repo
from tests.gitops.test_make_tree import CONTENTS, Repo
from tests.support.git import env_dir, render, signing_key  # noqa: F401  (fixtures are used by name)

OUTLINE = {
    "dev/plugins/t/p": (TREE, "1" * 40),
    "dev/plugins/t/q": (TREE, "2" * 40),
    "dev/plugins/t/nested/a.yaml": ("100644", "3" * 40),  # a bundle folder with a folder in it: listed
    "dev/plugins/t/nested/sub/b.yaml": ("100644", "4" * 40),
    "dev/argocd/application-plugin-t-p.yaml": ("100644", "5" * 40),
    ".render/managed": ("100644", "6" * 40),
}


def test_bundle_ids_and_kept_files_are_the_folded_bundle_folders_of_the_outline():
    snap = Snapshot("main", None, lambda: OUTLINE, lambda oids: {})
    asked = ["dev/plugins/t/p", "dev/plugins/t/q", "dev/plugins/t/nested", "dev/plugins/none/p"]
    assert snap.bundle_ids(asked) == {"dev/plugins/t/p": "1" * 40, "dev/plugins/t/q": "2" * 40}
    assert snap.kept_files(asked) == {"dev/plugins/t/p": {"dev/plugins/t/p": (TREE, "1" * 40)},
                                      "dev/plugins/t/q": {"dev/plugins/t/q": (TREE, "2" * 40)}}


@pytest.mark.parametrize("names, expected", [
    pytest.param(None, {"dev/plugins/t/p": {"a.yaml": CONTENTS[1], "bundle.json": CONTENTS[2]},
                        "dev/plugins/t/nested": {"a.yaml": CONTENTS[3]}}, id="every-file"),
    pytest.param(["bundle.json"], {"dev/plugins/t/p": {"bundle.json": CONTENTS[2]}}, id="only-the-names-asked"),
])
def test_bundle_files_read_a_folded_folder_through_git_and_a_listed_one_from_the_outline(tmp_path, names, expected):
    repo = Repo(tmp_path / "repo", "sha1")
    commit = repo.commit({"dev/plugins/t/p/a.yaml": ("100644", 1), "dev/plugins/t/p/bundle.json": ("100644", 2),
                          "dev/plugins/t/nested/a.yaml": ("100644", 3), "dev/plugins/t/nested/sub/b.yaml": ("100644", 4)})
    outline = fold(repo.g, repo.g.tree(commit))
    assert outline["dev/plugins/t/p"][0] == TREE and "dev/plugins/t/nested" not in outline
    snap = Snapshot("main", commit, lambda: outline, repo.g.read_blobs, repo.g)
    assert snap.bundle_files(["dev/plugins/t/p", "dev/plugins/t/nested", "dev/plugins/t/gone"], names) == expected


# ------------------------------------------------------------------------------------ Repo.snapshot


@pytest.fixture
def listings(monkeypatch):
    """How many times git listed a whole tree."""
    calls: list[str] = []
    real = Git._list_tree

    def counted(self, commit):
        calls.append(commit)
        return real(self, commit)

    monkeypatch.setattr(Git, "_list_tree", counted)
    return calls


def _committed(render, env_dir, tmp_path) -> tuple[Path, Path]:
    repo, cache = tmp_path / "gitops", Path(os.environ["RENDER_CACHE_DIR"])
    run = render("commit", str(env_dir), "--repo", str(repo), "--offline", "--init")
    assert run.code == 0, run.err
    return repo, cache


def _snapshot(repo: Path, cache: Path):
    with open_repo(CommitOptions(repo=str(repo), cache_dir=cache), write=False) as opened:
        snap = opened.snapshot()
        return snap, snap.tree, fold(opened.ws.g, opened.ws.g.tree(snap.base))


def test_a_head_render_committed_is_not_listed_again(render, env_dir, tmp_path, listings):
    repo, cache = _committed(render, env_dir, tmp_path)
    listings.clear()
    snap, tree, expected = _snapshot(repo, cache)
    assert listings == [snap.base], "only the test's own listing"
    assert tree == expected and len(snap.bundle_ids(p for p in tree if p.startswith("dev/plugins/"))) > 0


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda record: record.unlink(), id="no-record"),
    pytest.param(lambda record: record.write_bytes(record.read_bytes().replace(b"100644", b"100755", 1)),
                 id="a-record-that-lies"),
])
def test_a_head_without_a_true_record_is_listed_once_and_recorded(render, env_dir, tmp_path, listings, spoil):
    repo, cache = _committed(render, env_dir, tmp_path)
    records = cache / "outlines" / "v1"
    with open_repo(CommitOptions(repo=str(repo), cache_dir=cache), write=False) as opened:
        tree_id = opened.ws.g.object_id("HEAD^{tree}")
    spoil(records / tree_id)
    listings.clear()
    snap, tree, expected = _snapshot(repo, cache)
    assert listings == [snap.base, snap.base], "the snapshot's listing, then the test's own"
    assert tree == expected
    listings.clear()
    assert _snapshot(repo, cache)[1] == expected and len(listings) == 1, "recorded again: the next run lists nothing"
