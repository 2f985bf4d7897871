"""What a cosign signature is, and whose key it must verify with: the simple-signing payload's
constants, the verified result, the publisher's ``Trust`` (a key now, keyless later) and the
registry prefixes a publisher owns.

Where it sits: ``trust``, below ``trust.signatures`` (the entry point) and ``trust.sources``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Mapping, Optional, Protocol, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from renderer.core.errors import SignatureError
from renderer.trust.registry import (
    parse_image,
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


def _sig_error(message: str, hint: str, *, image: str = "", reasons: Sequence[str] = ()) -> SignatureError:
    err = SignatureError(message)
    err.hint = hint
    err.image = image  # type: ignore[attr-defined]
    err.reasons = tuple(reasons)  # type: ignore[attr-defined]
    return err
