"""A minimal OCI distribution client: just enough to fetch an image's cosign signature.

Where it sits: cli -> pipeline -> load -> plan -> verify (``signatures``) -> render -> ...
``signatures`` calls it when an install's image has no ``signature.json``; nothing else does.

What it does (OCI distribution spec, read-only):

* ``GET /v2/<repo>/manifests/<ref>`` with the full Accept list (OCI and Docker manifest and
  index types); a manifest fetched by digest is checked against that digest;
* ``GET /v2/<repo>/blobs/<digest>``, size-bounded, checked against its digest;
* auth the way the registry announces it in ``WWW-Authenticate``: ``Bearer`` (token from the
  announced realm, anonymous or with credentials) or ``Basic``. Credentials are per host: from
  ``RENDER_REGISTRY_USERNAME``/``RENDER_REGISTRY_PASSWORD`` only for the host named by
  ``RENDER_REGISTRY_HOST``, else from a docker config file (``$DOCKER_CONFIG/config.json``,
  ``~/.docker/config.json``, ``$REGISTRY_AUTH_FILE``) entry for that host, including
  ``credsStore``/``credHelpers`` (``docker-credential-<name> get``). They go to that host, and to
  its token realm only when the realm is on the same host name (``auth.docker.io`` for Docker Hub);
* HTTPS always, plain HTTP only for hosts listed as insecure; redirects (blob storage) are
  followed to ``https`` only (``http`` only back to the same insecure host), and the
  ``Authorization`` header never leaves the registry's host;
* every read has a timeout, every request an overall deadline (``DEFAULT_REQUEST_DEADLINE``, a
  watchdog closes a connection that drips), and a run one more (``run_deadline``); every response
  body is size-bounded; connection errors, timeouts, 429 and 5xx are retried a bounded number
  of times with backoff, then reported as ``OutsideSystemError`` (exit 3).

A missing manifest is ``None`` (the caller decides what that means); content that is wrong
(bad digest, oversized, not JSON) raises ``RegistryContentError``, which the caller turns into a
rejection. Only the standard library is used.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from renderer.core.errors import OutsideSystemError
from renderer.trust.credentials import DOCKER_HUB, Credentials, credentials_for  # noqa: F401 (public names)
from renderer.trust.images import DOCKER_HUB_API, _DIGEST_RE, ImageRef, parse_image, sha256_digest  # noqa: F401 (public names)

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

DEFAULT_TIMEOUT = 10.0  # seconds, per request (connect and each read)
DEFAULT_ATTEMPTS = 3  # first try + 2 retries
DEFAULT_BACKOFF = 0.5  # seconds, doubled after each failed attempt
MAX_RETRY_AFTER = 5.0  # seconds: a longer Retry-After is capped
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_BLOB_BYTES = 1024 * 1024  # signature payloads are a few hundred bytes
MAX_REDIRECTS = 5
MAX_TOKEN_BYTES = 64 * 1024
DEFAULT_REQUEST_DEADLINE = 30.0  # seconds for one whole request: connect, headers and body
DEFAULT_RUN_DEADLINE = 300.0  # seconds for every registry request of one run together
DOCKER_HUB_AUTH = "auth.docker.io"
_RUN_DEADLINE: contextvars.ContextVar[Optional[float]] = contextvars.ContextVar("registry_run_deadline", default=None)
USER_AGENT = "plugin-bundle-renderer"

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@contextlib.contextmanager
def run_deadline(seconds: float = DEFAULT_RUN_DEADLINE):
    """Every registry request made inside this block ends by ``seconds`` from now (one run)."""
    token = _RUN_DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _RUN_DEADLINE.reset(token)


class _DeadlineExceeded(Exception):
    pass


class RegistryContentError(Exception):
    """The registry answered, but with content that cannot be trusted (bad digest, too big, not JSON)."""


# ------------------------------------------------------------------------------------ transport


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _CHALLENGE_PARAM_RE.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


class RegistryClient:
    """Read-only client for one registry host. Not thread-safe; cheap to create.

    ``insecure`` means plain HTTP (and nothing else: there is no "skip TLS verification").
    ``sleep`` is injectable so tests of the retry policy do not wait.
    """

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        environ: Optional[Mapping[str, str]] = None,
        sleep: Callable[[float], None] = time.sleep,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
    ):
        self.host = host
        self.api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        self.insecure = insecure
        self.scheme = "http" if insecure else "https"
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.environ = os.environ if environ is None else environ
        self.sleep = sleep
        self.request_deadline = request_deadline
        self._auth: Optional[str] = None  # Authorization header value for this host
        self._ssl = ssl.create_default_context()
        self.requests = 0  # HTTP requests sent (all hosts, all attempts); for tests and numbers

    # -- public API --------------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> Optional[tuple[bytes, str, str]]:
        """(bytes, media type, digest) of a manifest, or None when the registry has none.

        A manifest asked for by digest must hash to that digest.
        """
        resp = self._get(f"/v2/{repo}/manifests/{reference}", {"Accept": ACCEPT}, MAX_MANIFEST_BYTES, repo)
        if resp.status == 404:
            return None
        self._expect_ok(resp, f"manifest {repo}:{reference}")
        digest = sha256_digest(resp.body)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryContentError(f"manifest {repo}@{reference} hashes to {digest}, not the digest asked for")
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        try:
            doc = json.loads(resp.body)
        except ValueError:
            raise RegistryContentError(f"manifest {repo}:{reference} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryContentError(f"manifest {repo}:{reference} is not a JSON object")
        media_type = doc.get("mediaType") or media_type
        return resp.body, str(media_type), digest

    def get_blob(self, repo: str, digest: str, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        """A blob's bytes, checked against its digest. A missing blob is content error."""
        if not _DIGEST_RE.match(digest):
            raise RegistryContentError(f"{digest!r} is not a sha256 digest")
        resp = self._get(f"/v2/{repo}/blobs/{digest}", {}, max_bytes, repo)
        if resp.status == 404:
            raise RegistryContentError(f"blob {repo}@{digest} is missing from the registry")
        self._expect_ok(resp, f"blob {repo}@{digest}")
        actual = sha256_digest(resp.body)
        if actual != digest:
            raise RegistryContentError(f"blob {repo}@{digest} hashes to {actual}: the registry served other bytes")
        return resp.body

    # -- internals ---------------------------------------------------------------------------

    def _expect_ok(self, resp: Response, what: str) -> None:
        if resp.status == 200:
            return
        if resp.status in (401, 403):
            raise OutsideSystemError(
                f"registry {self.host} denied access to {what} (HTTP {resp.status}); "
                "give the renderer pull credentials for this host: RENDER_REGISTRY_HOST with "
                "RENDER_REGISTRY_USERNAME/RENDER_REGISTRY_PASSWORD, or `docker login` (docker config file)"
            )
        raise OutsideSystemError(
            f"registry {self.host} answered HTTP {resp.status} for {what}; check the registry and retry"
        )

    def _get(self, path: str, headers: dict[str, str], max_bytes: int, repo: str) -> Response:
        url = f"{self.scheme}://{self.api_host}{path}"
        resp = self._request_following(url, headers, max_bytes, send_auth=True)
        if resp.status == 401 and "www-authenticate" in resp.headers:
            if self._authenticate(resp.headers["www-authenticate"], repo):
                resp = self._request_following(url, headers, max_bytes, send_auth=True)
        return resp

    def _authenticate(self, header: str, repo: str) -> bool:
        scheme, params = parse_challenge(header)
        creds = credentials_for(self.host, self.environ)  # this host's own, or None
        if scheme == "basic":
            if creds is None:
                return False
            token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            self._auth = f"Basic {token}"
            return True
        if scheme != "bearer" or not params.get("realm"):
            return False
        realm = params["realm"]
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise OutsideSystemError(f"registry {self.host} announced an unusable token realm {realm!r}")
        if parsed.scheme == "http" and not self.insecure:
            raise OutsideSystemError(
                f"registry {self.host} announced a plain-HTTP token realm {realm!r}; "
                "credentials are sent over HTTPS only (list the registry with --insecure-registry if it is a test registry)"
            )
        query = [("scope", params.get("scope") or f"repository:{repo}:pull")]
        if params.get("service"):
            query.insert(0, ("service", params["service"]))
        sep = "&" if parsed.query else "?"
        token_url = realm + sep + urllib.parse.urlencode(query)
        headers = {}
        if creds is not None and not self._same_host_realm(parsed):
            creds = None  # a realm on another host gets an anonymous token request, never the credentials
        if creds is not None:
            basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        resp = self._request_following(token_url, headers, MAX_TOKEN_BYTES, send_auth=False)
        if resp.status in (401, 403):
            hint = (
                "the credentials were refused" if creds else "anonymous pull is not allowed and no credentials were found"
            )
            raise OutsideSystemError(
                f"registry {self.host}: token service {parsed.netloc} refused a pull token for {repo} "
                f"(HTTP {resp.status}: {hint}); set RENDER_REGISTRY_HOST={self.host} with "
                "RENDER_REGISTRY_USERNAME/RENDER_REGISTRY_PASSWORD, or `docker login` to the registry"
            )
        if resp.status != 200:
            raise OutsideSystemError(
                f"registry {self.host}: token service {parsed.netloc} answered HTTP {resp.status}; retry later"
            )
        try:
            data = json.loads(resp.body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise OutsideSystemError(f"registry {self.host}: token service {parsed.netloc} returned no token")
        self._auth = f"Bearer {token}"
        return True

    def _same_host_realm(self, realm: urllib.parse.SplitResult) -> bool:
        """A token realm may see this host's credentials only on the registry's own host name."""
        own = urllib.parse.urlsplit(f"//{self.api_host}").hostname or ""
        hosts = {own, DOCKER_HUB_AUTH} if self.host == DOCKER_HUB else {own}
        return (realm.hostname or "") in hosts

    def _request_following(self, url: str, headers: dict[str, str], max_bytes: int, *, send_auth: bool) -> Response:
        """GET with retries, following redirects; Authorization only to the registry host itself."""
        for _ in range(MAX_REDIRECTS + 1):
            parsed = urllib.parse.urlsplit(url)
            hdrs = dict(headers)
            if send_auth and self._auth and parsed.netloc == self.api_host:
                hdrs["Authorization"] = self._auth
            resp = self._request_with_retries(parsed, hdrs, max_bytes)
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                target = urllib.parse.urljoin(url, resp.headers["location"])
                tparsed = urllib.parse.urlsplit(target)
                plain_ok = tparsed.scheme == "http" and self.insecure and tparsed.netloc == self.api_host
                if tparsed.scheme != "https" and not plain_ok:
                    raise OutsideSystemError(
                        f"registry {self.host} redirected to {tparsed.scheme or '(no scheme)'}://{tparsed.netloc}; "
                        "refusing: redirects are followed to https only (plain http only back to the same "
                        "--insecure-registry host)")
                url = target
                if tparsed.netloc != parsed.netloc:
                    # never carry the registry's (or token service's) credentials to another host
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            return resp
        raise OutsideSystemError(f"registry {self.host}: more than {MAX_REDIRECTS} redirects")

    def _request_with_retries(self, url: urllib.parse.SplitResult, headers: dict[str, str], max_bytes: int) -> Response:
        delay = self.backoff
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._request_once(url, headers, max_bytes)
            except RegistryContentError:
                raise
            except _DeadlineExceeded as exc:
                raise OutsideSystemError(
                    f"registry {url.netloc}: {exc}; the registry is too slow (or drips its answer): "
                    "check it and retry, or verify offline with signature.json"
                ) from None
            except ssl.SSLCertVerificationError as exc:
                raise OutsideSystemError(
                    f"registry {url.netloc}: its TLS certificate is not trusted ({exc.verify_message or exc}); "
                    "add the registry's CA to the system trust store (or SSL_CERT_FILE)"
                ) from None
            except ssl.SSLError as exc:
                # not transient: a plain-HTTP registry or a bad certificate does not heal on retry
                raise OutsideSystemError(
                    f"registry {url.netloc}: TLS failed ({exc.reason or exc}); if this is a plain-HTTP test "
                    "registry, list it with --insecure-registry (or RENDER_INSECURE_REGISTRIES)"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                last = _describe(exc)
            else:
                if resp.status not in _TRANSIENT_STATUS:
                    return resp
                last = f"HTTP {resp.status}"
                retry_after = resp.headers.get("retry-after", "")
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
            if attempt < self.attempts:
                self.sleep(delay)
                delay *= 2
        raise OutsideSystemError(
            f"registry {url.netloc} is unreachable: {last} after {self.attempts} attempt(s) "
            f"(timeout {self.timeout:g}s each); check the registry and the network and retry, "
            "or verify offline with signature.json (cosign download signature)"
        )

    def _request_once(self, url: urllib.parse.SplitResult, headers: dict[str, str], max_bytes: int) -> Response:
        """One GET, over within ``request_deadline`` (and the run's deadline): a watchdog shuts the
        socket down when it passes, so a server that drips bytes cannot hold the run."""
        self.requests += 1
        now = time.monotonic()
        deadline = now + self.request_deadline
        run_end = _RUN_DEADLINE.get()
        which = f"the {self.request_deadline:g}s deadline of one request"
        if run_end is not None and run_end < deadline:
            deadline, which = run_end, "the run's deadline for registry requests"
        if deadline <= now:
            raise _DeadlineExceeded(f"{which} has passed")
        timeout = min(self.timeout, deadline - now)
        if url.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname or "", url.port, timeout=timeout, context=self._ssl
            )
        elif url.scheme == "http":
            conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
        else:
            raise OutsideSystemError(f"registry {self.host}: refusing the {url.scheme!r} URL scheme")
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        fired = threading.Event()

        def watchdog() -> None:
            fired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(deadline - now, watchdog)
        timer.daemon = True
        timer.start()
        try:
            return self._exchange(conn, url, target, headers, max_bytes, fired)
        except (OSError, http.client.HTTPException):
            if fired.is_set():
                raise _DeadlineExceeded(f"{which} passed") from None
            raise
        finally:
            timer.cancel()
            conn.close()

    @staticmethod
    def _exchange(conn, url, target: str, headers: dict[str, str], max_bytes: int, fired: threading.Event) -> Response:
        conn.request("GET", target, headers={"User-Agent": USER_AGENT, **headers})
        raw = conn.getresponse()
        length = raw.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes and raw.status == 200:
            raise RegistryContentError(
                f"{url.netloc}{url.path} is {length} bytes, more than the {max_bytes} allowed"
            )
        body = raw.read(max_bytes + 1)
        if fired.is_set():
            raise OSError("deadline passed")
        if len(body) > max_bytes and raw.status == 200:
            raise RegistryContentError(f"{url.netloc}{url.path} is more than the {max_bytes} bytes allowed")
        return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, body)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror})"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text
