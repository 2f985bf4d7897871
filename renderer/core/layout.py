"""The one owner of every path render reads or writes, and of their parsers.

Where it sits: ``core``. The input side (CONTRACT §1: ``<env>/tenants/<tenant>/plugins/<plugin>.yaml``)
and the output side (CONTRACT §2: ``<env>/plugins/<tenant>/<plugin>/``, ``<env>/argocd/``, and the
GitOps repo's own ``.render/`` files). Every other module builds and recognises these paths
through the functions here, never by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

PLUGINS = "plugins"
ARGOCD = "argocd"
BOOTSTRAP = "bootstrap"  # <env>/bootstrap/: the root Application a platform admin applies once
RENDERED_FOLDERS = (PLUGINS, ARGOCD, BOOTSTRAP)  # render owns <env>/<these>/
TENANTS = "tenants"
BUNDLE_JSON = "bundle.json"
KUSTOMIZATION = "kustomization.yaml"
NOT_OBJECTS = (KUSTOMIZATION, BUNDLE_JSON)  # the files of a bundle that are not Kubernetes objects
KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"


def kustomization(object_files) -> dict:
    """The kustomization.yaml render writes into a bundle: ``resources`` lists exactly its object files."""
    return {"apiVersion": KUSTOMIZATION_API, "kind": "Kustomization", "resources": sorted(object_files)}

# the GitOps repo's own files
RENDER_DIR = ".render"
MANAGED_MARKER = ".render/managed"
HOLDS = ".render/holds"
README = "README.md"
GITATTRIBUTES = ".gitattributes"
ROOT_FILES = (GITATTRIBUTES, MANAGED_MARKER, README)

_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_BUNDLE_RE = re.compile(rf"(?P<env>{_LABEL})/plugins/(?P<tenant>{_LABEL})/(?P<plugin>{_LABEL})")
_HOLD_RE = re.compile(rf"\.render/holds/(?P<env>{_LABEL})/(?P<tenant>{_LABEL})/(?P<plugin>{_LABEL})\.json")
_ARGOCD_FILE_RE = re.compile(
    rf"(?P<env>{_LABEL})/(?:argocd/(?:application|appproject)|bootstrap/application)-[-a-z0-9.]+\.yaml")


@dataclass(frozen=True, order=True)
class BundleKey:
    """One install's bundle: (environment, tenant, plugin)."""

    env: str
    tenant: str
    plugin: str

    @property
    def path(self) -> str:
        """``<env>/plugins/<tenant>/<plugin>``: the bundle's folder in an output or the GitOps repo."""
        return f"{self.env}/{PLUGINS}/{self.tenant}/{self.plugin}"

    @property
    def only(self) -> str:
        """``TENANT/PLUGIN``, as ``--only`` names it."""
        return f"{self.tenant}/{self.plugin}"

    @property
    def install(self) -> str:
        """The install file in the environments repo."""
        return install_path(self.env, self.tenant, self.plugin)

    @property
    def hold(self) -> str:
        """The rollback hold in the GitOps repo."""
        return f"{HOLDS}/{self.env}/{self.tenant}/{self.plugin}.json"

    @property
    def ledger(self) -> str:
        """The known-good record on the ledger branch."""
        return f"{self.env}/{self.tenant}/{self.plugin}.json"

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"


def bundle_path(env: str, tenant: str, plugin: str) -> str:
    return BundleKey(env, tenant, plugin).path


def parse_bundle(path: str) -> Optional[BundleKey]:
    """The bundle a folder path names (``<env>/plugins/<tenant>/<plugin>``), or None."""
    m = _BUNDLE_RE.fullmatch(path)
    return BundleKey(m["env"], m["tenant"], m["plugin"]) if m else None


def parse_bundle_file(path: str) -> Optional[tuple[BundleKey, str]]:
    """(bundle, file name) for a file directly inside a bundle folder, or None."""
    folder, _, name = path.rpartition("/")
    key = parse_bundle(folder)
    return (key, name) if key is not None and name and "/" not in name else None


def parse_hold(path: str) -> Optional[BundleKey]:
    m = _HOLD_RE.fullmatch(path)
    return BundleKey(m["env"], m["tenant"], m["plugin"]) if m else None


def argocd_dir(env: str) -> str:
    return f"{env}/{ARGOCD}"


def bootstrap_dir(env: str) -> str:
    return f"{env}/{BOOTSTRAP}"


def application_file(app_name: str) -> str:
    return f"application-{app_name}.yaml"


def project_file(project: str) -> str:
    return f"appproject-{project}.yaml"


def is_argocd_file(path: str) -> bool:
    return _ARGOCD_FILE_RE.fullmatch(path) is not None


def object_file(kind: str, name: str) -> str:
    """The file one Kubernetes object of a bundle lives in: ``<kind>-<name>.yaml``."""
    return f"{kind.lower()}-{name}.yaml"


def install_path(env: str, tenant: str, plugin: str) -> str:
    """An install in the environments repo (CONTRACT §1), relative to its root."""
    return f"{env}/{TENANTS}/{tenant}/{PLUGINS}/{plugin}.yaml"


def unit_of(path: str) -> str:
    """The unit a GitOps-repo path belongs to when commits are re-applied: a bundle folder (with
    its rollback hold), or the file itself."""
    parts = path.split("/")
    if len(parts) >= 5 and parts[1] == PLUGINS and not parts[0].startswith("."):
        return "/".join(parts[:4])
    if len(parts) == 5 and path.startswith(HOLDS + "/") and path.endswith(".json"):
        return f"{parts[2]}/{PLUGINS}/{parts[3]}/{parts[4][:-len('.json')]}"
    return path
