"""Use case `render validate DIR`: the schema, policy and isolation gates on any folder of bundles.

Where it sits: ``flows`` (called by ``cli``; calls ``pipeline``).
"""

from __future__ import annotations

from pathlib import Path

from renderer.pipeline.check_folder import DEFAULT_KUBERNETES_VERSION, validate_folder


def validate(folder: Path, *, kubernetes_version: str | None, schema_locations: tuple[str, ...],
             ignore_missing_schemas: bool) -> int:
    """The number of bundles checked; raises ``ValidationFailed`` listing every finding."""
    return validate_folder(folder, kubernetes_version=kubernetes_version or DEFAULT_KUBERNETES_VERSION,
                           schema_locations=schema_locations, ignore_missing_schemas=ignore_missing_schemas)
