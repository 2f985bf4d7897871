"""Findings and errors: what the renderer tells its user, and the exit code that follows.

Where it sits: ``core`` (imported by every layer, imports nothing of the project). Every stage
reports what it found as ``Finding`` values (data: where, rule, message, severity, hint); a stage
that cannot go on raises one of the ``RenderError`` classes below, carrying its findings. ``cli``
shows them as text (``path:line: field: problem`` or ``bundle/file: Kind/name: rule: message``)
or as one JSON document, and exits with the error's code. The classes are grouped by what the
user should do next, not by where the error came from:

==========================  ====  ===========================================================
class                       exit  what to do next
==========================  ====  ===========================================================
``Rejected`` and kin           1  fix the input (or the repo state) named in the findings
``UsageError``                 2  fix the command line
``OutsideSystemError``         3  an outside system (registry, git remote, API server) failed:
                                  retry later
``RendererBroken`` and kin    70  the renderer itself is broken (a template or policy bug, a
                                  missing tool): a bug or an installation problem to report
==========================  ====  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable, Union

EXIT_OK = 0
EXIT_REJECTED = 1  # input, policy, schema or signature rejected; or refusing to proceed
EXIT_USAGE = 2
EXIT_OUTSIDE = 3  # an outside system failed (git remote, registry, API server)
EXIT_BROKEN = 70  # EX_SOFTWARE: the renderer's own templates, policies or tools are broken

EXIT_MEANING = {
    EXIT_OK: "ok",
    EXIT_REJECTED: "rejected",
    EXIT_USAGE: "usage",
    EXIT_OUTSIDE: "outside-system-failed",
    EXIT_BROKEN: "renderer-broken",
}

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One thing found: where (a file and line, or a bundle file and the object in it), the rule
    (a field path for input problems, a rule id for gates), the message, its severity, a hint."""

    file: str
    line: int = 0  # 1-based; 0 when unknown
    object: str = ""  # Kind/name, for rendered objects
    rule: str = ""
    message: str = ""
    severity: str = ERROR
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where] if where else []
        if self.object:
            parts.append(self.object)
        if self.rule:
            parts.append(self.rule)
        parts.append(self.message)
        return ": ".join(parts)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", 0) or k in ("file", "message")}

    # the input side's historical name for ``rule``
    @property
    def field(self) -> str:
        return self.rule

    @property
    def path(self) -> str:
        return self.file


def Problem(path: str, line: int, field: str, message: str, *, hint: str = "") -> Finding:  # noqa: N802
    """An input problem: ``path:line: field: message`` (a ``Finding`` with the field as rule)."""
    return Finding(path, line, "", field, message, ERROR, hint)


# ``bundle/file: Kind/name: rule: message`` (the gates' text form) back into a Finding
_VIOLATION = re.compile(r"^(?P<file>[^:\s][^:]*?): (?P<object>[A-Za-z][A-Za-z0-9]*/[^:\s]*|-): "
                        r"(?P<rule>[a-z][a-z0-9-]*): (?P<message>.*)$", re.S)
_LOCATED = re.compile(r"^(?P<file>[^:\s][^:]*?)(?::(?P<line>[0-9]+))?: (?P<rule>[a-z][a-z0-9-]*): (?P<message>.*)$",
                      re.S)


def finding_of(item: Union[str, Finding], severity: str = ERROR) -> Finding:
    """A gate's finding, given as a Finding or in its text form."""
    if isinstance(item, Finding):
        return item
    m = _VIOLATION.match(item)
    if m:
        obj = "" if m["object"] == "-" else m["object"]
        return Finding(m["file"], 0, obj, m["rule"], m["message"], severity)
    m = _LOCATED.match(item)
    if m:
        return Finding(m["file"], int(m["line"] or 0), "", m["rule"], m["message"], severity)
    return Finding("", 0, "", "", item, severity)


class RenderError(Exception):
    """Base of every error the user sees. ``exit_code`` says how the CLI ends, ``findings`` what
    was found, ``hint`` what to do next."""

    exit_code = EXIT_REJECTED
    hint = ""
    findings: tuple[Finding, ...] = ()

    def __init__(self, message: str = "", *, hint: str = "", findings: Iterable[Finding] = ()):
        super().__init__(message)
        if hint:
            self.hint = hint
        if findings:
            self.findings = tuple(findings)

    def lines(self) -> list[str]:
        text = [str(f) for f in self.findings]
        text.append(f"error: {self}" if self.findings else str(self))
        if self.hint:
            text.append(f"hint: {self.hint}")
        return text

    def to_json(self) -> dict:
        errors = [f for f in self.findings if f.severity == ERROR]
        return {
            "ok": False, "exit": self.exit_code, "meaning": EXIT_MEANING.get(self.exit_code, "error"),
            "error": str(self), "kind": type(self).__name__, "hint": self.hint,
            "findings": [f.to_json() for f in self.findings],
            "counts": {"errors": len(errors), "warnings": len(self.findings) - len(errors)},
        }


# ------------------------------------------------------------------------------------ exit 1


class Rejected(RenderError):
    """The input, or something render was asked to check, was rejected: fix what the findings name."""


class InputError(Rejected):
    """The environments repo holds one or more problems; nothing was rendered or written."""

    hint = "fix every problem listed above; nothing was written"

    def __init__(self, problems: Iterable[Finding]):
        found = tuple(sorted(set(problems)))
        super().__init__(f"{len(found)} problem(s) in the input", findings=found)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return self.findings


class ValidationFailed(Rejected):
    """Rendered output failed a gate (schema, policy, isolation): findings read
    ``bundle/file: Kind/name: rule: message``."""

    hint = "the rendered bundles break the rules listed above; nothing was written"

    def __init__(self, violations: Iterable[Union[str, Finding]]):
        found = tuple(finding_of(v) for v in violations)
        super().__init__(f"{len(found)} violation(s)", findings=found)

    @property
    def violations(self) -> tuple[str, ...]:
        return tuple(str(f) for f in self.findings)


class SchemasMissing(ValidationFailed):
    """Kinds the renderer emits have no schema in the given locations: checked before rendering."""

    hint = "nothing was rendered or written"


class SignatureError(Rejected):
    """An image's signature is missing, invalid or not the publisher's."""


class RefusingToProceed(Rejected):
    """The target is in a state render will not touch (dirty tree, unmanaged files, mass delete)."""


# ------------------------------------------------------------------------------------ exit 2


class UsageError(RenderError):
    """The command line is wrong."""

    exit_code = EXIT_USAGE


# ------------------------------------------------------------------------------------ exit 3


class OutsideSystemError(RenderError):
    """A registry, git remote or API server could not be reached or failed; retrying later may help."""

    exit_code = EXIT_OUTSIDE
    hint = "an outside system failed; nothing was written: retry later"


class GitFailed(OutsideSystemError):
    """A git command failed (``gitops.git``), or git would not store what a commit asks for."""


# ------------------------------------------------------------------------------------ exit 70



class RendererBroken(RenderError):
    """The renderer's own templates, policies or tools are broken: a bug or an installation problem."""

    exit_code = EXIT_BROKEN
    hint = "this is a bug or an installation problem of render, not a problem of your input; nothing was written"
