"""Where signatures come from, and the checks every candidate passes: ``signature.json`` beside
plugin.yaml (what `cosign download signature` prints) or the ``sha256-<hex>.sig`` manifest over
the OCI distribution API; the payload must name this digest and this repository.

Where it sits: ``trust``, below ``trust.signatures``; above ``trust.registry`` and ``trust.cosign``.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Iterable, Optional


from renderer.trust.registry import (
    ImageRef,
    RegistryClient,
    RegistryContentError,
    parse_image,
    sha256_digest,
)
from renderer.trust.cosign import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    MAX_SIGNATURE_FILE_BYTES,
    MAX_SIGNATURE_LAYERS,
    SIGNATURE_ANNOTATION,
    SIGNATURE_FILE,
    SIMPLE_SIGNING_TYPE,
    Candidate,
    Rejected,
    Trust,
)


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
