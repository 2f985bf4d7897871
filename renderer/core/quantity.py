"""Kubernetes resource quantities (``100m``, ``1.5``, ``512Mi``, ``1G``): parse, add, multiply, format.

Used by ``load`` (field validation), ``plan`` (tenant ceilings) and the templates (quota sums).
Exact arithmetic with ``Fraction``: a quota must never be off by a rounding error. Bounded
before any arithmetic: at most ``MAX_TEXT`` characters, ``MAX_DIGITS`` digits and an exponent of
at most ``MAX_EXPONENT`` either way, and a value below ``MAX_VALUE`` (Kubernetes' own int64
limit), so hostile text (``1e999999999``, 5,000 digits) is a clear error, never a hang.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_RE = re.compile(r"^([+]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?\Z")
MAX_TEXT = 64  # characters of a quantity's text
MAX_DIGITS = 30  # digits of its number
MAX_EXPONENT = 30  # |e| of a decimal exponent
MAX_VALUE = 2**63 - 1  # cores or bytes: what Kubernetes' int64 quantities can hold
_SUFFIX = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


@lru_cache(maxsize=4096)
def parse(value: object) -> Fraction:
    """A quantity as an exact number (cores, bytes). Raises ValueError with a readable message."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a quantity such as '500m' or '512Mi', got {type(value).__name__}")
    if isinstance(value, int) and (value > MAX_VALUE or value < 0):
        raise ValueError(f"the quantity is out of range (at most {MAX_VALUE})")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise ValueError(f"a quantity of {len(text)} characters is too long (at most {MAX_TEXT})")
    m = _RE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. '500m', '2', '512Mi')")
    number, exponent, suffix = m.groups()
    if sum(c.isdigit() for c in number) > MAX_DIGITS:
        raise ValueError(f"{text!r} has more than {MAX_DIGITS} digits")
    if exponent and abs(int(exponent[1:])) > MAX_EXPONENT:
        raise ValueError(f"{text!r}: the exponent is out of range (at most e{MAX_EXPONENT} either way)")
    result = Fraction(number) * _SUFFIX[suffix or ""]
    if exponent:
        result *= Fraction(10) ** int(exponent[1:])
    if result > MAX_VALUE:
        raise ValueError(f"{text!r} is out of range (at most {MAX_VALUE}, Kubernetes' limit)")
    return result


def cpu(amount: Fraction) -> str:
    """Canonical CPU text: whole cores as ``2``, else millicores ``1500m`` (rounded up)."""
    if amount.denominator == 1:
        return str(amount.numerator)
    milli = -(-amount * 1000 // 1)
    return f"{milli}m"


def size(amount: Fraction) -> str:
    """Canonical byte size: the largest binary suffix that divides it exactly, else bytes."""
    whole = -(-amount // 1)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _SUFFIX[suffix]
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)
