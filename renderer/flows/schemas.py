"""Use case `render schemas import`: CustomResourceDefinitions to kubeconform-layout JSON schemas.

Where it sits: ``flows`` (called by ``cli``; calls ``gates.crdschemas``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from renderer.gates.crdschemas import import_crds


def schemas_import(crds: Sequence[Path], to: Path, versions: Optional[Sequence[str]] = None) -> list[Path]:
    return import_crds(crds, to, versions=versions)
