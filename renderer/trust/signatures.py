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

from pathlib import Path
from typing import Mapping, Optional, Sequence


from renderer.core.errors import SignatureError
from renderer.trust.registry import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BACKOFF,
    DEFAULT_TIMEOUT,
    RegistryClient,
    parse_image,
)
from renderer.trust.cosign import (  # noqa: F401  (the public names of the signature gate, re-exported)
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    RESIGN_HINT,
    SIGNATURE_ANNOTATION,
    SIGNATURE_FILE,
    SIMPLE_SIGNING_TYPE,
    TLOG_SETTINGS,
    Candidate,
    KeylessTrust,
    KeyTrust,
    Rejected,
    Trust,
    VerifiedSignature,
    _sig_error,
    registry_prefix_matches,
    trust_from_publisher_spec,
)
from renderer.trust.sigcache import _cache_path, _cache_read, _cache_write, default_cache_dir  # noqa: F401
from renderer.trust.sources import _first_accepted, fetch_candidates, read_signature_file, signature_tag  # noqa: F401

# ------------------------------------------------------------------------------------ entry point


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


__all__ = [
    "BUNDLE_ANNOTATION", "CERTIFICATE_ANNOTATION", "CHAIN_ANNOTATION", "RESIGN_HINT", "SIGNATURE_ANNOTATION",
    "SIGNATURE_FILE", "SIMPLE_SIGNING_TYPE", "TLOG_SETTINGS", "Candidate", "KeyTrust", "KeylessTrust", "Rejected",
    "Trust", "VerifiedSignature", "default_cache_dir", "fetch_candidates", "read_signature_file",
    "registry_prefix_matches", "signature_tag", "trust_from_publisher_spec", "verify_image", "_cache_path",
]
