"""Real third-party parts for the signature tests, started on 127.0.0.1 by the tests themselves.

Where it sits: test support for ``renderer.signatures`` / ``renderer.registry`` (the verify stage).
Its fixtures are imported by name from ``tests.support.registry`` by the test modules that use them.

What it starts and drives:

* the CNCF distribution registry (Debian ``docker-registry``), one per test session, plus, on
  demand, a second one over the same storage that demands bearer tokens from ``TokenServer``;
* images built without a daemon by ``umoci`` and pushed with ``skopeo copy``;
* signatures made by the real ``cosign`` (``generate-key-pair``, ``sign --key``, ``download signature``).

A missing tool fails the test (never skips) with a message naming ``scripts/install-tools.sh``.
Tools are looked up in ``<repo>/.tools/bin`` and then on ``PATH``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
COSIGN_PASSWORD = "render-test-only"  # the test keys' password; they protect nothing
TOOLS = ("docker-registry", "umoci", "skopeo", "cosign")


def tool(name: str) -> str:
    """Absolute path of a third-party tool, or a failed test that says how to install it."""
    found = shutil.which(name, path=f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(
            f"{name} is not installed; the signature tests run the real tool. "
            f"Run `bash scripts/install-tools.sh` (as root) to install docker-registry, umoci, skopeo and cosign.",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], *, env: Optional[dict] = None, cwd: Optional[Path] = None, timeout: float = 120) -> str:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# ------------------------------------------------------------------------------------ registry


class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1:<free port>, storage in a given folder."""

    def __init__(self, workdir: Path, storage: Path, *, token_auth: Optional[dict] = None):
        self.workdir = workdir
        self.storage = storage
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.token_auth = token_auth
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "RegistryServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.token_auth:
            config["auth"] = {"token": self.token_auth}
        cfg = self.workdir / f"registry-{self.port}.yml"
        cfg.write_text(json.dumps(config))  # JSON is YAML
        self.log = open(self.workdir / f"registry-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [tool("docker-registry"), "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {(self.workdir / f'registry-{self.port}.log').read_text()}")
            try:
                status, _, _ = http_get(self.host, "/v2/")
                if status in (200, 401):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("docker-registry did not start within 15 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def http_get(host: str, path: str, headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _http(host: str, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None):
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def get_manifest(host: str, repo: str, ref: str) -> tuple[bytes, str]:
    status, headers, body = http_get(host, f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_ACCEPT})
    assert status == 200, (status, body)
    return body, headers["content-type"]


def put_blob(host: str, repo: str, data: bytes) -> str:
    """Monolithic blob upload (distribution API: POST then PUT ?digest=)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, body = _http(host, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, (status, body)
    location = headers["location"]
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    status, _, body = _http(
        host,
        "PUT",
        f"{location}{sep}digest={digest}",
        data,
        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    assert status == 201, (status, body)
    return digest


def put_manifest(host: str, repo: str, ref: str, body: bytes, media_type: str) -> str:
    status, headers, resp = _http(host, "PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})
    assert status == 201, (status, resp)
    return headers.get("docker-content-digest", "")


def delete_manifest(host: str, repo: str, digest: str) -> None:
    status, _, resp = _http(host, "DELETE", f"/v2/{repo}/manifests/{digest}")
    assert status == 202, (status, resp)


# ------------------------------------------------------------------------------------ token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A registry token service (the Docker token auth flow) for a ``docker-registry`` with
    ``auth: token``: checks HTTP Basic credentials and issues ES256 JWTs whose ``x5c`` certificate
    the registry trusts (``rootcertbundle``). Counts the requests it saw."""

    def __init__(self, workdir: Path, users: dict[str, str], *, anonymous: bool = False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import datetime

        self.users = users
        self.anonymous = anonymous
        self.issuer = "render-test-token-issuer"
        self.service = "render-test-registry"
        self.requests: list[dict] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "render test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert_file = workdir / "token-signer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                import urllib.parse

                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) == p:
                        user = u
                server.requests.append({"query": query, "user": user, "auth": bool(auth)})
                if user is None and not (server.anonymous and not auth):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = server.issue(user or "", query.get("scope", ""))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def issue(self, subject: str, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": base64.b16encode(os.urandom(8)).decode(),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def registry_auth_config(self) -> dict:
        return {
            "realm": self.realm,
            "service": self.service,
            "issuer": self.issuer,
            "rootcertbundle": str(self.cert_file),
        }

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------------ images and signing


@dataclass(frozen=True)
class KeyPair:
    name: str
    private_key: Path  # cosign.key, encrypted with COSIGN_PASSWORD
    public_pem: str


class OciTools:
    """umoci + skopeo + cosign, run with HOME in a temporary folder (cosign writes there)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.umoci, self.skopeo, self.cosign = tool("umoci"), tool("skopeo"), tool("cosign")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "COSIGN_PASSWORD": COSIGN_PASSWORD,
            "TMPDIR": str(workdir),
        }
        self._n = 0

    def keypair(self, name: str) -> KeyPair:
        keydir = self.workdir / "keys" / name
        keydir.mkdir(parents=True, exist_ok=True)
        run([self.cosign, "generate-key-pair", "--output-key-prefix", name], env=self.env, cwd=keydir)
        return KeyPair(name, keydir / f"{name}.key", (keydir / f"{name}.pub").read_text())

    def build_and_push(self, registry_host: str, repo: str, content: str, tag: str = "1.0.0") -> str:
        """Build a one-file image with umoci, push it with skopeo; returns the manifest digest."""
        self._n += 1
        build = self.workdir / "build" / str(self._n)
        build.mkdir(parents=True)
        layout = build / "layout"
        (build / "content.txt").write_text(content)
        run([self.umoci, "init", "--layout", str(layout)], env=self.env)
        run([self.umoci, "new", "--image", f"{layout}:{tag}"], env=self.env)
        run([self.umoci, "insert", "--image", f"{layout}:{tag}", str(build / "content.txt"), "/content.txt"], env=self.env)
        digest_file = build / "digest"
        run(
            [
                self.skopeo, "copy", "-q", "--dest-tls-verify=false", "--digestfile", str(digest_file),
                f"oci:{layout}:{tag}", f"docker://{registry_host}/{repo}:{tag}",
            ],
            env=self.env,
        )
        digest = digest_file.read_text().strip()
        shutil.rmtree(build, ignore_errors=True)
        return digest

    def sign(self, image: str, key: KeyPair, *, identity: Optional[str] = None) -> None:
        args = [
            self.cosign, "sign", "--key", str(key.private_key), "--tlog-upload=false",
            "--allow-http-registry", "--allow-insecure-registry", "--yes",
        ]
        if identity:
            args += ["--sign-container-identity", identity]
        run(args + [image], env=self.env)

    def download_signature(self, image: str) -> bytes:
        out = run(
            [self.cosign, "download", "signature", "--allow-http-registry", "--allow-insecure-registry", image],
            env=self.env,
        )
        return out.encode()

    def copy(self, src: str, dst: str) -> None:
        run(
            [self.skopeo, "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
             f"docker://{src}", f"docker://{dst}"],
            env=self.env,
        )


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def oci_tools(tmp_path_factory) -> OciTools:
    for name in TOOLS:
        tool(name)
    return OciTools(tmp_path_factory.mktemp("oci-tools"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory, oci_tools) -> RegistryServer:
    """An open (no auth) distribution registry for the whole session."""
    work = tmp_path_factory.mktemp("registry")
    server = RegistryServer(work, work / "storage").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cosign_keys(oci_tools) -> dict[str, KeyPair]:
    """Two cosign key pairs made by ``cosign generate-key-pair``: the publisher's and a stranger's."""
    return {name: oci_tools.keypair(name) for name in ("publisher", "stranger")}


@pytest.fixture(scope="session")
def signed_image(registry, oci_tools, cosign_keys) -> Callable[..., str]:
    """Factory: build, push and (unless ``key=None``) sign an image; returns ``host/repo:tag@digest``."""
    counter = iter(range(1, 1_000_000))

    def make(repo: str = "acme/quiz", *, key: Optional[str] = "publisher", content: Optional[str] = None,
             tag: str = "1.0.0", identity: Optional[str] = None) -> str:
        text = content if content is not None else f"{repo} image #{next(counter)} {os.getpid()}\n"
        digest = oci_tools.build_and_push(registry.host, repo, text, tag)
        pinned = f"{registry.host}/{repo}@{digest}"
        if key:
            oci_tools.sign(pinned, cosign_keys[key], identity=identity)
        return f"{registry.host}/{repo}:{tag}@{digest}"

    return make
