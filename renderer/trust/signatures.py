"""Image signature verification: nothing is rendered for an image its publisher did not sign.

Where it sits: cli -> pipeline -> load -> plan -> **verify** -> render -> validate -> write.
``plan`` has matched the image against the publisher's registry prefixes
(``registry_prefix_matches``) and built the publisher's ``Trust`` (``trust_from_publisher_spec``);
``verify_image`` then proves the pinned digest carries the publisher's cosign signature and
returns what ``bundle.json`` records (``keyFingerprint``, ``payloadDigest``).

Where the signature comes from, in this order:

1. ``signature.json`` beside plugin.yaml (``cosign download signature IMAGE``: one JSON object a
   line with ``Base64Signature`` and ``Payload``): verified with no network at all;
2. with ``offline``, a missing ``signature.json`` is an error;
3. the cache (below), when given a cache directory;
4. the image's registry (``registry.RegistryClient``): the image manifest at the pinned digest,
   then the manifest tagged ``sha256-<hex>.sig``, then each layer's blob (the payload) and its
   ``dev.cosignproject.cosign/signature`` annotation.

A candidate signature is accepted when (a) it verifies with the publisher's key over the exact
payload bytes (ECDSA P-256, SHA-256, DER, base64), (b) the payload's ``critical.type`` is
``cosign container image signature``, (c) ``critical.image.docker-manifest-digest`` is the pinned
digest, and (d) ``critical.identity.docker-reference`` names the image repository, with or
without a tag (cosign writes none, containers/image writes one; the digest pins the content, so
any tag is accepted). Any one accepted candidate is enough; otherwise every candidate's reason
is reported.

The cache (``RENDER_CACHE_DIR``, default ``$XDG_CACHE_HOME/render``) keeps, per (image
repository, digest, key fingerprint), the evidence that verified: the payload and the signature,
not a "yes". A hit re-runs checks (a)-(d) locally (about 0.1 ms) and so trusts nothing the file
says; an unreadable, corrupt or non-verifying entry is ignored (a miss) and overwritten. Entries
are written atomically (temporary file + rename). The cache never revokes: a signature once seen
stays accepted until ``--no-cache`` (``cache_dir=None``) or a key change (new fingerprint).

Trust is a small protocol so keyless Sigstore identities (``spec.keyless``) can be added later
as another ``Trust`` (it will need the certificate and bundle, which ``Candidate`` already
carries); today a publisher file asking for keyless gets a clear "not supported yet" error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Protocol, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from renderer.core.errors import SignatureError
from renderer.trust.registry import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BACKOFF,
    DEFAULT_TIMEOUT,
    ImageRef,
    RegistryClient,
    RegistryContentError,
    parse_image,
    sha256_digest,
)

SIMPLE_SIGNING_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
SIGNATURE_FILE = "signature.json"
MAX_SIGNATURE_FILE_BYTES = 1024 * 1024
MAX_SIGNATURE_LAYERS = 64

# Render verifies against the key only: no Rekor entry, no SCT. The admission policy must match.
TLOG_SETTINGS = {"rekor": {"ignoreTlog": True}, "ctlog": {"ignoreSCT": True}}

RESIGN_HINT = (
    "sign the pinned digest with the publisher's key (cosign sign --key <publisher key> IMAGE@DIGEST) "
    "and republish, or put the output of `cosign download signature IMAGE@DIGEST` in signature.json "
    "beside plugin.yaml"
)


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class VerifiedSignature:
    """What bundle.json records about the signature that let an image in."""

    key_fingerprint: str  # sha256:<hex of the DER SubjectPublicKeyInfo>
    payload_digest: str  # sha256:<hex of the signed payload bytes>
    source: str  # "signature.json" | "registry" | "cache"

    def bundle_fields(self) -> dict[str, str]:
        """The ``signature`` object of bundle.json (the source is not recorded: it is not an input)."""
        return {"keyFingerprint": self.key_fingerprint, "payloadDigest": self.payload_digest}


@dataclass(frozen=True)
class Candidate:
    """One signature found for an image: the payload bytes and what may prove them."""

    payload: bytes
    signature_b64: str
    origin: str  # where it was found, for messages: "signature.json line 1", "registry layer sha256:..."
    certificate: Optional[str] = None  # keyless only (later)
    chain: Optional[str] = None
    bundle: Optional[str] = None


class Rejected(Exception):
    """A candidate failed a check; the message is the reason."""


# ------------------------------------------------------------------------------------ trust


class Trust(Protocol):
    """How a publisher's signatures are checked. ``fingerprint`` keys the cache and bundle.json."""

    fingerprint: str
    description: str

    def verify(self, candidate: Candidate) -> None:
        """Return if the candidate's signature is the publisher's; raise ``Rejected`` otherwise."""

    def kyverno_attestor(self) -> dict:
        """The Kyverno ``verifyImages[].attestors[]`` item that checks the same thing at admission."""


class KeyTrust:
    """A cosign public key (ECDSA P-256), as ``cosign generate-key-pair`` writes to cosign.pub."""

    def __init__(self, public_key_pem: str):
        try:
            key = serialization.load_pem_public_key(public_key_pem.strip().encode() + b"\n")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a PEM public key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            kind = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
            raise ValueError(f"the key is {kind}, not ECDSA P-256 (what cosign generate-key-pair makes)")
        self._key = key
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()
        self.public_key_pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self.description = f"cosign key {self.fingerprint[:19]}…"

    def verify(self, candidate: Candidate) -> None:
        try:
            der = base64.b64decode(candidate.signature_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("the signature is not base64") from None
        if not der:
            raise Rejected("the signature is empty")
        try:
            self._key.verify(der, candidate.payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Rejected(f"the signature does not verify with the publisher's key ({self.fingerprint})") from None

    def kyverno_attestor(self) -> dict:
        return {
            "entries": [
                {
                    "keys": {
                        "publicKeys": self.public_key_pem,
                        "signatureAlgorithm": "sha256",
                        **json.loads(json.dumps(TLOG_SETTINGS)),
                    }
                }
            ]
        }


class KeylessTrust:
    """A Sigstore keyless identity (OIDC issuer + certificate subject). Shape only, for now.

    Verifying it will use the ``sigstore`` package with ``Candidate.certificate``/``bundle``.
    """

    def __init__(self, issuer: str, subject: str):
        self.issuer = issuer
        self.subject = subject
        self.fingerprint = "keyless:sha256:" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
        self.description = f"keyless identity {subject} from {issuer}"

    def verify(self, candidate: Candidate) -> None:
        raise SignatureError(_keyless_message(""))

    def kyverno_attestor(self) -> dict:
        raise SignatureError(_keyless_message(""))


def _keyless_message(where: str) -> str:
    prefix = f"{where}: " if where else ""
    return (
        f"{prefix}spec.keyless: keyless (Sigstore identity) signatures are not supported yet; "
        "sign the images with a key (cosign generate-key-pair) and give its public half as spec.cosign.publicKey"
    )


def trust_from_publisher_spec(spec: Mapping, where: str) -> Trust:
    """The publisher's ``Trust`` from the ``spec`` of publishers/<name>.yaml.

    ``where`` names the file (e.g. ``publishers/acme.yaml``). Raises ``SignatureError`` for a
    keyless identity (not supported yet), both or neither of key and keyless, or a key that is
    not a PEM ECDSA P-256 public key.
    """
    cosign = spec.get("cosign") if isinstance(spec, Mapping) else None
    keyless = spec.get("keyless") if isinstance(spec, Mapping) else None
    if cosign and keyless:
        raise _sig_error(f"{where}: spec: give one of cosign.publicKey and keyless, not both", "")
    if keyless:
        err = SignatureError(_keyless_message(where))
        err.hint = "keyless verification is planned; until then publishers sign with a key"
        raise err
    pem = cosign.get("publicKey") if isinstance(cosign, Mapping) else None
    if not isinstance(pem, str) or not pem.strip():
        raise _sig_error(
            f"{where}: spec.cosign.publicKey: missing",
            "put the publisher's cosign.pub (PEM) in spec.cosign.publicKey",
        )
    try:
        return KeyTrust(pem)
    except ValueError as exc:
        raise _sig_error(
            f"{where}: spec.cosign.publicKey: {exc}",
            "paste the publisher's cosign.pub, as written by `cosign generate-key-pair`",
        ) from None


def registry_prefix_matches(image_repo: str, prefix: str) -> bool:
    """Whether ``image_repo`` lies under ``prefix``, on whole path segments.

    ``registry.example.com/acme`` covers ``registry.example.com/acme/quiz`` (and itself), not
    ``registry.example.com/acme-evil/quiz``. A tag or digest on the image is ignored; hosts
    compare case-insensitively.
    """
    try:
        repo = parse_image(image_repo).repository
    except ValueError:
        repo = image_repo.split("@", 1)[0]
    want = [seg for seg in prefix.strip().rstrip("/").split("/")]
    have = repo.split("/")
    if not want or not want[0] or "" in want or len(want) > len(have):
        return False
    if want[0].lower() != have[0].lower():
        return False
    return have[1 : len(want)] == want[1:]


# ------------------------------------------------------------------------------------ checks


def _check_payload(payload: bytes, ref: ImageRef) -> None:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("the payload is not JSON (not a simple-signing payload)") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict):
        raise Rejected("the payload has no 'critical' section (not a simple-signing payload)")
    kind = critical.get("type")
    if kind != SIMPLE_SIGNING_TYPE:
        raise Rejected(f"the payload's critical.type is {kind!r}, not {SIMPLE_SIGNING_TYPE!r}")
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if digest != ref.digest:
        raise Rejected(f"the payload signs digest {digest}, not the pinned {ref.digest}")
    identity = critical.get("identity")
    named = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(named, str):
        raise Rejected("the payload has no critical.identity.docker-reference")
    try:
        named_ref = parse_image(named)
    except ValueError:
        raise Rejected(f"the payload names {named!r}, which is not an image reference") from None
    if named_ref.digest or named_ref.repository != ref.repository:
        raise Rejected(f"the payload names repository {named!r}, not {ref.repository}")


def _accept(candidate: Candidate, trust: Trust, ref: ImageRef) -> str:
    """Payload digest of an accepted candidate; raises ``Rejected``."""
    trust.verify(candidate)
    _check_payload(candidate.payload, ref)
    return sha256_digest(candidate.payload)


def _first_accepted(
    candidates: Iterable[Candidate], trust: Trust, ref: ImageRef
) -> tuple[Optional[Candidate], str, list[str]]:
    reasons = []
    for cand in candidates:
        try:
            return cand, _accept(cand, trust, ref), reasons
        except Rejected as why:
            reasons.append(f"{cand.origin}: {why}")
    return None, "", reasons


# ------------------------------------------------------------------------------------ sources


def read_signature_file(path: Path) -> list[Candidate]:
    """Candidates from ``cosign download signature`` output (JSON lines; a JSON array or a single
    pretty-printed object is accepted too). Raises ``Rejected`` when the file holds none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Rejected(f"cannot read it ({exc.strerror})") from None
    if len(data) > MAX_SIGNATURE_FILE_BYTES:
        raise Rejected(f"it is larger than {MAX_SIGNATURE_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("it is not UTF-8 text") from None
    entries: list[tuple[str, object]] = []
    bad_line = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append((f"line {n}", json.loads(line)))
        except ValueError:
            bad_line = bad_line or n
    if bad_line:  # not JSON lines: perhaps one pretty-printed object or an array
        try:
            whole = json.loads(text)
        except ValueError:
            raise Rejected(
                f"line {bad_line} is not JSON (expected the output of `cosign download signature`)"
            ) from None
        items = whole if isinstance(whole, list) else [whole]
        entries = [(f"entry {n}", item) for n, item in enumerate(items, 1)]
    candidates = []
    for origin, entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Payload"), str):
            raise Rejected(f"{origin} has no Payload (expected the output of `cosign download signature`)")
        try:
            payload = base64.b64decode(entry["Payload"], validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(f"{origin}: Payload is not base64") from None
        candidates.append(
            Candidate(
                payload=payload,
                signature_b64=str(entry.get("Base64Signature") or ""),
                origin=f"{SIGNATURE_FILE} {origin}",
                certificate=entry.get("Cert") or None,
                chain=entry.get("Chain") or None,
                bundle=json.dumps(entry["Bundle"], sort_keys=True) if entry.get("Bundle") else None,
            )
        )
    if not candidates:
        raise Rejected("it holds no signature")
    return candidates


def signature_tag(digest: str) -> str:
    """The tag cosign stores an image's signatures under: ``sha256-<hex>.sig``."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}.sig"


def fetch_candidates(client: RegistryClient, ref: ImageRef) -> list[Candidate]:
    """Signature candidates from the registry. Raises ``Rejected`` (image or signature missing,
    bad content) or ``OutsideSystemError`` (registry unreachable)."""
    assert ref.digest
    try:
        if client.get_manifest(ref.path, ref.digest) is None:
            raise Rejected(f"the registry has no manifest {ref.digest} in {ref.repository}: the pinned digest is wrong or was deleted")
        found = client.get_manifest(ref.path, signature_tag(ref.digest))
        if found is None:
            raise Rejected(f"the image is not signed: the registry has no {ref.repository}:{signature_tag(ref.digest)}")
        manifest = json.loads(found[0])
        layers = manifest.get("layers")
        if not isinstance(layers, list) or not layers:
            raise Rejected(f"{signature_tag(ref.digest)} has no layers, so no signature")
        candidates = []
        for layer in layers[:MAX_SIGNATURE_LAYERS]:
            if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
                raise Rejected(f"{signature_tag(ref.digest)} has a malformed layer")
            annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
            origin = f"registry layer {layer['digest']}"
            sig = annotations.get(SIGNATURE_ANNOTATION)
            if not isinstance(sig, str):
                candidates.append(Candidate(b"", "", origin))  # rejected below with a reason
                continue
            payload = client.get_blob(ref.path, layer["digest"])
            candidates.append(
                Candidate(
                    payload=payload,
                    signature_b64=sig,
                    origin=origin,
                    certificate=annotations.get(CERTIFICATE_ANNOTATION),
                    chain=annotations.get(CHAIN_ANNOTATION),
                    bundle=annotations.get(BUNDLE_ANNOTATION),
                )
            )
        return candidates
    except RegistryContentError as exc:
        raise Rejected(str(exc)) from None


# ------------------------------------------------------------------------------------ cache


def default_cache_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """``RENDER_CACHE_DIR``, else ``$XDG_CACHE_HOME/render``, else ``~/.cache/render``."""
    env = os.environ if environ is None else environ
    if env.get("RENDER_CACHE_DIR"):
        return Path(env["RENDER_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "render"
    return Path(env.get("HOME") or Path.home()) / ".cache" / "render"


def _cache_path(cache_dir: Path, ref: ImageRef, fingerprint: str) -> Path:
    key = hashlib.sha256(f"{ref.repository}@{ref.digest}\n{fingerprint}".encode()).hexdigest()
    return cache_dir / "signatures" / "v1" / key[:2] / f"{key}.json"


def _cache_read(cache_dir: Path, ref: ImageRef, trust: Trust) -> Optional[str]:
    """Payload digest from a cache entry that still verifies; None on a miss or a bad entry."""
    path = _cache_path(cache_dir, ref, trust.fingerprint)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if (
            entry.get("repository") != ref.repository
            or entry.get("imageDigest") != ref.digest
            or entry.get("keyFingerprint") != trust.fingerprint
        ):
            return None
        cand = Candidate(
            payload=base64.b64decode(entry["payload"], validate=True),
            signature_b64=entry["signature"],
            origin="cache",
            certificate=entry.get("certificate"),
            chain=entry.get("chain"),
            bundle=entry.get("bundle"),
        )
        return _accept(cand, trust, ref)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error, Rejected, SignatureError):
        return None


def _cache_write(cache_dir: Path, ref: ImageRef, trust: Trust, cand: Candidate, payload_digest: str) -> None:
    path = _cache_path(cache_dir, ref, trust.fingerprint)
    entry = {
        "repository": ref.repository,
        "imageDigest": ref.digest,
        "keyFingerprint": trust.fingerprint,
        "payloadDigest": payload_digest,
        "payload": base64.b64encode(cand.payload).decode(),
        "signature": cand.signature_b64,
    }
    for name in ("certificate", "chain", "bundle"):
        if getattr(cand, name):
            entry[name] = getattr(cand, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass  # a cache that cannot be written only costs a re-fetch next time


# ------------------------------------------------------------------------------------ entry point


def _sig_error(message: str, hint: str, *, image: str = "", reasons: Sequence[str] = ()) -> SignatureError:
    err = SignatureError(message)
    err.hint = hint
    err.image = image  # type: ignore[attr-defined]
    err.reasons = tuple(reasons)  # type: ignore[attr-defined]
    return err


def verify_image(
    image: str,
    trust: Trust,
    signature_file: Optional[Path],
    *,
    offline: bool,
    insecure_registries: frozenset[str] = frozenset(),
    cache_dir: Optional[Path] = None,
    where: str = "",
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    environ: Optional[Mapping[str, str]] = None,
) -> VerifiedSignature:
    """Prove ``image`` (pinned by digest) carries a signature ``trust`` accepts.

    ``signature_file``: the catalog version's ``signature.json`` (None or a missing path: none).
    ``insecure_registries``: ``host[:port]`` reached over plain HTTP. ``cache_dir``: None disables
    the cache (``--no-cache``). ``where`` prefixes messages (e.g. ``catalog/quiz/1.3.0/plugin.yaml:
    spec.image``). Raises ``SignatureError`` (exit 1) when the image is not accepted and
    ``OutsideSystemError`` (exit 3) when the registry cannot be reached.
    """
    prefix = f"{where}: " if where else ""
    try:
        ref = parse_image(image)
    except ValueError as exc:
        raise _sig_error(f"{prefix}{exc}", "write the image as host/path[:tag]@sha256:<64 hex>", image=image) from None
    if not ref.digest:
        raise _sig_error(
            f"{prefix}{image}: the image is not pinned by digest, so no signature can be checked",
            "pin the image: host/path[:tag]@sha256:<64 hex>",
            image=image,
        )

    if signature_file is not None and signature_file.exists():
        try:
            candidates = read_signature_file(signature_file)
        except Rejected as why:
            raise _sig_error(
                f"{prefix}{image}: {signature_file.name} is unusable: {why}",
                RESIGN_HINT,
                image=image,
                reasons=[str(why)],
            ) from None
        cand, payload_digest, reasons = _first_accepted(candidates, trust, ref)
        if cand is None:
            raise _rejected(prefix, image, reasons, trust)
        return VerifiedSignature(trust.fingerprint, payload_digest, SIGNATURE_FILE)

    if offline:
        raise _sig_error(
            f"{prefix}{image}: no {SIGNATURE_FILE} beside plugin.yaml, and --offline forbids asking the registry",
            f"run `cosign download signature {image} > {SIGNATURE_FILE}` beside plugin.yaml, or drop --offline",
            image=image,
            reasons=[f"no {SIGNATURE_FILE}"],
        )

    if cache_dir is not None:
        cached = _cache_read(cache_dir, ref, trust)
        if cached:
            return VerifiedSignature(trust.fingerprint, cached, "cache")

    insecure = {h.strip().lower() for h in insecure_registries if h.strip()}
    client = RegistryClient(
        ref.host,
        insecure=ref.host in insecure,
        timeout=timeout,
        attempts=attempts,
        backoff=backoff,
        environ=environ,
    )
    try:
        candidates = fetch_candidates(client, ref)
    except Rejected as why:
        raise _rejected(prefix, image, [str(why)], trust) from None
    cand, payload_digest, reasons = _first_accepted(candidates, trust, ref)
    if cand is None:
        raise _rejected(prefix, image, reasons, trust)
    if cache_dir is not None:
        _cache_write(cache_dir, ref, trust, cand, payload_digest)
    return VerifiedSignature(trust.fingerprint, payload_digest, "registry")


def _rejected(prefix: str, image: str, reasons: Sequence[str], trust: Trust) -> SignatureError:
    if len(reasons) == 1:
        text = f"{prefix}{image}: signature rejected: {reasons[0]}"
    else:
        text = f"{prefix}{image}: signature rejected: none of {len(reasons)} signatures is acceptable: " + "; ".join(
            reasons
        )
    return _sig_error(text, RESIGN_HINT, image=image, reasons=reasons)
