"""Argo CD Applications as the Kubernetes API serves them: who they are and what Argo CD says of them.

Used by ``flows.argocd_health`` (``render mark-good --from-argocd``). Reads only: ``list`` on
``applications.argoproj.io`` in one namespace, with a label selector, in pages. Connects with a
kubeconfig (``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``) or, when none exists,
with the pod's service account (in-cluster config). Nothing here knows about bundles or git.

The status shape is Argo CD's (``pkg/apis/application/v1alpha1/types.go``: ApplicationStatus,
SyncStatus, AppHealthStatus, OperationState, SyncOperationResult): ``status.sync.{status,revision}``
(status ``Synced`` | ``OutOfSync`` | ``Unknown``), ``status.health.{status,message}`` (``Healthy`` |
``Progressing`` | ``Degraded`` | ``Suspended`` | ``Missing`` | ``Unknown``) and
``status.operationState.{phase,message,syncResult.revision}`` (phase ``Running`` | ``Terminating`` |
``Failed`` | ``Error`` | ``Succeeded``). Values of the wrong type read as absent, never crash.

Errors: a kubeconfig that cannot be used is a refusal (exit 1, naming the file); an API server
that cannot be reached, refuses the credentials (401), forbids the list (403), has no Application
kind (404) or answers with something else is an outside system failing (exit 3).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

import urllib3
import yaml

from renderer.core.errors import OutsideSystemError, RefusingToProceed

if TYPE_CHECKING:
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

# The kubernetes client takes about a second to import: it is imported by the functions that
# talk to the API server (``api_client``, ``list_applications``), so that every other command of
# the CLI starts without it. Its in-cluster paths, as the client names them (a test compares them):
SERVICE_TOKEN_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/token"
SERVICE_CERT_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
DEFAULT_PAGE_SIZE = 500
DEFAULT_TIMEOUT = 10.0  # seconds, to connect and per read
MAX_PAGES = 10_000


class ClusterUnreachable(OutsideSystemError):
    """The Kubernetes API server could not be reached or refused the request (exit 3)."""


class KubeconfigUnusable(RefusingToProceed):
    """The kubeconfig (or the in-cluster service account) cannot be used to connect (exit 1)."""


@dataclass(frozen=True)
class KubeSettings:
    """How to reach the API server. ``kubeconfig`` None: ``$KUBECONFIG``, ``~/.kube/config``, then
    the pod's service account. ``token_file``/``ca_file``: the in-cluster service account's files."""

    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    page_size: int = DEFAULT_PAGE_SIZE
    token_file: str = SERVICE_TOKEN_FILENAME
    ca_file: str = SERVICE_CERT_FILENAME


@dataclass(frozen=True)
class Application:
    """One Argo CD Application: identity, source path and the status fields the known-good rule reads."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    source_path: Optional[str] = None  # spec.source.path (None for a multi-source Application)
    has_status: bool = False
    sync_status: Optional[str] = None  # status.sync.status
    sync_revision: Optional[str] = None  # status.sync.revision
    health_status: Optional[str] = None  # status.health.status
    health_message: Optional[str] = None
    operation_phase: Optional[str] = None  # status.operationState.phase (None: no operation recorded)
    operation_message: Optional[str] = None
    operation_revision: Optional[str] = None  # status.operationState.syncResult.revision

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: Any, namespace: str) -> "Application":
        meta = _dict(_get(obj, "metadata"))
        labels = {str(k): v for k, v in _dict(meta.get("labels")).items() if isinstance(v, str)}
        status = _get(obj, "status")
        sync, health, op = _dict(_get(status, "sync")), _dict(_get(status, "health")), _get(status, "operationState")
        return cls(
            namespace=_str(meta.get("namespace")) or namespace,
            name=_str(meta.get("name")) or "",
            labels=labels,
            source_path=_str(_get(_get(_get(obj, "spec"), "source"), "path")),
            has_status=isinstance(status, dict) and bool(status),
            sync_status=_str(sync.get("status")),
            sync_revision=_str(sync.get("revision")),
            health_status=_str(health.get("status")),
            health_message=_str(health.get("message")),
            operation_phase=_str(_get(op, "phase")),
            operation_message=_str(_get(op, "message")),
            operation_revision=_str(_get(_get(op, "syncResult"), "revision")),
        )


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _dict(obj: Any) -> dict:
    return obj if isinstance(obj, dict) else {}


def _str(obj: Any) -> Optional[str]:
    return obj if isinstance(obj, str) and obj else None


# ------------------------------------------------------------------------------------ connecting


def api_client(settings: KubeSettings) -> k8s.ApiClient:
    """An ApiClient of its own (the kubernetes package's global default is never touched)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = type.__call__(k8s.Configuration)
    path = settings.kubeconfig or _default_kubeconfig()
    try:
        if path is not None:
            if not Path(path.split(os.pathsep)[0]).expanduser().is_file():
                raise KubeconfigUnusable(f"--kubeconfig {path}: no such file; refusing to proceed")
            k8s_config.load_kube_config(config_file=path, context=settings.context,
                                        client_configuration=configuration, persist_config=False)
        elif settings.context:
            raise KubeconfigUnusable(f"--context {settings.context}: there is no kubeconfig to pick it from "
                                     "(no --kubeconfig, $KUBECONFIG or ~/.kube/config)")
        else:
            InClusterConfigLoader(token_filename=settings.token_file, cert_filename=settings.ca_file,
                                  try_refresh_token=True).load_and_set(configuration)
    except ConfigException as exc:
        where = f"kubeconfig {path}" + (f", context {settings.context}" if settings.context else "") if path \
            else "in-cluster config (no --kubeconfig, $KUBECONFIG or ~/.kube/config)"
        raise KubeconfigUnusable(f"{where}: {_one_line(exc)}; refusing to proceed") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise KubeconfigUnusable(f"kubeconfig {where}: not valid YAML ({problem}); refusing to proceed") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KubeconfigUnusable(f"kubeconfig {path}: cannot be read ({_one_line(exc)}); refusing to proceed") from None
    configuration.retries = urllib3.Retry(total=3, connect=3, read=1, status=0, backoff_factor=0.2,
                                          allowed_methods=["GET"], raise_on_status=False)
    return k8s.ApiClient(configuration)


def _default_kubeconfig() -> Optional[str]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.is_file() else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


# ------------------------------------------------------------------------------------ reading


def list_applications(settings: KubeSettings, namespace: str, label_selector: str) -> list[Application]:
    """Every Application in ``namespace`` matching ``label_selector``, read in pages of
    ``settings.page_size``; sorted by name."""
    from kubernetes import client as k8s

    api = api_client(settings)
    host = api.configuration.host
    try:
        objects = _pages(k8s.CustomObjectsApi(api), host, namespace, label_selector, settings)
    finally:
        api.close()
    apps = [Application.from_object(obj, namespace) for obj in objects]
    return sorted(apps, key=lambda a: (a.namespace, a.name))


def _pages(custom: k8s.CustomObjectsApi, host: str, namespace: str, selector: str, settings: KubeSettings) -> list:
    from kubernetes.client.rest import ApiException

    items: list = []
    token: Optional[str] = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        kwargs = {"label_selector": selector, "limit": settings.page_size,
                  "_request_timeout": (settings.timeout, settings.timeout), "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        try:
            response = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kwargs)
            body = response.data
        except ApiException as exc:
            raise ClusterUnreachable(_api_error(exc, host, namespace)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(f"the Kubernetes API server at {host} cannot be reached: {_reason(exc)}") from None
        try:
            page = json.loads(body)
        except ValueError:
            raise ClusterUnreachable(f"the Kubernetes API server at {host} answered the list of {PLURAL}.{GROUP} "
                                     f"in {namespace} with something that is not JSON") from None
        if not isinstance(page, dict) or not isinstance(page.get("items", []), list):
            raise ClusterUnreachable(f"the Kubernetes API server at {host} answered the list of {PLURAL}.{GROUP} "
                                     f"in {namespace} with something that is not an ApplicationList")
        items.extend(page.get("items") or [])
        token = _str(_get(page.get("metadata"), "continue"))
        if not token:
            return items
        if token in seen:
            raise ClusterUnreachable(f"the Kubernetes API server at {host} repeated a continue token; giving up")
        seen.add(token)
    raise ClusterUnreachable(f"the Kubernetes API server at {host} kept paging past {MAX_PAGES} pages; giving up")


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    return _one_line(inner if isinstance(inner, BaseException) else exc)


def _api_error(exc: ApiException, host: str, namespace: str) -> str:
    message = ""
    try:
        message = _str(_get(json.loads(exc.body or ""), "message")) or ""
    except (ValueError, TypeError):
        pass
    what = f"list {PLURAL}.{GROUP} in namespace {namespace}"
    if not exc.status:  # TLS and other transport failures the client reports as status 0
        return f"the Kubernetes API server at {host} cannot be reached: {_one_line(Exception(exc.reason or ''))}"
    detail = f": {_one_line(Exception(message))}" if message else ""
    if exc.status == 401:
        return (f"the Kubernetes API server at {host} rejected the credentials (401 Unauthorized){detail}; "
                "check the kubeconfig's user (an expired token?) or the service account token")
    if exc.status == 403:
        return (f"the Kubernetes API server at {host} forbids {what} (403 Forbidden){detail}; "
                f"grant get and list on {PLURAL}.{GROUP} in {namespace}")
    if exc.status == 404:
        return (f"the Kubernetes API server at {host} has no {PLURAL}.{GROUP}/{VERSION} in namespace {namespace} "
                f"(404 Not Found){detail}: is Argo CD installed there?")
    if exc.status == 410:
        return f"the list of {PLURAL}.{GROUP} in {namespace} changed while it was read in pages (410 Gone); run again"
    return f"the Kubernetes API server at {host} failed to {what} ({exc.status} {exc.reason}){detail}"
