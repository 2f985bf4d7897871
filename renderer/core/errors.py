"""Errors the renderer reports to its user, and the exit codes they map to.

Every stage raises one of these; ``cli`` turns them into a message and an exit code and
never shows a traceback. A ``Problem`` names the file, the line (when known) and the field,
compiler-style, so a run can report every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

EXIT_OK = 0
EXIT_REJECTED = 1  # input, policy, schema or signature rejected
EXIT_USAGE = 2
EXIT_OUTSIDE = 3  # an outside system failed (git remote, registry)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input: ``path:line: field: message``."""

    path: str
    line: int  # 1-based; 0 when unknown
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RenderError(Exception):
    """Base of all errors the user sees. ``exit_code`` says how the CLI ends."""

    exit_code = EXIT_REJECTED
    hint = ""

    def lines(self) -> list[str]:
        text = [str(self)]
        if self.hint:
            text.append(f"hint: {self.hint}")
        return text


class InputError(RenderError):
    """The environments repo holds one or more problems; nothing was rendered or written."""

    hint = "fix every problem listed above; nothing was written"

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(sorted(set(problems)))
        super().__init__(f"{len(self.problems)} problem(s) in the input")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems] + [f"error: {self}", f"hint: {self.hint}"]


class ValidationFailed(RenderError):
    """Rendered output failed a gate (schema, policy, isolation). Lines are
    ``bundle/file: kind/name: rule: message``."""

    hint = "the rendered bundles break the rules listed above; nothing was written"

    def __init__(self, violations: Iterable[str]):
        self.violations = tuple(violations)
        super().__init__(f"{len(self.violations)} violation(s)")

    def lines(self) -> list[str]:
        return list(self.violations) + [f"error: {self}", f"hint: {self.hint}"]


class SignatureError(RenderError):
    """An image's signature is missing, invalid or not the publisher's."""


class OutsideSystemError(RenderError):
    """A registry or git remote could not be reached or failed; retrying later may help."""

    exit_code = EXIT_OUTSIDE


class RefusingToProceed(RenderError):
    """The target is in a state the renderer will not touch (dirty tree, unmanaged files, mass delete)."""


class UsageError(RenderError):
    exit_code = EXIT_USAGE


class SchemasMissing(ValidationFailed):
    """Kinds the renderer emits have no schema in the given locations: checked before rendering."""

    hint = "nothing was rendered or written"
