"""A tenant's ceilings: what each install needs, what the tenant may claim, and where to point.

Where it sits: ``pipeline.plan`` (stage 2) adds up what each install of a tenant needs against the
tenant's ceilings, and each tenant's ceilings against the platform's maxima, with these.
"""

from __future__ import annotations

from fractions import Fraction

from renderer.core import quantity
from renderer.core.errors import Problem
from renderer.pipeline.load import Source
from renderer.pipeline.models import Tenant


NEED_KEYS = ("cpu", "memory", "storage", "llmTokensPerDay", "requestsPerSecond")  # what needs() counts


def needs(spec) -> dict[str, Fraction]:
    r = spec.resources
    return {
        "cpu": quantity.parse(r.limits.cpu) * spec.replicas.max,
        "memory": quantity.parse(r.limits.memory) * spec.replicas.max,
        "storage": quantity.parse(r.storage),
        "llmTokensPerDay": Fraction(spec.budgets.llmTokensPerDay),
        "requestsPerSecond": Fraction(spec.budgets.requestsPerSecond),
    }


def ceiling(tenant: Tenant, key: str) -> Fraction:
    value = getattr(tenant.spec.ceilings, key)
    return quantity.parse(value) if key in ("cpu", "memory", "storage") else Fraction(value)


def show(key: str, amount: Fraction) -> str:
    if key == "cpu":
        return quantity.cpu(amount)
    if key in ("memory", "storage"):
        return quantity.size(amount)
    return str(int(amount)) if amount.denominator == 1 else str(float(amount))


def override_line(src: Source, key: str) -> tuple[int, str]:
    data = src.doc.data.get("spec", {}).get("overrides", {}) or {}
    if key in ("llmTokensPerDay", "requestsPerSecond") and key in (data.get("budgets") or {}):
        return src.line("spec", "overrides", "budgets", key), f"spec.overrides.budgets.{key}"
    if key in ("cpu", "memory") and "max" in (data.get("replicas") or {}):
        return src.line("spec", "overrides", "replicas", "max"), "spec.overrides.replicas.max"
    return src.line("spec", "version"), "spec.version"


def check_maxima(tenant_src: Source, platform_src: Source, problems: list[Problem]) -> None:
    """A tenant's ceilings stay within what the platform lets any tenant claim (spec.maxima)."""
    maxima = platform_src.model.spec.maxima
    for key in NEED_KEYS:
        most = getattr(maxima, key)
        most = quantity.parse(most) if key in ("cpu", "memory", "storage") else Fraction(most)
        if ceiling(tenant_src.model, key) > most:
            problems.append(Problem(tenant_src.path, tenant_src.line("spec", "ceilings", key), f"spec.ceilings.{key}",
                                    f"{show(key, ceiling(tenant_src.model, key))} is above the platform's maximum "
                                    f"{show(key, most)} ({platform_src.path} spec.maxima.{key})"))
