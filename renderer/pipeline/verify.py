"""Stage 3: prove every image about to be rendered carries its publisher's cosign signature.

load -> plan -> **verify** -> render -> validate -> write.  Each catalog version in use is
verified once (``signatures.verify_image``: signature.json offline, else the registry), and
its result is attached to the plans; every rejection of a run is reported at once. An
unreachable registry stops the run with exit 3 (``OutsideSystemError``), a bad signature with 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from renderer.trust import registry, signatures
from renderer.core.errors import InputError, Problem, SignatureError
from renderer.pipeline.load import Inputs
from renderer.pipeline.plan import BundlePlan


def verify(inputs: Inputs, plans: tuple[BundlePlan, ...], *, offline: bool,
           insecure_registries: frozenset[str], cache_dir: Optional[Path]) -> tuple[BundlePlan, ...]:
    """The plans, each with its ``VerifiedSignature``; raises ``InputError`` listing every rejection."""
    with registry.run_deadline():  # one overall deadline for every registry request of the run
        return _verify(inputs, plans, offline=offline, insecure_registries=insecure_registries, cache_dir=cache_dir)


def _verify(inputs: Inputs, plans: tuple[BundlePlan, ...], *, offline: bool,
            insecure_registries: frozenset[str], cache_dir: Optional[Path]) -> tuple[BundlePlan, ...]:
    results: dict = {}
    problems: list[Problem] = []
    for p in plans:
        key = (p.plugin, p.version)
        if key in results:
            continue
        cv = inputs.catalog[key]
        publisher = inputs.publishers[p.publisher]
        where = f"{cv.plugin.path}: spec.image"
        try:
            trust = signatures.trust_from_publisher_spec(
                publisher.model.spec.model_dump(exclude_none=True), publisher.path)
            results[key] = signatures.verify_image(
                cv.plugin.model.spec.image, trust, cv.signature_file, offline=offline,
                insecure_registries=insecure_registries, cache_dir=cache_dir, where=where)
        except SignatureError as exc:
            results[key] = None
            text = str(exc)
            if text.startswith(where + ": "):
                text = text[len(where) + 2:]
            problems.append(Problem(cv.plugin.path, cv.plugin.line("spec", "image"), "spec.image",
                                    text + (f" ({exc.hint})" if exc.hint else "")))
    if problems:
        raise InputError(problems)
    return tuple(p.with_signature(results[(p.plugin, p.version)]) for p in plans)
