"""Outlines (``gitops.outline``): a head's tree with each bundle folder folded into its tree id,
against real repositories (SHA-1 and SHA-256). Folding keeps the root tree's id and gives each
folder the id git gives it; unfolding gives the listing back; a recorded outline is used only when
it proves to be the head's own, so a damaged or hostile record is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderer.gitops import outline as outline_module
from renderer.gitops.changes import check_mass_delete
from renderer.gitops.git import TREE
from renderer.gitops.outline import Outlines, files_id, fold, folder_files, is_folded, root_id, unfold
from renderer.gitops.publish import _count_bundles
from tests.gitops.test_make_tree import CONTENTS, FORMATS, Repo
from tests.support.git import git

BUNDLES = ("dev/plugins/t1/p1", "dev/plugins/t1/p2", "prod/plugins/t2/p1")
OTHERS = {"dev/argocd/application-plugin-t1-p1.yaml": ("100644", 3), ".render/managed": ("100644", 0),
          ".render/holds/dev/t1/p1.json": ("100644", 1), "README.md": ("100644", 2)}


def _rev(repo: Repo, spec: str) -> str:
    return git(repo.path, "rev-parse", spec).strip()


def _files(extra: dict | None = None) -> dict:
    files = {f"{b}/{name}": ("100644", i) for b in BUNDLES for i, name in enumerate(("bundle.json", "a.yaml"), 1)}
    files.update(OTHERS)
    files.update(extra or {})
    return files


@pytest.fixture(scope="module", params=FORMATS)
def repo(request, tmp_path_factory) -> Repo:
    return Repo(tmp_path_factory.mktemp("outline") / request.param, request.param)


@pytest.mark.parametrize("extra", [
    pytest.param({}, id="plain-files"),
    pytest.param({"dev/plugins/t1/p1/run.sh": ("100755", 4)}, id="an-executable-file"),
    pytest.param({"dev/plugins/t1/p1/link": ("120000", 1)}, id="a-symbolic-link"),
])
def test_each_bundle_folder_folds_into_the_id_git_gives_it_and_the_root_id_stays(repo, extra):
    commit = repo.commit(_files(extra))
    folded = fold(repo.g, repo.g.tree(commit))
    assert {b: folded[b] for b in BUNDLES} == {b: (TREE, _rev(repo, f"{commit}:{b}")) for b in BUNDLES}
    assert root_id(repo.g, folded) == _rev(repo, f"{commit}^{{tree}}")


def test_outside_the_bundle_folders_an_outline_is_the_listing(repo):
    commit = repo.commit(_files())
    listing = repo.g.tree(commit)
    folded = fold(repo.g, listing)
    assert {p: e for p, e in folded.items() if not is_folded(e)} == {p: e for p, e in listing.items()
                                                                     if not p.startswith(BUNDLES)}
    assert sorted(p for p, e in folded.items() if is_folded(e)) == sorted(BUNDLES)


def test_a_bundle_folder_with_a_folder_in_it_stays_listed_and_the_root_id_stays(repo):
    commit = repo.commit(_files({"dev/plugins/t1/p1/sub/x.yaml": ("100644", 2)}))
    listing = repo.g.tree(commit)
    folded = fold(repo.g, listing)
    assert "dev/plugins/t1/p1" not in folded
    assert {p: e for p, e in folded.items() if p.startswith("dev/plugins/t1/p1/")} == \
        {p: e for p, e in listing.items() if p.startswith("dev/plugins/t1/p1/")}
    assert root_id(repo.g, folded) == _rev(repo, f"{commit}^{{tree}}")


def test_unfolding_folders_gives_their_listed_files_back_and_leaves_the_others_folded(repo):
    commit = repo.commit(_files({"dev/plugins/t1/p2/run.sh": ("100755", 4)}))
    listing = repo.g.tree(commit)
    opened = unfold(repo.g, fold(repo.g, listing), ["dev/plugins/t1/p2", "prod/plugins/t2/p1", "no/such/folder"])
    assert {p: e for p, e in opened.items() if p.startswith(("dev/plugins/t1/p2/", "prod/"))} == \
        {p: e for p, e in listing.items() if p.startswith(("dev/plugins/t1/p2/", "prod/"))}
    assert is_folded(opened["dev/plugins/t1/p1"]) and "dev/plugins/t1/p2" not in opened


def test_a_folders_files_are_the_same_read_from_an_outline_or_a_listing(repo):
    commit = repo.commit(_files())
    listing = repo.g.tree(commit)
    for bundle in BUNDLES:
        assert folder_files(repo.g, fold(repo.g, listing), bundle) == folder_files(repo.g, listing, bundle) != []


def test_the_id_of_a_folder_of_rendered_files_is_the_id_git_gives_it_once_committed(repo):
    files = [("b.yaml", CONTENTS[2]), ("a.yaml", CONTENTS[1]), ("bundle.json", CONTENTS[3])]
    commit = repo.commit({f"dev/plugins/t/p/{name}": ("100644", CONTENTS.index(data)) for name, data in files})
    assert files_id(repo.g, files) == _rev(repo, f"{commit}:dev/plugins/t/p")


_names = st.sampled_from(["dev", "prod", "plugins", "argocd", ".render", "holds", "t", "p", "q", "a.yaml",
                          "bundle.json", "sub"])
_trees = st.dictionaries(st.lists(_names, min_size=1, max_size=6).map("/".join),
                         st.tuples(st.sampled_from(["100644", "100755", "120000"]), st.integers(0, 4)), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_trees)
def test_folding_any_tree_keeps_the_id_of_its_root(repo, spec):
    tree = {p: (mode, repo.blobs[i]) for p, (mode, i) in spec.items()}
    assert root_id(repo.g, fold(repo.g, tree)) == root_id(repo.g, tree)


# ------------------------------------------------------------------------------------ recorded outlines


def _recorded(repo: Repo, tmp_path: Path) -> tuple[Outlines, str, dict]:
    commit = repo.commit(_files())
    tree_id = _rev(repo, f"{commit}^{{tree}}")
    outlines = Outlines(tmp_path / "cache")
    folded = fold(repo.g, repo.g.tree(commit))
    outlines.put(tree_id, folded)
    return outlines, tree_id, folded


def test_a_recorded_outline_is_read_back_as_it_was(repo, tmp_path):
    outlines, tree_id, folded = _recorded(repo, tmp_path)
    assert outlines.get(repo.g, tree_id) == folded
    assert (tmp_path / "cache" / "outlines" / "v1" / tree_id).is_file()


def _swap_id(data: bytes) -> bytes:
    first = data.index(b"\0") + 1  # the second record's id, one hex digit changed
    digit = data[first + 6:first + 7]
    return data[:first + 6] + (b"0" if digit != b"0" else b"1") + data[first + 7:]


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda d, n: _swap_id(d), id="a-blob-id-changed"),
    pytest.param(lambda d, n: d[d.index(b"\0") + 1:], id="a-path-dropped"),
    pytest.param(lambda d, n: d + b"100644" + b"1" * n + b"dev/argocd/extra.yaml\0", id="a-path-added"),
    pytest.param(lambda d, n: d.replace(b"100644", b"100755", 1), id="a-mode-changed"),
    pytest.param(lambda d, n: d[:-1], id="the-last-record-cut-short"),
    pytest.param(lambda d, n: b"not an outline", id="garbage"),
    pytest.param(lambda d, n: b"\xff\xfe" * 20 + b"\0", id="not-text"),
    pytest.param(lambda d, n: b"", id="empty"),
    pytest.param(lambda d, n: d.replace(b"dev/", b"dev//", 1), id="a-path-git-would-not-store"),
])
def test_a_record_that_is_not_exactly_the_trees_listing_is_a_miss(repo, tmp_path, tamper):
    outlines, tree_id, _ = _recorded(repo, tmp_path)
    record = tmp_path / "cache" / "outlines" / "v1" / tree_id
    record.write_bytes(tamper(record.read_bytes(), len(tree_id)))
    assert outlines.get(repo.g, tree_id) is None


def test_a_record_that_folds_a_folder_render_does_not_fold_is_a_miss_though_it_is_true(repo, tmp_path):
    commit = repo.commit(_files())
    tree_id = _rev(repo, f"{commit}^{{tree}}")
    listing = repo.g.tree(commit)
    folded = {p: e for p, e in listing.items() if not p.startswith("dev/argocd/")}
    folded["dev/argocd"] = (TREE, _rev(repo, f"{commit}:dev/argocd"))
    assert root_id(repo.g, folded) == tree_id, "a true outline of the tree"
    outlines = Outlines(tmp_path / "cache")
    outlines.put(tree_id, folded)
    assert outlines.get(repo.g, tree_id) is None


def test_the_record_of_another_tree_is_a_miss(repo, tmp_path):
    outlines, tree_id, folded = _recorded(repo, tmp_path)
    other = _rev(repo, f"{repo.commit(_files({'dev/argocd/b.yaml': ('100644', 2)}))}^{{tree}}")
    outlines.put(other, folded)  # a record filed under the wrong id
    assert outlines.get(repo.g, other) is None and outlines.get(repo.g, tree_id) == folded


def test_without_a_cache_folder_nothing_is_recorded_or_read(repo, tmp_path):
    _, tree_id, folded = _recorded(repo, tmp_path)
    Outlines(None).put(tree_id, folded)
    assert Outlines(None).get(repo.g, tree_id) is None


def test_only_the_newest_outlines_are_kept(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(outline_module, "MAX_OUTLINES", 2)
    outlines = Outlines(tmp_path / "cache")
    ids = [c * len(repo.g.zero) for c in "abc"]
    for i, tree_id in enumerate(ids):
        outlines.put(tree_id, {"README.md": ("100644", repo.blobs[i])})
    assert sorted(p.name for p in (tmp_path / "cache" / "outlines" / "v1").iterdir()) == sorted(ids[1:])


# ------------------------------------------------------------------------------------ commits on outlines


def test_a_folded_bundle_folder_counts_as_a_bundle_and_its_removal_as_a_deletion():
    before = {f"dev/plugins/t/p{i}": (TREE, f"{i:040x}") for i in range(4)}
    before["dev/plugins/t/p9/bundle.json"] = ("100644", "9" * 40)
    assert _count_bundles(before) == 5
    after = {p: e for p, e in before.items() if p not in ("dev/plugins/t/p0", "dev/plugins/t/p1")}
    problems = check_mass_delete(before, after, 0.2, allow=False)
    assert len(problems) == 1 and "delete 2 of 5 bundles of environment dev" in problems[0]
    assert check_mass_delete(before, {p: e for p, e in before.items() if p != "dev/plugins/t/p0"}, 0.2, False) == []
