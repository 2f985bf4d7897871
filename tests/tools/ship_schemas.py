#!/usr/bin/env python3
"""Regenerate the custom-resource schemas the package ships (``renderer/_data/schemas``).

Where it sits: a maintainer's tool, like ``sign_examples.py``; not part of the renderer. The
kinds are exactly the custom resources in ``renderer.pipeline.render.EMITTED`` (a kind is custom
when its group is not a Kubernetes one); each comes from the pinned upstream CRD under
``../shared/schemas/upstream/`` that serves its version (the shallowest file wins: the versioned
sub-folders, such as ``strimzi-0.51.0/``, hold older releases kept for their older versions), and
is converted by the real ``render schemas import FILE --to DIR --versions V``. The folder is
emptied first, so a kind that is no longer emitted is no longer shipped.
``tests/test_shipped_schemas.py`` runs the same selection and compares byte for byte.

Usage: .venv/bin/python tests/tools/ship_schemas.py [--upstream ../shared/schemas/upstream] [--to DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO)]

from renderer import cli  # noqa: E402
from renderer.core.resources import SCHEMAS  # noqa: E402
from renderer.gates.crdschemas import load_crds  # noqa: E402
from renderer.pipeline.render import EMITTED  # noqa: E402

UPSTREAM = REPO.parent / "shared" / "schemas" / "upstream"


def custom_kinds(emitted=EMITTED) -> list[tuple[str, str, str]]:
    """(group, kind, version) of every emitted custom resource, sorted."""
    out = set()
    for api_version, kind in emitted:
        group, _, version = api_version.rpartition("/")
        if "." in group and not group.endswith(".k8s.io"):
            out.add((group, kind, version))
    return sorted(out)


def sources(upstream: Path = UPSTREAM, emitted=EMITTED) -> list[tuple[Path, str, str]]:
    """(upstream CRD file, kubeconform-layout file name, version) for each emitted custom kind.
    Raises LookupError naming the kinds no upstream file serves."""
    served: dict[tuple[str, str, str], list[Path]] = {}
    for path in sorted(upstream.rglob("*.yaml")):
        for crd in load_crds(path):
            spec = crd.get("spec") or {}
            for entry in spec.get("versions") or []:
                if entry.get("served"):
                    key = (spec.get("group"), (spec.get("names") or {}).get("kind"), entry.get("name"))
                    served.setdefault(key, []).append(path)
    out, missing = [], []
    for group, kind, version in custom_kinds(emitted):
        files = sorted(served.get((group, kind, version), []), key=lambda p: (len(p.relative_to(upstream).parts), p))
        if not files:
            missing.append(f"{group}/{version} {kind}")
            continue
        out.append((files[0], f"{group}/{kind.lower()}_{version}.json", version))
    if missing:
        raise LookupError(f"no upstream CRD under {upstream} serves {', '.join(missing)}")
    return out


def ship(to_dir: Path = SCHEMAS, upstream: Path = UPSTREAM) -> list[str]:
    """Empty ``to_dir`` and import every emitted custom kind into it; returns the files written."""
    plan = sources(upstream)
    if to_dir.exists():
        shutil.rmtree(to_dir)
    to_dir.mkdir(parents=True)
    for crd_file, _, version in plan:
        code = cli.main(["schemas", "import", str(crd_file), "--to", str(to_dir), "--versions", version])
        if code != 0:
            raise SystemExit(f"render schemas import {crd_file} failed ({code})")
    # a CRD file holds one kind; its other served versions are not emitted: drop them
    wanted = {rel for _, rel, _ in plan}
    for path in sorted(to_dir.rglob("*.json")):
        if path.relative_to(to_dir).as_posix() not in wanted:
            path.unlink()
    return sorted(wanted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=Path, default=UPSTREAM)
    parser.add_argument("--to", type=Path, default=SCHEMAS)
    args = parser.parse_args()
    for rel in ship(args.to, args.upstream):
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
