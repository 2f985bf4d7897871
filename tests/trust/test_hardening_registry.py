"""Issue 9, classes 4 (every registry exchange is bounded: time, size, redirects) and 5 (credentials
are scoped to a host), against real HTTP servers on 127.0.0.1 that misbehave on purpose: they
drip bytes, send too much, redirect to other schemes and hosts, and record what they are sent."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Callable, Optional

import pytest

from tests.support.registry import free_port
from renderer.core.errors import EXIT_OUTSIDE, OutsideSystemError
from renderer.trust.registry import RegistryClient, RegistryContentError, credentials_for, run_deadline

DIGEST = "sha256:" + "ab" * 32
CREDS = {"RENDER_REGISTRY_USERNAME": "ci", "RENDER_REGISTRY_PASSWORD": "s3cret"}


class Scripted:
    """A raw-socket HTTP server on 127.0.0.1: ``script(path, headers) -> bytes or generator of
    (delay, bytes)`` decides the answer; every request's path and headers are recorded."""

    def __init__(self, script: Callable):
        self.script = script
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.seen: list[tuple[str, dict]] = []
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            self.seen.append((path, headers))
            answer = self.script(path, headers)
            try:
                if isinstance(answer, bytes):
                    conn.sendall(answer)
                    return
                for delay, part in answer:
                    if self._stop.is_set():
                        return
                    time.sleep(delay)
                    conn.sendall(part)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()


def reply(status: str, headers: dict, body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def drip(text: bytes, every: float = 0.2):
    for i in range(len(text)):
        yield every, text[i:i + 1]


@pytest.fixture
def server():
    made: list[Scripted] = []

    def make(script: Callable) -> Scripted:
        s = Scripted(script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def client(host: str, environ: Optional[dict] = None, **kw) -> RegistryClient:
    return RegistryClient(host, insecure=True, timeout=5.0, attempts=2, backoff=0.01, environ=environ or {}, **kw)


# ------------------------------------------------------------------------------------ class 4: bounded


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
BOUNDED = [
    pytest.param(lambda p, h: drip(b"HTTP/1.1 200 OK\r\n" * 100), {"request_deadline": 1.0}, OutsideSystemError,
                 r"the 1s deadline of one request passed", id="headers-dripped-one-byte-at-a-time"),
    pytest.param(lambda p, h: iter([(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")] + list(drip(b"x" * 5000))),
                 {"request_deadline": 1.0}, OutsideSystemError, r"deadline of one request passed", id="body-dripped"),
    pytest.param(lambda p, h: drip(b"HTTP/1.1 200 OK\r\n" * 100), {"run": 1.0}, OutsideSystemError,
                 r"the run's deadline for registry requests passed", id="run-deadline-ends-a-slow-request"),
    pytest.param(lambda p, h: iter([(0, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")] + [(0, b"{" * 65536)] * 200),
                 {}, RegistryContentError, r"is more than the 4194304 bytes allowed", id="endless-body-without-length"),
    pytest.param(lambda p, h: reply("200 OK", {"Content-Type": "application/json"}, b"[" * 100)
                 .replace(b"Content-Length: 100", b"Content-Length: 99999999999"), {}, RegistryContentError,
                 r"is 99999999999 bytes, more than the 4194304 allowed", id="announced-length-too-big"),
    pytest.param(lambda p, h: reply("307 Temporary Redirect", {"Location": "ftp://127.0.0.1/blob"}), {}, OutsideSystemError,
                 r"redirected to ftp://127.0.0.1; refusing: redirects are followed to https only", id="redirect-to-ftp"),
    pytest.param(lambda p, h: reply("302 Found", {"Location": "file:///etc/passwd"}), {}, OutsideSystemError,
                 r"redirected to file://", id="redirect-to-file"),
    pytest.param(lambda p, h: reply("302 Found", {"Location": "http://localhost:1/v2/x"}), {}, OutsideSystemError,
                 r"redirected to http://localhost:1; refusing.*plain http only back to the same", id="redirect-to-plain-http-elsewhere"),
    pytest.param(lambda p, h: reply("302 Found", {"Location": "//evil.example:99/x"}), {}, OutsideSystemError,
                 r"redirected to http://evil.example:99", id="scheme-relative-redirect-to-another-host"),
    pytest.param(lambda p, h: reply("302 Found", {"Location": p}), {}, OutsideSystemError, r"more than 5 redirects",
                 id="redirect-loop"),
]


@pytest.mark.parametrize("script, opts, error, message", BOUNDED)
def test_a_registry_that_drips_floods_or_redirects_away_is_cut_off_in_bounded_time(server, script, opts, error, message):
    srv = server(script)
    c = client(srv.host, request_deadline=opts.get("request_deadline", 30.0))
    started = time.monotonic()
    with pytest.raises(error, match=message) as err:
        if "run" in opts:
            with run_deadline(opts["run"]):
                c.get_manifest("acme/quiz", DIGEST)
        else:
            c.get_manifest("acme/quiz", DIGEST)
    assert time.monotonic() - started < 5
    if error is OutsideSystemError:
        assert err.value.exit_code == EXIT_OUTSIDE


def test_a_redirect_back_to_the_same_insecure_host_is_still_followed(server):
    def script(path, headers):
        if path.startswith("/v2/acme/quiz/manifests/"):
            return reply("307 Temporary Redirect", {"Location": f"http://127.0.0.1:{srv.port}/storage/m"})
        return reply("200 OK", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)

    srv = server(script)
    body, media_type, _ = client(srv.host).get_manifest("acme/quiz", "latest")
    assert body == MANIFEST and media_type == "application/vnd.oci.image.manifest.v1+json"
    assert [p for p, _ in srv.seen] == ["/v2/acme/quiz/manifests/latest", "/storage/m"]


# ------------------------------------------------------------------------------------ class 5: scoped credentials


def basic_registry(path, headers):
    if "authorization" not in headers:
        return reply("401 Unauthorized", {"WWW-Authenticate": 'Basic realm="registry"'})
    return reply("200 OK", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)


def _docker_config(tmp_path, host: str) -> dict:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"alice:pw").decode()}}}))
    return {"DOCKER_CONFIG": str(tmp_path)}


SCOPED = [
    pytest.param(lambda host, tmp: CREDS, False, id="plain-variables-name-no-host"),
    pytest.param(lambda host, tmp: {**CREDS, "RENDER_REGISTRY_HOST": "registry.adapstory.io"}, False, id="variables-for-another-host"),
    pytest.param(lambda host, tmp: {**CREDS, "RENDER_REGISTRY_HOST": host.split(":")[0]}, False, id="variables-for-the-host-on-another-port"),
    pytest.param(lambda host, tmp: {**CREDS, "RENDER_REGISTRY_HOST": host}, True, id="variables-for-this-host"),
    pytest.param(lambda host, tmp: _docker_config(tmp, "registry.adapstory.io"), False, id="docker-config-for-another-host"),
    pytest.param(lambda host, tmp: _docker_config(tmp, host), True, id="docker-config-for-this-host"),
]


@pytest.mark.parametrize("environ, sent", SCOPED)
def test_a_registry_answering_basic_gets_only_its_own_credentials(server, tmp_path, environ, sent):
    srv = server(basic_registry)
    c = client(srv.host, environ(srv.host, tmp_path))
    if sent:
        assert c.get_manifest("acme/quiz", "latest")[0] == MANIFEST
        assert srv.seen[-1][1]["authorization"].startswith("Basic ")
    else:
        with pytest.raises(OutsideSystemError, match="denied access"):
            c.get_manifest("acme/quiz", "latest")
        assert all("authorization" not in h for _, h in srv.seen)


def _bearer_pair(server, realm_host: str):
    tokens = server(lambda path, headers: reply("200 OK", {"Content-Type": "application/json"}, b'{"token": "t0k"}'))

    def registry(path, headers):
        if headers.get("authorization") != "Bearer t0k":
            realm = f"http://{realm_host}:{tokens.port}/token"
            return reply("401 Unauthorized", {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'})
        return reply("200 OK", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)

    return server(registry), tokens


@pytest.mark.parametrize("realm_host, sent", [
    pytest.param("localhost", False, id="token-realm-on-another-host-gets-an-anonymous-request"),
    pytest.param("127.0.0.1", True, id="token-realm-on-the-same-host-gets-the-credentials"),
])
def test_a_bearer_token_realm_gets_the_credentials_only_on_the_registrys_own_host(server, realm_host, sent):
    reg, tokens = _bearer_pair(server, realm_host)
    c = client(reg.host, {**CREDS, "RENDER_REGISTRY_HOST": reg.host})
    assert c.get_manifest("acme/quiz", "latest")[0] == MANIFEST
    assert ("authorization" in tokens.seen[-1][1]) is sent
    if sent:
        assert base64.b64decode(tokens.seen[-1][1]["authorization"].split()[1]) == b"ci:s3cret"


def test_credentials_for_matches_the_host_exactly():
    env = {**CREDS, "RENDER_REGISTRY_HOST": "reg.example.com"}
    assert credentials_for("reg.example.com", env).username == "ci"
    for other in ("reg.example.com.evil.io", "evil-reg.example.com", "reg.example.com:5000", "example.com"):
        assert credentials_for(other, env) is None, other
