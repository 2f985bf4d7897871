"""The Kubernetes client is imported only by the code that talks to the API server."""

from __future__ import annotations

import subprocess
import sys

from renderer.cluster import argocd
from tests.conftest import REPO


def test_the_in_cluster_paths_are_the_ones_the_kubernetes_client_reads():
    from kubernetes.config import incluster_config
    assert argocd.SERVICE_TOKEN_FILENAME == incluster_config.SERVICE_TOKEN_FILENAME
    assert argocd.SERVICE_CERT_FILENAME == incluster_config.SERVICE_CERT_FILENAME


def test_the_cli_starts_without_importing_the_kubernetes_client():
    code = "import sys, renderer.cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout.strip() == "[]"
