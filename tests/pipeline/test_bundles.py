"""The example environments, rendered end to end: golden bytes, determinism, schemas, kustomize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE, REPO, tree_digest

GOLDEN = REPO / "tests" / "golden"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    from renderer import cli
    out = tmp_path_factory.mktemp("rendered") / "out"
    code = cli.main(["build", str(EXAMPLE), "--out", str(out), "--offline", "--no-cache"])
    assert code == 0
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_example_environments_render_to_the_golden_files_byte_for_byte(rendered):
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(rendered, GOLDEN)
    got, want = _files(rendered), _files(GOLDEN)
    assert sorted(got) == sorted(want), "file sets differ (run `make golden` after an intended change)"
    changed = [name for name in got if got[name] != want[name]]
    assert not changed, f"files differ from tests/golden: {changed[:10]}"


def test_two_renders_of_the_same_input_give_the_same_bytes(rendered, tmp_path, render):
    assert render("build", EXAMPLE, "--out", tmp_path / "again", "--offline", "--jobs", "2").code == 0
    assert tree_digest(tmp_path / "again") == tree_digest(rendered)


def test_every_bundle_builds_with_kubectl_kustomize(rendered):
    bundles = sorted(rendered.glob("*/plugins/*/*"))
    assert len(bundles) == 9
    for bundle in bundles:
        proc = subprocess.run(["kubectl", "kustomize", str(bundle)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{bundle}: {proc.stderr}"
        built = list(yaml.load_all(proc.stdout, Loader=yaml.CSafeLoader))
        listed = yaml.load((bundle / "kustomization.yaml").read_bytes(), Loader=yaml.CSafeLoader)["resources"]
        assert len(built) == len(listed)


def test_every_emitted_object_passes_the_strict_schemas(rendered):
    from renderer.gates.schemas import SchemaStore, locations_from_env

    store = SchemaStore("1.33", locations_from_env())
    count = 0
    for path in sorted(rendered.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        assert store.validate(obj) == [], path
        assert store.reference_validate(obj) == [], path  # the reference jsonschema engine agrees
        count += 1
    assert count > 100


def test_a_bundle_holds_every_required_kind(rendered):
    bundle = rendered / "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator"
    kinds = {yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader)["kind"] for p in bundle.glob("*.yaml")}
    assert kinds >= {"Namespace", "ServiceAccount", "ExternalSecret", "ResourceQuota", "LimitRange", "NetworkPolicy",
                     "Deployment", "Service", "HorizontalPodAutoscaler", "KafkaUser", "Role", "Schema", "Grant",
                     "Policy", "PrometheusRule", "ConfigMap", "Kustomization"}
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["signature"]["keyFingerprint"].startswith("sha256:")
    assert meta["inputDigest"].startswith("sha256:") and meta["pluginVersion"] == "1.3.0"


def test_the_deployment_is_locked_down(rendered):
    path = rendered / "dev/plugins/riverside-academy/quiz-generator/deployment-quiz-generator.yaml"
    dep = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
    assert "replicas" not in dep["spec"], "the HPA owns replicas"
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert "@sha256:" in c["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    env = {e["name"]: e for e in c["env"]}
    assert env["LOG_FORMAT"]["value"] == "json"
    assert "tenant.id=riverside-academy" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "quiz-generator-secrets"
    token = pod["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["expirationSeconds"] <= 3600
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert "sidecar.opentelemetry.io/inject" in annotations and annotations["fluentbit.io/parser"] == "json"


def test_kafka_acls_stay_inside_the_tenants_topic_namespace(rendered):
    for path in rendered.glob("*/plugins/*/*/kafkauser-*.yaml"):
        user = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        tenant = user["metadata"]["labels"]["plugins.adapstory.io/tenant"]
        assert user["metadata"]["namespace"] == "kafka"
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["name"].startswith(f"tenant.{tenant}.")
            assert "*" not in acl["resource"]["name"]


def test_the_appproject_allows_only_namespace_as_cluster_scoped_and_only_bundle_namespaces(rendered):
    project = yaml.load((rendered / "prod/argocd/appproject-plugins.yaml").read_bytes(), Loader=yaml.CSafeLoader)
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    bundle_namespaces = {yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader)["metadata"]["name"]
                         for p in rendered.glob("prod/plugins/*/*/namespace-*.yaml")}
    assert namespaces == bundle_namespaces | {"kafka", "vault-config"}
    from renderer.pipeline.render import NAMESPACED_KINDS

    whitelist = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert whitelist == NAMESPACED_KINDS
    for path in rendered.glob("*/plugins/*/*/*.yaml"):
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        if obj["kind"] not in ("Namespace", "Kustomization"):
            assert (obj["apiVersion"].rpartition("/")[0], obj["kind"]) in whitelist, path
    apps = list((rendered / "prod/argocd").glob("application-*.yaml"))
    assert len(apps) == 5
    app = yaml.load(apps[0].read_bytes(), Loader=yaml.CSafeLoader)
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert app["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"] == "/" + app["spec"]["source"]["path"]


def test_a_removed_install_loses_its_bundle_and_other_envs_survive_an_env_run(envs, tmp_path, render):
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0
    victim = "dev/plugins/riverside-academy/grade-sync"
    assert (out / victim).is_dir()
    (envs / "dev/tenants/riverside-academy/plugins/grade-sync.yaml").unlink()
    prod_before = tree_digest(out / "prod")
    assert render("build", envs, "--out", out, "--offline", "--env", "dev").code == 0
    assert not (out / victim).exists()
    assert tree_digest(out / "prod") == prod_before


def test_only_rewrites_one_bundle(envs, tmp_path, render):
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0
    before = tree_digest(out / "prod")
    other = tree_digest(out / "dev/plugins/riverside-academy")
    install = envs / "dev/tenants/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/plugins/quiz-generator.yaml"
    install.write_text(install.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: warn"))
    result = render("build", envs, "--out", out, "--offline", "--only", "4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator")
    assert result.code == 0, result.err
    assert result.out.startswith("rendered 2 bundles ("), result.out  # that install in dev and in prod
    dep = (out / "dev/plugins/4f1c2b7e-9a0d-4c1e-8b2f-3d5e6a7b8c9d/quiz-generator/deployment-quiz-generator.yaml").read_text()
    assert "value: warn" in dep
    assert tree_digest(out / "prod") == before and tree_digest(out / "dev/plugins/riverside-academy") == other


def test_admission_checks_the_same_key_repository_and_tlog_stance_that_render_verified(rendered):
    import hashlib

    from cryptography.hazmat.primitives import serialization

    from renderer.trust.registry import parse_image

    for bundle in sorted(rendered.glob("*/plugins/*/*")):
        meta = json.loads((bundle / "bundle.json").read_text())
        policy = yaml.load((bundle / "policy-verify-image-signature.yaml").read_bytes(), Loader=yaml.CSafeLoader)
        verify = policy["spec"]["rules"][0]["verifyImages"][0]
        repo = parse_image(meta["image"]).repository
        assert sorted(verify["imageReferences"]) == sorted([f"{repo}@*", f"{repo}:*"])
        assert verify["failureAction"] == "Enforce" and verify["mutateDigest"] is False
        keys = verify["attestors"][0]["entries"][0]["keys"]
        assert keys["rekor"] == {"ignoreTlog": True} and keys["ctlog"] == {"ignoreSCT": True}
        der = serialization.load_pem_public_key(keys["publicKeys"].encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert "sha256:" + hashlib.sha256(der).hexdigest() == meta["signature"]["keyFingerprint"]


def test_a_rebuild_keeps_unchanged_bundles_and_repairs_hand_edits(envs, tmp_path, render):
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0
    first = tree_digest(out)
    deployment = out / "dev/plugins/riverside-academy/grade-sync/deployment-grade-sync.yaml"
    deployment.write_text(deployment.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    result = render("build", envs, "--out", out, "--offline")
    assert result.code == 0, result.err
    assert "8 kept as they were" in result.out, result.out
    assert tree_digest(out) == first, "the edited bundle was rendered afresh; the others kept byte for byte"


def test_every_emitted_kind_is_in_the_preflight_list(rendered):
    from renderer.pipeline.render import EMITTED

    for path in rendered.rglob("*.yaml"):
        obj = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        if obj["kind"] != "Kustomization":
            assert (obj["apiVersion"], obj["kind"]) in EMITTED, path


def test_without_custom_resource_schemas_the_run_stops_before_rendering_with_one_line_per_kind(tmp_path, render,
                                                                                               monkeypatch):
    import renderer.gates.schemas as schemas
    from renderer.pipeline.render import EMITTED

    monkeypatch.setattr(schemas, "SHIPPED_SCHEMAS", tmp_path / "not-installed")  # a broken install
    monkeypatch.setenv("RENDER_SCHEMA_LOCATION", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    result = render("build", EXAMPLE, "--out", tmp_path / "out", "--offline")
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if line.startswith("schema: no schema for ")]
    custom = [kind for api, kind in EMITTED if "." in api.split("/")[0] and not api.split("/")[0].endswith(".k8s.io")]
    assert len(lines) == len(custom), result.err  # the custom kinds; the built-in ones have schemas
    assert "schema: no schema for KafkaUser kafka.strimzi.io/v1" in result.err
    assert not (tmp_path / "out").exists()
