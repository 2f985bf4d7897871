"""Use case `render build`: render and check into an output folder.

Where it sits: ``flows`` (called by ``cli``; calls ``pipeline``). An output folder render wrote
before tells what runs now (a move across a migration contract step is refused) and which
bundles can be kept as they are.
"""

from __future__ import annotations

import dataclasses

from renderer.pipeline.build import BuildRequest, BuildResult
from renderer.pipeline.build import build as run_pipeline
from renderer.pipeline.provenance import deployed_from_folder, reuse_from_folder
from renderer.pipeline.write import MARKER


def build(request: BuildRequest, *, keep: bool = True) -> BuildResult:
    """Render ``request.env_dir`` into ``request.out``. ``keep``: bundles of an earlier output
    whose inputs are unchanged are kept (``--no-cache`` turns it off)."""
    out = request.out
    if out is not None and (out / MARKER).is_file():
        request = dataclasses.replace(request, deployed=deployed_from_folder(out))
        if keep:
            request = dataclasses.replace(request, reuse=reuse_from_folder(out))
    return run_pipeline(request)
