"""The snapshot's bundle folders (``Snapshot.bundle_ids``, ``Snapshot.kept_files``), grouped in one
pass over the head's tree: the files right in each bundle folder, as grouping every path by its
folder gives them, and a kept bundle's files exactly as the commit held them before (each file
(100644, blob id), whatever mode the head gave it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core import layout
from renderer.gitops.git import BLOB
from renderer.gitops.publish import Snapshot

_names = st.sampled_from(["dev", "prod", ".render", "holds", "plugins", "argocd", "t", "p", "q", "bundle.json",
                          "x.yaml", "sub"])
_modes = st.sampled_from(["100644", "100755", "120000"])
_trees = st.lists(st.tuples(st.lists(_names, min_size=1, max_size=6).map("/".join), _modes), max_size=40).map(
    lambda items: {p: (mode, f"{i:040x}") for i, (p, mode) in enumerate(sorted(dict(items).items()))})


def _by_folder(tree: dict) -> dict:
    """Every path by its folder, for the folders that are bundle folders."""
    grouped: dict = {}
    for path, (_mode, oid) in tree.items():
        folder, _, name = path.rpartition("/")
        if layout.parse_bundle(folder) is not None:
            grouped.setdefault(folder, []).append((name, oid))
    return grouped


@settings(max_examples=400, deadline=None)
@given(_trees)
def test_each_bundle_folder_holds_the_files_right_in_it_and_a_kept_one_is_written_as_plain_files(tree):
    snap = Snapshot("main", None, lambda: tree, lambda oids: {})
    expected = _by_folder(tree)
    assert snap.bundle_ids(list(expected) + ["dev/plugins/none/p"]) == {
        folder: tuple(sorted(items)) for folder, items in expected.items()}
    kept = snap.kept_files(list(expected) + ["dev/plugins/none/p"])
    assert kept == {folder: {f"{folder}/{name}": (BLOB, oid) for name, oid in items}
                    for folder, items in expected.items()}


def test_a_subfolders_files_between_a_folders_files_leave_both_groups_whole():
    tree = {"dev/plugins/t/p/a.yaml": ("100644", "1" * 40), "dev/plugins/t/p/b/c.yaml": ("100644", "2" * 40),
            "dev/plugins/t/p/z.yaml": ("100755", "3" * 40)}
    snap = Snapshot("main", None, lambda: tree, lambda oids: {})
    assert snap.bundle_ids(["dev/plugins/t/p"]) == {"dev/plugins/t/p": (("a.yaml", "1" * 40), ("z.yaml", "3" * 40))}
    assert snap.kept_files(["dev/plugins/t/p"]) == {"dev/plugins/t/p": {
        "dev/plugins/t/p/a.yaml": (BLOB, "1" * 40), "dev/plugins/t/p/z.yaml": (BLOB, "3" * 40)}}
