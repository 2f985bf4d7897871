"""Image signature verification against the real registry, umoci, skopeo and cosign.

Covers ``renderer.signatures`` and ``renderer.registry`` (the verify stage). The registry, the
images and the signatures are real (see ``tests.support.registry``); the only home-made servers are a
token service (the registry's real bearer-token flow needs one) and a proxy that injects
transient failures in front of the real registry.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.registry import (  # noqa: F401  (fixtures are used by name)
    RegistryServer,
    TokenServer,
    cosign_keys,
    free_port,
    get_manifest,
    oci_tools,
    put_blob,
    put_manifest,
    registry,
    signed_image,
)
from renderer.core.errors import EXIT_OUTSIDE, EXIT_REJECTED, OutsideSystemError, SignatureError
from renderer.trust.registry import ImageRef, parse_image, sha256_digest
from renderer.trust.signatures import (
    SIGNATURE_ANNOTATION,
    TLOG_SETTINGS,
    KeylessTrust,
    KeyTrust,
    default_cache_dir,
    registry_prefix_matches,
    signature_tag,
    trust_from_publisher_spec,
    verify_image,
)

FAST = {"timeout": 2.0, "attempts": 2, "backoff": 0.01}


def trust_for(keys, name: str = "publisher") -> KeyTrust:
    return trust_from_publisher_spec({"cosign": {"publicKey": keys[name].public_pem}}, f"publishers/{name}.yaml")


def online(image: str, trust, registry_host: str, *, cache_dir: Optional[Path] = None, **kw):
    return verify_image(
        image, trust, None, offline=False, insecure_registries=frozenset({registry_host}), cache_dir=cache_dir,
        **{**FAST, **kw},
    )


def offline(image: str, trust, signature_file: Path):
    return verify_image(image, trust, signature_file, offline=True, insecure_registries=frozenset(), cache_dir=None)


def split(image: str) -> tuple[str, str, str]:
    """host, repository path, digest of ``host/path:tag@digest``."""
    ref = parse_image(image)
    return ref.host, ref.path, ref.digest


# ------------------------------------------------------------------------------------ proxy


class Proxy:
    """Forwards GETs to a real registry; can answer 503 first, always, or hang. Records requests."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.fail_first = 0
        self.always: Optional[int] = None
        self.hang = False
        self.requests: list[dict] = []
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.requests.append({"path": self.path, "accept": self.headers.get("Accept", "")})
                if proxy.hang:
                    proxy._release.wait(20)
                    return
                if proxy.always or proxy.fail_first > 0:
                    proxy.fail_first -= 1
                    self.send_response(proxy.always or 503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("GET", self.path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(registry):
    p = Proxy(registry.host)
    yield p
    p.stop()


@pytest.fixture
def proxied_image(signed_image, proxy):
    """An image signed for the proxy's address (the payload names the repository as reached)."""

    def make(repo: str = "acme/quiz", **kw) -> str:
        image = signed_image(repo, identity=f"{proxy.host}/{repo}", **kw)
        ref = parse_image(image)
        return f"{proxy.host}/{ref.path}:{ref.tag}@{ref.digest}"

    return make


# ------------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    "image, prefix, expected",
    [
        pytest.param("registry.adapstory.io/acme/quiz", "registry.adapstory.io/acme", True, id="below-prefix"),
        pytest.param("registry.adapstory.io/acme/team/quiz", "registry.adapstory.io/acme", True, id="deeper"),
        pytest.param("registry.adapstory.io/acme-evil/quiz", "registry.adapstory.io/acme", False, id="acme-evil"),
        pytest.param("registry.adapstory.io/acmequiz", "registry.adapstory.io/acme", False, id="no-separator"),
        pytest.param("registry.adapstory.io/acme", "registry.adapstory.io/acme", True, id="equal"),
        pytest.param("registry.adapstory.io/acme/quiz", "registry.adapstory.io/acme/", True, id="trailing-slash"),
        pytest.param("registry.adapstory.io/acme/quiz", "registry.adapstory.io", True, id="whole-host"),
        pytest.param("registry.adapstory.io.evil.com/acme/quiz", "registry.adapstory.io", False, id="host-suffix"),
        pytest.param("other.io/acme/quiz", "registry.adapstory.io/acme", False, id="other-host"),
        pytest.param("registry.adapstory.io/acme", "registry.adapstory.io/acme/quiz", False, id="prefix-longer"),
        pytest.param("REGISTRY.adapstory.io/acme/quiz", "registry.adapstory.io/acme", True, id="host-case"),
        pytest.param("registry.adapstory.io/acme/quiz:1.3.0@sha256:" + "a" * 64, "registry.adapstory.io/acme", True,
                     id="tag-and-digest-ignored"),
        pytest.param("registry.adapstory.io/acme/quiz", "", False, id="empty-prefix"),
    ],
)
def test_registry_prefixes_match_whole_path_segments(image, prefix, expected):
    assert registry_prefix_matches(image, prefix) is expected


@pytest.mark.parametrize(
    "image, expected",
    [
        pytest.param("registry.adapstory.io/acme/quiz@sha256:" + "b" * 64,
                     ImageRef("registry.adapstory.io", "acme/quiz", None, "sha256:" + "b" * 64), id="digest"),
        pytest.param("127.0.0.1:5000/acme/quiz:1.3.0@sha256:" + "b" * 64,
                     ImageRef("127.0.0.1:5000", "acme/quiz", "1.3.0", "sha256:" + "b" * 64), id="port-tag-digest"),
        pytest.param("nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27", None), id="docker-hub-short"),
        pytest.param("localhost/acme/quiz", ImageRef("localhost", "acme/quiz", None, None), id="localhost"),
    ],
)
def test_image_references_are_split_into_host_path_tag_and_digest(image, expected):
    assert parse_image(image) == expected


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("registry.adapstory.io/acme/quiz@sha256:abc", id="short-digest"),
        pytest.param("registry.adapstory.io/Acme/quiz", id="uppercase-path"),
        pytest.param("registry.adapstory.io/acme/quiz:bad tag", id="space"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_image_references_are_refused(image):
    with pytest.raises(ValueError):
        parse_image(image)


def _pem(key) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize(
    "spec, message",
    [
        pytest.param({"keyless": {"issuer": "https://token.actions.githubusercontent.com", "subject": "x"}},
                     "not supported yet", id="keyless"),
        pytest.param({"cosign": {"publicKey": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}},
                     "not a PEM public key", id="garbage-pem"),
        pytest.param({"cosign": {"publicKey": _pem(rsa.generate_private_key(65537, 2048).public_key())}},
                     "not ECDSA P-256", id="rsa"),
        pytest.param({"cosign": {"publicKey": _pem(ec.generate_private_key(ec.SECP384R1()).public_key())}},
                     "secp384r1, not ECDSA P-256", id="p384"),
        pytest.param({"cosign": {"publicKey": _pem(ec.generate_private_key(ec.SECP256R1()).public_key())},
                      "keyless": {"issuer": "i", "subject": "s"}}, "not both", id="both"),
        pytest.param({"registries": ["x.io/acme"]}, "spec.cosign.publicKey: missing", id="neither"),
    ],
)
def test_a_publisher_trust_that_cannot_be_used_is_refused_with_the_reason(spec, message):
    with pytest.raises(SignatureError) as err:
        trust_from_publisher_spec(spec, "publishers/acme.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("publishers/acme.yaml: ")
    assert err.value.exit_code == EXIT_REJECTED


def test_a_key_trust_is_fingerprinted_by_its_der_public_key_and_drives_the_admission_policy():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    trust = trust_from_publisher_spec({"cosign": {"publicKey": "\n  " + _pem(key) + "\n"}}, "publishers/acme.yaml")
    assert trust.fingerprint == sha256_digest(der)
    attestor = trust.kyverno_attestor()
    entry = attestor["entries"][0]["keys"]
    assert entry["publicKeys"] == _pem(key)
    assert entry["rekor"] == {"ignoreTlog": True} and entry["ctlog"] == {"ignoreSCT": True}
    assert TLOG_SETTINGS == {"rekor": {"ignoreTlog": True}, "ctlog": {"ignoreSCT": True}}


def test_a_keyless_trust_has_a_stable_fingerprint_but_refuses_to_verify_for_now():
    trust = KeylessTrust("https://issuer", "subject")
    assert trust.fingerprint == KeylessTrust("https://issuer", "subject").fingerprint
    assert trust.fingerprint != KeylessTrust("https://issuer", "other").fingerprint
    with pytest.raises(SignatureError, match="not supported yet"):
        trust.verify(None)


@pytest.mark.parametrize(
    "environ, expected",
    [
        pytest.param({"RENDER_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c", id="explicit"),
        pytest.param({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/render", id="xdg"),
        pytest.param({"HOME": "/h"}, "/h/.cache/render", id="home"),
    ],
)
def test_the_cache_lives_where_render_cache_dir_or_xdg_says(environ, expected):
    assert default_cache_dir(environ) == Path(expected)


def test_an_image_that_is_not_pinned_by_digest_is_rejected():
    trust = KeyTrust(_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
    with pytest.raises(SignatureError, match="not pinned by digest"):
        verify_image("registry.adapstory.io/acme/quiz:1.0", trust, None, offline=False)


# ------------------------------------------------------------------------------------ online


def test_an_image_signed_by_the_publisher_passes_online(signed_image, cosign_keys, registry, oci_tools):
    image = signed_image()
    result = online(image, trust_for(cosign_keys), registry.host)
    host, path, digest = split(image)
    payload = base64.b64decode(json.loads(oci_tools.download_signature(f"{host}/{path}@{digest}"))["Payload"])
    assert result.source == "registry"
    assert result.key_fingerprint == trust_for(cosign_keys).fingerprint
    assert result.payload_digest == sha256_digest(payload)
    assert result.bundle_fields() == {"keyFingerprint": result.key_fingerprint, "payloadDigest": result.payload_digest}


def test_an_image_signed_by_another_key_is_rejected(signed_image, cosign_keys, registry):
    image = signed_image(key="stranger")
    with pytest.raises(SignatureError) as err:
        online(image, trust_for(cosign_keys), registry.host)
    assert image in str(err.value)
    assert "does not verify with the publisher's key" in str(err.value)
    assert "cosign sign --key" in err.value.hint
    assert err.value.exit_code == EXIT_REJECTED


def test_an_unsigned_image_is_rejected(signed_image, cosign_keys, registry):
    image = signed_image(key=None)
    with pytest.raises(SignatureError, match=r"the image is not signed: .*sha256-[0-9a-f]{64}\.sig"):
        online(image, trust_for(cosign_keys), registry.host)


def test_an_image_signed_by_a_stranger_and_the_publisher_passes(signed_image, cosign_keys, registry, oci_tools):
    image = signed_image(key="stranger")
    host, path, digest = split(image)
    oci_tools.sign(f"{host}/{path}@{digest}", cosign_keys["publisher"])
    sig, _ = get_manifest(host, path, signature_tag(digest))
    assert len(json.loads(sig)["layers"]) == 2
    assert online(image, trust_for(cosign_keys), registry.host).source == "registry"


def test_a_signature_of_another_digest_replayed_onto_this_image_is_rejected(signed_image, cosign_keys, registry):
    signed = signed_image("acme/replay")
    victim = signed_image("acme/replay", key=None, tag="2.0.0")
    host, path, signed_digest = split(signed)
    _, _, victim_digest = split(victim)
    body, media_type = get_manifest(host, path, signature_tag(signed_digest))
    put_manifest(host, path, signature_tag(victim_digest), body, media_type)
    with pytest.raises(SignatureError) as err:
        online(victim, trust_for(cosign_keys), registry.host)
    assert f"the payload signs digest {signed_digest}, not the pinned {victim_digest}" in str(err.value)


def test_a_tampered_payload_pushed_to_the_registry_is_rejected(signed_image, cosign_keys, registry):
    image = signed_image("acme/tamper")
    host, path, digest = split(image)
    body, media_type = get_manifest(host, path, signature_tag(digest))
    manifest = json.loads(body)
    layer = manifest["layers"][0]
    payload = json.loads(http_blob(host, path, layer["digest"]))
    payload["optional"] = {"note": "added after signing"}
    tampered = json.dumps(payload).encode()
    layer["digest"], layer["size"] = put_blob(host, path, tampered), len(tampered)
    put_manifest(host, path, signature_tag(digest), json.dumps(manifest).encode(), media_type)
    with pytest.raises(SignatureError, match="does not verify with the publisher's key"):
        online(image, trust_for(cosign_keys), registry.host)


def http_blob(host: str, path: str, digest: str) -> bytes:
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("GET", f"/v2/{path}/blobs/{digest}")
    body = conn.getresponse().read()
    conn.close()
    return body


def test_a_signature_naming_another_repository_is_rejected(signed_image, cosign_keys, registry, oci_tools):
    image = signed_image("acme/victim", key=None)
    host, path, digest = split(image)
    oci_tools.copy(f"{host}/{path}@{digest}", f"{host}/acme/elsewhere:1.0.0")
    oci_tools.sign(f"{host}/acme/elsewhere@{digest}", cosign_keys["publisher"])
    oci_tools.copy(f"{host}/acme/elsewhere:{signature_tag(digest)}", f"{host}/{path}:{signature_tag(digest)}")
    with pytest.raises(SignatureError) as err:
        online(image, trust_for(cosign_keys), registry.host)
    assert f"names repository '{host}/acme/elsewhere', not {host}/{path}" in str(err.value)


def test_a_reference_with_a_tag_in_the_payload_is_accepted(signed_image, cosign_keys, registry):
    image = signed_image("acme/tagged", identity=f"{registry.host}/acme/tagged:1.0.0")
    assert online(image, trust_for(cosign_keys), registry.host).source == "registry"


def test_a_pinned_digest_the_registry_does_not_have_is_rejected(cosign_keys, registry, signed_image):
    signed_image("acme/ghost")
    image = f"{registry.host}/acme/ghost@sha256:" + "0" * 64
    with pytest.raises(SignatureError, match="the registry has no manifest"):
        online(image, trust_for(cosign_keys), registry.host)


def test_the_client_asks_for_every_manifest_type(proxied_image, cosign_keys, proxy):
    online(proxied_image(), trust_for(cosign_keys), proxy.host)
    manifest_requests = [r for r in proxy.requests if "/manifests/" in r["path"]]
    assert len(manifest_requests) == 2
    for r in manifest_requests:
        for media_type in (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ):
            assert media_type in r["accept"]


def test_a_registry_that_is_down_is_an_outside_failure_with_exit_3(cosign_keys):
    host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(OutsideSystemError) as err:
        online(f"{host}/acme/quiz@sha256:" + "1" * 64, trust_for(cosign_keys), host)
    assert err.value.exit_code == EXIT_OUTSIDE
    assert f"registry {host} is unreachable: connection refused after 2 attempt(s)" in str(err.value)
    assert time.monotonic() - started < 2


def test_transient_registry_errors_are_retried(proxied_image, cosign_keys, proxy):
    image = proxied_image()
    proxy.fail_first = 2
    result = online(image, trust_for(cosign_keys), proxy.host, attempts=3)
    assert result.source == "registry"
    assert len(proxy.requests) == 2 + 3  # two 503s, then image manifest, .sig manifest, payload blob


def test_retries_are_bounded_and_then_exit_3(proxied_image, cosign_keys, proxy):
    image = proxied_image()
    proxy.always = 503
    with pytest.raises(OutsideSystemError, match="HTTP 503 after 3 attempt"):
        online(image, trust_for(cosign_keys), proxy.host, attempts=3)
    assert len(proxy.requests) == 3


def test_a_registry_that_never_answers_times_out_with_exit_3(proxied_image, cosign_keys, proxy):
    image = proxied_image()
    proxy.hang = True
    started = time.monotonic()
    with pytest.raises(OutsideSystemError, match="timed out after 2 attempt"):
        online(image, trust_for(cosign_keys), proxy.host, timeout=0.3, attempts=2)
    assert time.monotonic() - started < 3


def test_a_plain_http_registry_not_listed_as_insecure_is_not_spoken_to_in_plain_http(signed_image, cosign_keys, registry):
    image = signed_image()
    with pytest.raises(OutsideSystemError) as err:
        verify_image(image, trust_for(cosign_keys), None, offline=False, insecure_registries=frozenset(), **FAST)
    assert "TLS failed" in str(err.value) and "--insecure-registry" in str(err.value)


# ------------------------------------------------------------------------------------ bearer token auth


@pytest.fixture(scope="module")
def token_registry(registry, tmp_path_factory):
    """A second real registry over the same storage that demands bearer tokens from ``TokenServer``."""
    work = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(work, {"reader": "s3cret"})
    server = RegistryServer(work, registry.storage, token_auth=tokens.registry_auth_config()).start()
    server.tokens = tokens
    yield server
    server.stop()
    tokens.stop()


@pytest.fixture
def auth_image(signed_image, token_registry):
    image = signed_image("acme/private", identity=f"{token_registry.host}/acme/private")
    ref = parse_image(image)
    return f"{token_registry.host}/{ref.path}:{ref.tag}@{ref.digest}"


def test_a_registry_asking_for_a_bearer_token_is_read_with_credentials_from_a_docker_config(
    auth_image, token_registry, cosign_keys, tmp_path
):
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {token_registry.host: {"auth": base64.b64encode(b"reader:s3cret").decode()}}})
    )
    result = online(auth_image, trust_for(cosign_keys), token_registry.host, environ={"DOCKER_CONFIG": str(tmp_path)})
    assert result.source == "registry"
    seen = token_registry.tokens.requests[-1]
    assert seen["user"] == "reader"
    assert seen["query"] == {"service": "render-test-registry", "scope": "repository:acme/private:pull"}


def test_a_registry_asking_for_a_bearer_token_is_read_with_credentials_from_the_environment(
    auth_image, token_registry, cosign_keys
):
    environ = {"RENDER_REGISTRY_USERNAME": "reader", "RENDER_REGISTRY_PASSWORD": "s3cret",
               "RENDER_REGISTRY_HOST": token_registry.host}
    assert online(auth_image, trust_for(cosign_keys), token_registry.host, environ=environ).source == "registry"


@pytest.mark.parametrize(
    "environ, reason",
    [
        pytest.param({}, "no credentials were found", id="anonymous"),
        pytest.param({"RENDER_REGISTRY_USERNAME": "reader", "RENDER_REGISTRY_PASSWORD": "wrong"},
                     "the credentials were refused", id="wrong-password"),
    ],
)
def test_a_registry_that_refuses_a_token_is_an_outside_failure(auth_image, token_registry, cosign_keys, environ, reason):
    with pytest.raises(OutsideSystemError) as err:
        scoped = {**environ, "RENDER_REGISTRY_HOST": token_registry.host} if environ else {}
        online(auth_image, trust_for(cosign_keys), token_registry.host, environ={"HOME": "/nonexistent", **scoped})
    assert reason in str(err.value)
    assert "RENDER_REGISTRY_USERNAME" in str(err.value)
    assert err.value.exit_code == EXIT_OUTSIDE


# ------------------------------------------------------------------------------------ cache


def cache_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file())


def test_a_verified_signature_is_served_from_the_cache_without_the_registry(proxied_image, cosign_keys, proxy, tmp_path):
    image = proxied_image()
    first = online(image, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    assert first.source == "registry" and len(cache_files(tmp_path)) == 1
    proxy.stop()  # nothing answers any more
    second = online(image, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    assert second.source == "cache"
    assert (second.key_fingerprint, second.payload_digest) == (first.key_fingerprint, first.payload_digest)
    assert not [p for p in cache_files(tmp_path) if p.name.startswith(".tmp")]


def test_without_the_cache_the_registry_is_asked_every_time_and_nothing_is_stored(
    proxied_image, cosign_keys, proxy, tmp_path
):
    image = proxied_image()
    online(image, trust_for(cosign_keys), proxy.host, cache_dir=None)
    online(image, trust_for(cosign_keys), proxy.host, cache_dir=None)
    assert len(proxy.requests) == 6
    assert cache_files(tmp_path) == []


def test_a_cached_result_for_one_key_does_not_admit_an_image_for_another(proxied_image, cosign_keys, proxy, tmp_path):
    image = proxied_image()
    online(image, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    with pytest.raises(SignatureError, match="does not verify"):
        online(image, trust_for(cosign_keys, "stranger"), proxy.host, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda entry: "{not json", id="not-json"),
        pytest.param(lambda entry: "", id="empty"),
        pytest.param(lambda entry: json.dumps({**entry, "signature": base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()}),
                     id="forged-signature"),
        pytest.param(lambda entry: json.dumps({**entry, "payload": base64.b64encode(b'{"critical":{}}').decode()}),
                     id="swapped-payload"),
        pytest.param(lambda entry: json.dumps({k: v for k, v in entry.items() if k != "signature"}), id="missing-field"),
    ],
)
def test_a_corrupt_cache_entry_is_ignored_and_replaced(proxied_image, cosign_keys, proxy, tmp_path, corrupt):
    image = proxied_image()
    online(image, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    (entry_file,) = cache_files(tmp_path)
    good = entry_file.read_text()
    entry_file.write_text(corrupt(json.loads(good)))
    before = len(proxy.requests)
    result = online(image, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    assert result.source == "registry"
    assert len(proxy.requests) == before + 3
    assert json.loads(entry_file.read_text()) == json.loads(good)


def test_a_cache_entry_copied_onto_another_image_is_not_trusted(proxied_image, cosign_keys, proxy, tmp_path):
    a, b = proxied_image("acme/cache-a"), proxied_image("acme/cache-b", key="stranger")
    online(a, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)
    (entry_file,) = cache_files(tmp_path)
    entry = json.loads(entry_file.read_text())
    ref_b = parse_image(b)
    # an attacker with write access to the cache makes an entry for b from a's evidence
    from renderer.trust.signatures import _cache_path

    forged = _cache_path(tmp_path, ref_b, trust_for(cosign_keys).fingerprint)
    forged.parent.mkdir(parents=True, exist_ok=True)
    forged.write_text(json.dumps({**entry, "repository": ref_b.repository, "imageDigest": ref_b.digest}))
    with pytest.raises(SignatureError, match="does not verify"):
        online(b, trust_for(cosign_keys), proxy.host, cache_dir=tmp_path)


# ------------------------------------------------------------------------------------ offline


@pytest.fixture
def signature_json(oci_tools, registry, tmp_path):
    """Write ``cosign download signature`` output for an image (read from the real registry) into a file."""

    def make(image: str, name: str = "signature.json") -> Path:
        _, path, digest = split(image)
        target = tmp_path / name
        target.write_bytes(oci_tools.download_signature(f"{registry.host}/{path}@{digest}"))
        return target

    return make


def test_an_offline_signature_json_passes_and_the_registry_is_never_contacted(
    signed_image, cosign_keys, registry, proxy, signature_json
):
    image = signed_image("acme/offline", identity=f"{proxy.host}/acme/offline")
    sig = signature_json(image)
    ref = parse_image(image)
    via_proxy = f"{proxy.host}/{ref.path}@{ref.digest}"
    result = verify_image(
        via_proxy, trust_for(cosign_keys), sig, offline=False, insecure_registries=frozenset({proxy.host}),
        cache_dir=None,
    )
    assert result.source == "signature.json"
    assert proxy.requests == []
    assert result.payload_digest == online(via_proxy, trust_for(cosign_keys), proxy.host).payload_digest
    assert len(proxy.requests) == 3  # the online check above did use the registry


def test_an_offline_signature_json_passes_with_the_offline_flag(signed_image, cosign_keys, signature_json):
    image = signed_image("acme/offline")
    assert offline(image, trust_for(cosign_keys), signature_json(image)).source == "signature.json"


def test_offline_without_signature_json_is_an_error_that_says_how_to_make_one(signed_image, cosign_keys, tmp_path):
    image = signed_image("acme/offline")
    with pytest.raises(SignatureError) as err:
        offline(image, trust_for(cosign_keys), tmp_path / "signature.json")
    assert "--offline" in str(err.value)
    assert "cosign download signature" in err.value.hint


def test_an_offline_signature_by_another_key_is_rejected(signed_image, cosign_keys, signature_json):
    image = signed_image("acme/offline", key="stranger")
    with pytest.raises(SignatureError, match=r"signature.json line 1: the signature does not verify"):
        offline(image, trust_for(cosign_keys), signature_json(image))


def test_an_offline_signature_of_another_digest_is_rejected(signed_image, cosign_keys, signature_json):
    signed = signed_image("acme/offline")
    other = signed_image("acme/offline", key=None, tag="2.0.0")
    with pytest.raises(SignatureError, match="the payload signs digest"):
        offline(other, trust_for(cosign_keys), signature_json(signed))


def test_an_offline_tampered_payload_is_rejected(signed_image, cosign_keys, signature_json):
    image = signed_image("acme/offline")
    sig = signature_json(image)
    entry = json.loads(sig.read_text())
    payload = json.loads(base64.b64decode(entry["Payload"]))
    payload["optional"] = {"creator": "someone else"}
    entry["Payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    sig.write_text(json.dumps(entry) + "\n")
    with pytest.raises(SignatureError, match="does not verify with the publisher's key"):
        offline(image, trust_for(cosign_keys), sig)


def test_an_offline_signature_naming_another_repository_is_rejected(signed_image, cosign_keys, registry, oci_tools, signature_json):
    image = signed_image("acme/offline-victim", key=None)
    host, path, digest = split(image)
    oci_tools.copy(f"{host}/{path}@{digest}", f"{host}/acme/offline-elsewhere:1.0.0")
    oci_tools.sign(f"{host}/acme/offline-elsewhere@{digest}", cosign_keys["publisher"])
    sig = signature_json(f"{host}/acme/offline-elsewhere@{digest}")
    with pytest.raises(SignatureError, match="names repository .*acme/offline-elsewhere"):
        offline(image, trust_for(cosign_keys), sig)


@pytest.mark.parametrize(
    "content, reason",
    [
        pytest.param("", "holds no signature", id="empty"),
        pytest.param("not json\n", "line 1 is not JSON", id="not-json"),
        pytest.param('{"Base64Signature": "x"}\n', "has no Payload", id="no-payload"),
        pytest.param('{"Base64Signature": "x", "Payload": "%%%"}\n', "Payload is not base64", id="bad-base64"),
    ],
)
def test_an_unusable_signature_json_is_rejected_with_the_reason(signed_image, cosign_keys, tmp_path, content, reason):
    sig = tmp_path / "signature.json"
    sig.write_text(content)
    with pytest.raises(SignatureError) as err:
        offline(f"registry.adapstory.io/acme/quiz@sha256:{'2' * 64}", trust_for(cosign_keys), sig)
    assert reason in str(err.value) and "signature.json is unusable" in str(err.value)


def test_a_signature_json_with_several_signatures_passes_when_one_is_the_publishers(
    signed_image, cosign_keys, oci_tools, signature_json
):
    image = signed_image("acme/offline-multi", key="stranger")
    host, path, digest = split(image)
    oci_tools.sign(f"{host}/{path}@{digest}", cosign_keys["publisher"])
    sig = signature_json(image)
    assert len(sig.read_text().splitlines()) == 2
    assert offline(image, trust_for(cosign_keys), sig).source == "signature.json"


# ------------------------------------------------------------------------------------ payload rules


def _payload(digest: str, reference: str, kind: str = "cosign container image signature") -> dict:
    return {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": None,
    }


HAND_DIGEST = "sha256:" + "3" * 64
HAND_REPO = "registry.adapstory.io/acme/quiz"


@pytest.mark.parametrize(
    "payload, reason",
    [
        pytest.param(json.dumps(_payload(HAND_DIGEST, HAND_REPO)).encode(), None, id="cosign-form"),
        pytest.param(json.dumps(_payload(HAND_DIGEST, HAND_REPO + ":1.3.0")).encode(), None, id="with-tag"),
        pytest.param(json.dumps(_payload(HAND_DIGEST, HAND_REPO, "atomic container signature")).encode(),
                     "critical.type is 'atomic container signature'", id="other-type"),
        pytest.param(json.dumps(_payload(HAND_DIGEST, HAND_REPO + "@" + HAND_DIGEST)).encode(),
                     "names repository", id="reference-with-digest"),
        pytest.param(json.dumps(_payload(HAND_DIGEST, "registry.adapstory.io/acme")).encode(),
                     "names repository", id="parent-repository"),
        pytest.param(json.dumps({"critical": {"type": "cosign container image signature",
                                              "image": {"docker-manifest-digest": HAND_DIGEST}}}).encode(),
                     "no critical.identity.docker-reference", id="no-identity"),
        pytest.param(b"[1, 2]", "no 'critical' section", id="not-an-object"),
        pytest.param(b"\xff\xfe", "not JSON", id="binary"),
    ],
)
def test_only_a_simple_signing_payload_naming_this_image_is_accepted(tmp_path, payload, reason):
    """Signed for real with a P-256 key made here, so only the payload rules can fail."""
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    sig = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    sig_file = tmp_path / "signature.json"
    sig_file.write_text(json.dumps({"Base64Signature": sig, "Payload": base64.b64encode(payload).decode()}) + "\n")
    trust = KeyTrust(_pem(key.public_key()))
    image = f"{HAND_REPO}:1.3.0@{HAND_DIGEST}"
    if reason is None:
        result = offline(image, trust, sig_file)
        assert result.payload_digest == sha256_digest(payload)
    else:
        with pytest.raises(SignatureError) as err:
            offline(image, trust, sig_file)
        assert reason in str(err.value)


# ------------------------------------------------------------------------------------ credentials


def test_credentials_are_found_in_the_environment_then_docker_config_then_a_helper(tmp_path, monkeypatch):
    from renderer.trust.registry import Credentials, credentials_for

    helper = tmp_path / "bin" / "docker-credential-render-test"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\necho "{\\"Username\\": \\"helper-$host\\", \\"Secret\\": \\"pw\\"}"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{__import__('os').environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({
        "auths": {
            "https://reg.example.com/v1/": {"auth": base64.b64encode(b"alice:pw1").decode()},
            "https://index.docker.io/v1/": {"username": "bob", "password": "pw2"},
        },
        "credHelpers": {"helped.example.com": "render-test"},
    }))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert credentials_for("reg.example.com", env) == Credentials("alice", "pw1")
    assert credentials_for("docker.io", env) == Credentials("bob", "pw2")
    assert credentials_for("helped.example.com", env) == Credentials("helper-helped.example.com", "pw")
    assert credentials_for("unknown.example.com", env) is None
    env_creds = {**env, "RENDER_REGISTRY_USERNAME": "ci", "RENDER_REGISTRY_PASSWORD": "tok", "RENDER_REGISTRY_HOST": "reg.example.com"}
    assert credentials_for("reg.example.com", env_creds) == Credentials("ci", "tok")
    assert credentials_for("docker.io", env_creds) == Credentials("bob", "pw2"), "the variables are for reg.example.com only"


# ------------------------------------------------------------------------------------ the example catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "environments"


@pytest.mark.parametrize(
    "plugin_yaml",
    [pytest.param(p, id=f"{p.parent.parent.name}-{p.parent.name}") for p in sorted(EXAMPLE.glob("catalog/*/*/plugin.yaml"))],
)
def test_the_example_catalog_verifies_offline_with_its_publishers_demo_keys(plugin_yaml):
    import yaml

    doc = yaml.safe_load(plugin_yaml.read_text())
    publisher = doc["metadata"]["publisher"]
    spec = yaml.safe_load((EXAMPLE / "publishers" / f"{publisher}.yaml").read_text())["spec"]
    keys = Path(__file__).resolve().parents[1] / "keys"
    assert spec["cosign"]["publicKey"].strip() == (keys / f"{publisher}.pub").read_text().strip()
    trust = trust_from_publisher_spec(spec, f"publishers/{publisher}.yaml")
    result = offline(doc["spec"]["image"], trust, plugin_yaml.parent / "signature.json")
    assert result.source == "signature.json"
    assert any(registry_prefix_matches(doc["spec"]["image"], prefix) for prefix in spec["registries"])
