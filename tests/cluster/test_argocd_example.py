"""The shipped example that runs ``render mark-good --from-argocd`` in a cluster
(``examples/argocd/mark-good-cronjob.yaml``): it cannot be applied here, so it is held to what can
be checked: every object passes the project's schema gate (Kubernetes 1.33 strict schemas), the
Role grants exactly get and list on Argo CD Applications, and the command parses with the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from renderer.cli.main import parser
from renderer.gates.schemas import SchemaStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "argocd" / "mark-good-cronjob.yaml"


@pytest.fixture(scope="module")
def objects() -> dict:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_the_example_holds_a_service_account_a_role_its_binding_and_the_cron_job(objects):
    assert sorted(objects) == ["CronJob", "Role", "RoleBinding", "ServiceAccount"]
    assert {o["metadata"]["namespace"] for o in objects.values()} == {"argocd"}


def test_every_object_of_the_example_passes_the_schema_gate(objects):

    gate = SchemaStore("1.33", ())  # the schemas the package ships
    for kind, obj in objects.items():
        assert gate.validate(obj) == [], kind


def test_the_role_allows_only_get_and_list_on_applications_and_is_bound_to_the_job(objects):
    assert objects["Role"]["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["applications"],
                                         "verbs": ["get", "list"]}]
    binding = objects["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "render-mark-good"}
    account = objects["ServiceAccount"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "argocd"}]
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account and pod["automountServiceAccountToken"] is True


def test_the_command_parses_with_the_cli_and_reads_its_git_credentials_from_a_secret(objects):
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["render"]
    args = parser().parse_args(container["args"])  # a usage error raises SystemExit(2) and fails the test
    assert (args.command, args.from_argocd, args.env, args.argocd_namespace) == ("mark-good", True, "dev", "argocd")
    assert args.repo.startswith("https://") and args.plugin is None and args.tenant is None
    helper = {e["name"]: e.get("value") for e in container["env"]}["GIT_CONFIG_VALUE_0"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["git-credentials"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "git-credentials"]
    assert helper == f"store --file={mount}/{volume['secret']['items'][0]['path']}"
    assert volume["secret"]["secretName"] == "render-gitops-credentials"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
