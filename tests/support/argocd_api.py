"""A test double of the Kubernetes API server, just enough for ``render mark-good --from-argocd``.

No API server can run here (no cluster, no kind, no etcd), so the tests talk to this one: the stdlib
``http.server`` in a thread on 127.0.0.1, plain HTTP or TLS with a CA made for the test. It serves
what the real ``kubernetes`` client calls for the command, in the API server's shapes:

* ``GET /apis/argoproj.io/v1alpha1/namespaces/<ns>/applications`` -> an ``ApplicationList``,
  honouring ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-separated: AND),
  ``limit`` and ``continue`` (opaque tokens, ``metadata.continue`` and ``remainingItemCount``);
* a ``Status`` object with 401 for a missing or wrong bearer token, 403 when told to forbid,
  404 for any other path (or every path, when told Argo CD is not installed), 400 for a selector
  it cannot parse.

The Application objects the tests give it are checked by the tests against Argo CD's own CRD
schema (the project's schema gate), so the status shape is the real one. Every request is kept in
``requests`` (path, query) for assertions.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

import re
import yaml

LIST_PATH = re.compile(r"^/apis/argoproj\.io/v1alpha1/namespaces/(?P<ns>[^/]+)/applications$")


def argocd_status(revision: str, *, sync: str = "Synced", health: str = "Healthy", phase: str = "Succeeded",
                  op_revision: str | None = None, health_message: str | None = None,
                  op_message: str = "successfully synced (all tasks run)") -> dict:
    """An Application status in Argo CD's shape (types.go ApplicationStatus), as the controller writes it."""
    op_revision = op_revision or revision
    source = {"repoURL": "https://git.adapstory.io/platform/plugins-gitops.git", "path": "x", "targetRevision": "main"}
    health_part = {"status": health, "lastTransitionTime": "2026-11-28T10:05:00Z"}
    if health_message:
        health_part["message"] = health_message
    return {
        "sync": {"status": sync, "revision": revision,
                 "comparedTo": {"source": source, "destination": {"server": "https://kubernetes.default.svc"}}},
        "health": health_part,
        "operationState": {
            "operation": {"sync": {"revision": op_revision, "prune": True, "syncOptions": ["PruneLast=true"]},
                          "initiatedBy": {"automated": True}, "retry": {"limit": 5}},
            "phase": phase, "message": op_message, "startedAt": "2026-11-28T10:04:00Z",
            "finishedAt": "2026-11-28T10:04:30Z", "retryCount": 0,
            "syncResult": {"revision": op_revision, "source": source, "resources": [
                {"group": "", "version": "v1", "kind": "Namespace", "namespace": "", "name": "plugin-x",
                 "status": "Synced", "message": "namespace/plugin-x created", "hookPhase": "Running",
                 "syncPhase": "Sync"}]},
        },
        "history": [{"id": 1, "revision": op_revision, "deployedAt": "2026-11-28T10:04:30Z",
                     "deployStartedAt": "2026-11-28T10:04:00Z", "source": source}],
        "reconciledAt": "2026-11-28T10:06:00Z", "sourceType": "Kustomize", "controllerNamespace": "argocd",
        "summary": {"images": ["registry.adapstory.io/acme/x@sha256:" + "0" * 64]},
    }


def status_object(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def selector_matches(selector: str, labels: dict) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class ApiDouble:
    token: str = "test-token"
    applications: dict = field(default_factory=dict)  # namespace -> [Application object]
    forbid: bool = False
    no_argocd: bool = False
    requests: list = field(default_factory=list)
    tls: Optional["TestCA"] = None
    _server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def serve(self, namespace: str, objects: list) -> None:
        self.applications[namespace] = list(objects)

    def start(self) -> "ApiDouble":
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                double.requests.append((parts.path, query))
                code, body = double.answer(parts.path, query, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls:
            self._server.socket = self.tls.server_context().wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, path: str, query: dict, authorization: Optional[str]) -> tuple[int, dict]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:  # the scheme is case-insensitive, as in
            # the API server's bearer-token authenticator (client-go and in-cluster config send "bearer")
            return 401, status_object(401, "Unauthorized", "Unauthorized")
        m = LIST_PATH.match(path)
        if not m or self.no_argocd:
            return 404, status_object(404, "NotFound", "the server could not find the requested resource")
        ns = m.group("ns")
        if self.forbid:
            return 403, status_object(403, "Forbidden", (
                f'applications.argoproj.io is forbidden: User "system:serviceaccount:{ns}:render-mark-good" '
                f'cannot list resource "applications" in API group "argoproj.io" in the namespace "{ns}"'))
        selector = query.get("labelSelector", "")
        if any(op in selector for op in (" in ", " notin ", "(")):
            return 400, status_object(400, "BadRequest", f"unable to parse requirement: {selector}")
        items = sorted((o for o in self.applications.get(ns, [])
                        if selector_matches(selector, (o.get("metadata") or {}).get("labels") or {})),
                       key=lambda o: o["metadata"]["name"])
        start = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        limit = int(query.get("limit") or 0) or len(items) or 1
        page, rest = items[start:start + limit], items[start + limit:]
        meta = {"resourceVersion": "424242"}
        if rest:
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(rest)
        return 200, {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationList", "metadata": meta,
                     "items": page}

    def kubeconfig(self, path: Path, *, token: Optional[str] = None, server: Optional[str] = None,
                   ca: bool = True) -> Path:
        """A kubeconfig for this server (context ``double``, current), with a second context ``down``
        pointing at a port nothing listens on."""
        cluster = {"server": server or self.url}
        if self.tls and ca:
            cluster["certificate-authority-data"] = base64.b64encode(self.tls.ca_pem).decode()
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "double", "cluster": cluster},
                         {"name": "down", "cluster": {"server": "http://127.0.0.1:9"}}],
            "users": [{"name": "mark-good", "user": {"token": token or self.token}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "mark-good"}},
                         {"name": "down", "context": {"cluster": "down", "user": "mark-good"}}],
            "current-context": "double",
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


@dataclass
class TestCA:
    """A CA and a server certificate for 127.0.0.1, made with ``cryptography`` for one test run."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    folder: Path

    __test__ = False  # not a test class

    @classmethod
    def make(cls, folder: Path) -> "TestCA":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test kubernetes CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False),
                             critical=True)
              .sign(ca_key, hashes.SHA256()))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        folder.mkdir(parents=True, exist_ok=True)
        made = cls(ca.public_bytes(pem), cert.public_bytes(pem),
                   key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), folder)
        (folder / "ca.crt").write_bytes(made.ca_pem)
        (folder / "server.crt").write_bytes(made.cert_pem)
        (folder / "server.key").write_bytes(made.key_pem)
        return made

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.folder / "server.crt", self.folder / "server.key")
        return ctx
