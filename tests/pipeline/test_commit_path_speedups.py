"""What the commit path's shortcuts keep as it was: planning keeps ceiling outcomes per need and
ceilings (each tenant still gets its own verdict), units are grouped per folder exactly as
``unit_of`` groups paths, the mass-delete check counts only when a bundle goes, input files are
read whole with one read, a listed install swapped for a link is still refused, and facts that do
not have their shape do not read back."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.core import quantity
from renderer.core.errors import InputError
from renderer.core.layout import unit_of
from renderer.gitops.changes import _by_unit, check_mass_delete
from renderer.pipeline.ceilings import needs
from renderer.pipeline.load import _Reader, _read_regular, load
from renderer.pipeline.models import PluginInstall
from renderer.pipeline.plan import plan
from renderer.pipeline.audit import facts_from_json

T1 = "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d"  # lesson-summarizer and quiz-generator in dev
T2 = "riverside-academy"  # grade-sync and quiz-generator in dev


def _tenant(envs: Path, tenant: str, cpu: str) -> None:
    path = envs / f"dev/tenants/{tenant}/tenant.yaml"
    path.write_text(f"apiVersion: plugins.adapstory.io/v1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec:\n"
                    f"  tier: standard\n  ceilings: {{cpu: \"{cpu}\", memory: 8Gi, storage: 20Gi, "
                    "llmTokensPerDay: 1000000, requestsPerSecond: 100}\n")


def test_the_same_installs_under_the_same_ceilings_are_refused_for_each_tenant(envs):
    for name in ("lesson-summarizer", "quiz-generator"):  # the second tenant installs T1's files, byte for byte
        shutil.copyfile(envs / f"dev/tenants/{T1}/plugins/{name}.yaml", envs / f"dev/tenants/{T2}/plugins/{name}.yaml")
    (envs / f"dev/tenants/{T2}/plugins/grade-sync.yaml").unlink()
    dev = next(e for e in plan(load(envs), "0" * 64) if e.name == "dev")
    cpu = {b.plugin: needs(b.spec)["cpu"] for b in dev.bundles if b.tenant == T2}
    assert len(cpu) == 2 and all(cpu.values())
    for tenant in (T1, T2):  # each install fits alone, the two together do not
        _tenant(envs, tenant, quantity.cpu(max(cpu.values())))
    with pytest.raises(InputError) as caught:
        plan(load(envs), "0" * 64)
    assert sorted(p.path for p in caught.value.problems if p.field == "spec.ceilings.cpu") == [
        f"dev/tenants/{T1}/tenant.yaml", f"dev/tenants/{T2}/tenant.yaml"]
    assert not [p for p in caught.value.problems if "exceeds tenant" in p.message]


def test_a_tenant_whose_installs_fit_together_does_not_let_the_next_tenant_with_those_ceilings_through(envs):
    # dev: T1 needs 0.75 + 1 cpu, T2 0.4 + 2 (another quiz-generator version): under 2 cpu each, T1 fits, T2 not
    for tenant in (T1, T2):
        _tenant(envs, tenant, "2")
    with pytest.raises(InputError) as caught:
        plan(load(envs), "0" * 64)
    cpu = [p for p in caught.value.problems if p.field == "spec.ceilings.cpu"]
    assert [p.path for p in cpu] == [f"dev/tenants/{T2}/tenant.yaml"] and "installs need 2400m cpu" in cpu[0].message


def test_an_install_over_its_tenants_ceiling_is_refused_though_the_same_install_fit_another_tenant(envs):
    shutil.copyfile(envs / f"dev/tenants/{T1}/plugins/quiz-generator.yaml",
                    envs / f"dev/tenants/{T2}/plugins/quiz-generator.yaml")
    _tenant(envs, T1, "64")
    _tenant(envs, T2, "1m")
    with pytest.raises(InputError) as caught:
        plan(load(envs), "0" * 64)
    assert {p.path for p in caught.value.problems if "exceeds tenant" in p.message} == {
        f"dev/tenants/{T2}/plugins/quiz-generator.yaml", f"dev/tenants/{T2}/plugins/grade-sync.yaml"}


_names = st.sampled_from(["dev", "prod", ".render", "holds", "plugins", "argocd", "t", "p", "a.json", "x.yaml", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_names, min_size=1, max_size=6).map("/".join), max_size=40))
def test_units_grouped_per_folder_are_the_units_of_each_path(paths):
    tree = {path: ("100644", f"{i:040x}") for i, path in enumerate(paths)}
    expected: dict = {}
    for path, entry in tree.items():
        expected.setdefault(unit_of(path), {})[path] = entry
    assert _by_unit(tree) == expected


def test_the_mass_delete_check_counts_only_when_a_bundle_goes():
    bundle = {f"dev/plugins/t/p{i}/{name}": ("100644", "a" * 40) for i in range(4) for name in ("bundle.json", "x.yaml")}
    edited = {**bundle, "dev/plugins/t/p0/x.yaml": ("100644", "b" * 40)}
    assert check_mass_delete(bundle, edited, 0.2, False) == []
    gone = {p: e for p, e in bundle.items() if not p.startswith("dev/plugins/t/p0/")}
    assert "would delete 1 of 4 bundles of environment dev" in check_mass_delete(bundle, gone, 0.2, False)[0]


@pytest.mark.parametrize("size", [0, 1, 4095, 65536, 65537, 300_000])
@pytest.mark.parametrize("limit", [10, 65536, 1 << 20])
def test_a_file_is_read_whole_up_to_the_limit(tmp_path, size, limit):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    assert _read_regular(path, limit) == path.read_bytes()[:limit]


def test_a_listed_install_swapped_for_a_link_is_refused_as_outside(tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("x: 1\n")
    folder = tmp_path / "root" / "plugins"
    folder.mkdir(parents=True)
    (folder / "grade-sync.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    reader = _Reader((tmp_path / "root").resolve())
    assert reader.read(reader.root / "plugins" / "grade-sync.yaml", PluginInstall, listed=True) is None
    assert [(p.path, p.message[:24]) for p in reader.problems] == [("plugins/grade-sync.yaml", "is a symbolic link or li")]


_FACTS = {"bundle": "dev/plugins/t/p", "tenant": "t", "plugin": "p", "claims": [["namespace", "n"]], "acl_names": [],
          "peers": [["f: NetworkPolicy/p", "*"]], "namespaces": ["n"], "topic_prefix": "", "kafka_users": [],
          "kafka_secrets": []}


@pytest.mark.parametrize("damage", [
    pytest.param(lambda f: {**f, "claims": [["namespace", "n", "extra"]]}, id="a-pair-of-three"),
    pytest.param(lambda f: {**f, "claims": [["namespace"]]}, id="a-pair-of-one"),
    pytest.param(lambda f: {**f, "peers": [["f", 1]]}, id="a-pair-with-a-number"),
    pytest.param(lambda f: {**f, "acl_names": "not a list"}, id="pairs-not-a-list"),
    pytest.param(lambda f: {**f, "claims": ["namespace"]}, id="a-pair-not-a-list"),
    pytest.param(lambda f: {**f, "namespaces": ["n", None]}, id="a-namespace-not-a-string"),
    pytest.param(lambda f: {**f, "kafka_users": {}}, id="users-not-a-list"),
    pytest.param(lambda f: {**f, "claims": [{"namespace": 1, "n": 2}]}, id="a-pair-that-is-a-mapping-of-two-keys"),
    pytest.param(lambda f: {**f, "claims": ["ns"]}, id="a-pair-that-is-a-text-of-two-letters"),
    pytest.param(lambda f: {**f, "tenant": 7}, id="a-tenant-not-a-string"),
    pytest.param(lambda f: {k: v for k, v in f.items() if k != "peers"}, id="a-key-missing"),
    pytest.param(lambda f: [f], id="not-a-mapping"),
])
def test_facts_without_their_shape_do_not_read_back(damage):
    assert facts_from_json(_FACTS) == {**_FACTS, "claims": [("namespace", "n")], "peers": [("f: NetworkPolicy/p", "*")]}
    assert facts_from_json(damage(_FACTS)) is None
