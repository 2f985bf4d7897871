"""The custom-resource schemas the package ships (renderer/_data/schemas): exactly the emitted
custom kinds, byte for byte what `render schemas import` makes of the pinned upstream CRDs, always a
schema location, overridable; and a real `pip install .` whose `render` works from another folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE, REPO, SHARED_CRDS

from tests.tools import ship_schemas  # noqa: E402

from renderer.core.resources import SCHEMAS  # noqa: E402
from renderer.gates.schemas import SchemaStore  # noqa: E402
from renderer.pipeline.render import EMITTED  # noqa: E402

UPSTREAM = REPO.parent / "shared" / "schemas" / "upstream"
HINT = "run `.venv/bin/python tests/tools/ship_schemas.py` after changing EMITTED or the upstream CRDs"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The shipped set made afresh from ../shared/schemas/upstream with the real CLI."""
    out = tmp_path_factory.mktemp("shipped") / "schemas"
    ship_schemas.ship(out, UPSTREAM)
    return out


def _from_shared(tree: dict) -> dict:
    """The schemas whose upstream CRD is pinned under ../shared (the fetched groups have none there)."""
    return {name: data for name, data in tree.items() if name.split("/")[0] not in ship_schemas.FETCHED_GROUPS}


def test_the_schemas_regenerated_from_upstream_equal_the_shipped_ones_byte_for_byte(regenerated):
    got, shipped = _from_shared(_tree(regenerated)), _from_shared(_tree(SCHEMAS))
    assert sorted(got) == sorted(shipped), HINT
    assert [name for name in got if got[name] != shipped[name]] == [], HINT


def test_the_schemas_regenerated_from_upstream_equal_the_shared_ones_byte_for_byte(regenerated):
    got = _from_shared(_tree(regenerated))
    assert got
    differ = [name for name in got if (SHARED_CRDS / name).read_bytes() != got[name]]
    assert differ == []


def test_exactly_the_emitted_custom_kinds_are_shipped():
    wanted = {f"{group}/{kind.lower()}_{version}.json" for group, kind, version in ship_schemas.custom_kinds()}
    assert set(_tree(SCHEMAS)) == wanted, HINT
    # every custom kind of EMITTED, and nothing built in
    assert ("kafka.strimzi.io", "KafkaUser", "v1") in ship_schemas.custom_kinds()
    assert not any(group.endswith(".k8s.io") or "." not in group for group, _, _ in ship_schemas.custom_kinds())
    builtin = {kind for api, kind in EMITTED if "/" not in api or not ship_schemas.custom_kinds([(api, kind)])}
    assert {"Deployment", "PodDisruptionBudget", "NetworkPolicy"} <= builtin


def test_a_kind_that_no_upstream_crd_serves_is_named():
    with pytest.raises(LookupError, match=r"no upstream CRD .* serves example\.com/v1 Widget"):
        ship_schemas.sources(UPSTREAM, EMITTED + (("example.com/v1", "Widget"),))


def test_an_upstream_version_from_an_older_pinned_release_is_found_in_its_folder():
    (crd, rel, version), = ship_schemas.sources(UPSTREAM, (("kafka.strimzi.io/v1beta2", "KafkaUser"),))
    assert (crd.parent.name, rel, version) == ("strimzi-0.51.0", "kafka.strimzi.io/kafkauser_v1beta2.json", "v1beta2")
    (crd, _, _), = ship_schemas.sources(UPSTREAM, (("kafka.strimzi.io/v1", "KafkaUser"),))
    assert crd.parent.name == "kafka.strimzi.io"  # the current release, not the older one that also serves v1


# ---------------------------------------------------------------- the shipped folder as a location

def _kafka_user() -> dict:
    return {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": "u", "namespace": "kafka", "labels": {"strimzi.io/cluster": "c"}},
            "spec": {"authentication": {"type": "scram-sha-512"}}}


def test_the_shipped_schemas_serve_with_no_location_given():
    store = SchemaStore("1.33", [])
    assert store.validate(_kafka_user()) == []
    assert store.schema_source("kafka.strimzi.io/v1", "KafkaUser") == str(SCHEMAS / "kafka.strimzi.io" / "kafkauser_v1.json")
    bad = _kafka_user()
    bad["spec"]["authentcation"] = bad["spec"].pop("authentication")
    assert store.validate(bad) != []  # strict: a misspelt field is refused


def test_a_kind_nobody_ships_names_the_shipped_folder_among_the_places_looked_in():
    (violation,) = SchemaStore("1.33", []).validate({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                                                     "metadata": {"name": "x"}})
    assert "the shipped schemas (" in violation.message and "no schema for kind ClusterPolicy" in violation.message


def test_a_given_location_overrides_a_shipped_schema_and_adds_kinds(tmp_path):
    loose = json.loads((SCHEMAS / "kafka.strimzi.io" / "kafkauser_v1.json").read_text())
    loose["properties"]["spec"]["additionalProperties"] = True
    (tmp_path / "kafka.strimzi.io").mkdir()
    (tmp_path / "kafka.strimzi.io" / "kafkauser_v1.json").write_text(json.dumps(loose))
    shutil.copytree(SHARED_CRDS / "kyverno.io", tmp_path / "kyverno.io")
    store = SchemaStore("1.33", [str(tmp_path)])
    odd = copy.deepcopy(_kafka_user())
    odd["spec"]["extra"] = 1
    assert store.validate(odd) == []  # the given location's schema won
    assert store.schema_source("kafka.strimzi.io/v1", "KafkaUser").startswith(str(tmp_path))
    assert store.schema_source("kyverno.io/v1", "ClusterPolicy").startswith(str(tmp_path))  # added
    assert store.schema_source("argoproj.io/v1alpha1", "AppProject").startswith(str(SCHEMAS))  # still shipped


def test_render_builds_the_examples_without_any_schema_location(tmp_path, render, monkeypatch):
    monkeypatch.delenv("RENDER_SCHEMA_LOCATION", raising=False)
    result = render("build", EXAMPLE, "--out", tmp_path / "out", "--offline")
    assert result.code == 0, result.err
    assert "no schema" not in result.err


# ---------------------------------------------------------------- a real install

def test_pip_install_then_render_from_another_folder_builds_the_examples(tmp_path):
    """A fresh venv, a real `pip install` of a copy of the sources (so no build/ lands in the
    checkout), then the installed `render` in a folder that holds only a copy of environments/.
    The package is built and installed by pip; its dependencies are not downloaded again (about
    10 minutes here): the fresh venv sees this venv's installed ones through a .pth file (which
    does not activate this checkout's editable install: .pth files of an added folder are not run),
    and their executables (squawk) through PATH."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "renderer", "templates", "policies"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(
            REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RENDER_", "PYTHON", "VIRTUAL_ENV"))}
    # the dependencies' executables (squawk) stay where they were installed: last on PATH
    clean["PATH"] = os.pathsep.join([clean.get("PATH", ""), sysconfig.get_paths()["scripts"]])
    site_dir = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site_dir, "render-test-deps.pth").write_text("".join(d + "\n" for d in deps))
    pip = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(src)],
                         capture_output=True, text=True, env=clean, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = tmp_path / "elsewhere"
    shutil.copytree(EXAMPLE, work / "environments")
    run = subprocess.run([str(env_dir / "bin" / "render"), "build", "environments", "--out", "x", "--offline"],
                         cwd=work, capture_output=True, text=True, env={**clean, "RENDER_CACHE_DIR": str(tmp_path / "cache")},
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert len(list((work / "x").glob("*/plugins/*/*/bundle.json"))) == 9
    site = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                           "import renderer.core.resources as r; print(r.TEMPLATES, r.POLICIES, r.SCHEMAS, sep='\\n')"],
                          cwd=work, capture_output=True, text=True, env=clean, check=True).stdout.split()
    assert all(str(env_dir) in p and "/renderer/_data/" in p for p in site), site
    installed = Path(site[0]).parent
    assert sorted(p.name for p in (installed / "templates").glob("*.j2")) == sorted(p.name for p in (REPO / "templates").glob("*.j2"))
    assert sorted(p.name for p in (installed / "policies").glob("*.rego")) == sorted(p.name for p in (REPO / "policies").glob("*.rego"))
    assert _tree(installed / "schemas") == _tree(SCHEMAS)
    # the rendered bundles are the golden ones: the installed data is the checkout's
    golden = REPO / "tests" / "golden"
    assert _tree(work / "x" / "dev") == _tree(golden / "dev")
    assert yaml.safe_load((work / "x" / "dev" / "argocd" / "appproject-plugins.yaml").read_text())["kind"] == "AppProject"
