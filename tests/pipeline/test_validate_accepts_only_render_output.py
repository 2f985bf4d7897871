"""`render validate DIR` accepts only what render writes: a kustomization.yaml that does anything
but list the bundle's files, or an Argo CD file with a bad field, is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def built(envs, tmp_path, render) -> Path:
    out = tmp_path / "out"
    assert render("build", envs, "--out", out, "--offline").code == 0
    return out


BUNDLE = "dev/plugins/riverside-academy/grade-sync"
PRIVILEGED_PATCH = """patches:
  - target: {kind: Deployment}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/securityContext/privileged
        value: true
"""


@pytest.mark.parametrize("edit, says", [
    pytest.param(lambda t: t + PRIVILEGED_PATCH, "fields patches are not allowed", id="patches-privileged"),
    pytest.param(lambda t: t + "images:\n  - name: x\n    newName: evil.example/x\n", "fields images are not allowed",
                 id="image-override"),
    pytest.param(lambda t: t + "  - https://evil.example/remote-base\n", "resources must list exactly",
                 id="remote-resource"),
    pytest.param(lambda t: t.replace("- deployment-", "- ../other/deployment-"), "resources must list exactly",
                 id="file-outside-the-bundle"),
])
def test_a_kustomization_that_does_more_than_list_the_bundles_files_is_rejected(built, render, edit, says):
    path = built / BUNDLE / "kustomization.yaml"
    path.write_text(edit(path.read_text()))
    run = render("validate", built)
    assert run.code == 1 and f"{BUNDLE}/kustomization.yaml" in run.err and says in run.err


@pytest.mark.parametrize("folder, edit, says", [
    pytest.param("argocd", lambda t: t.replace("selfHeal: true", "selfHeal: true\n      selfHael: true"),
                 "selfHael", id="application-misspelled-field"),
    pytest.param("argocd", lambda t: t.replace("path: dev/plugins/riverside-academy/grade-sync",
                                               "path: dev/plugins/riverside-academy/other"),
                 "application-source", id="application-pointing-elsewhere"),
    pytest.param("bootstrap", lambda t: t.replace("prune: true", "prune: yes-please"), "schema", id="root-bad-type"),
])
def test_argocd_and_bootstrap_files_are_schema_checked_and_must_point_at_the_folders_bundles(
        built, render, folder, edit, says):
    path = next(p for p in (built / "dev" / folder).glob("application-*.yaml")
                if folder == "bootstrap" or "riverside-academy-grade-sync" in p.name)
    path.write_text(edit(path.read_text()))
    run = render("validate", built)
    assert run.code == 1 and says in run.err and path.name in run.err


def test_an_untouched_build_validates(built, render):
    run = render("validate", built)
    assert run.code == 0, run.err
