"""The ``render`` command line: flags in, a request to ``pipeline`` out. No logic lives here.

Exit codes (CONTRACT §3): 0 success; 1 input, policy, schema or signature rejected; 2 usage;
3 an outside system (registry, git remote) failed. Errors never show a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from renderer import __version__
from renderer.core.errors import EXIT_OK, EXIT_USAGE, RenderError, UsageError

DEFAULT_ENV_DIR = Path("environments")
DEFAULT_OUT = Path("rendered")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2, one line, no traceback
        self.print_usage(sys.stderr)
        sys.stderr.write(f"render: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _common(p: argparse.ArgumentParser, *, signatures: bool = True) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--schema-location", action="append", default=[], metavar="DIR_OR_URL",
                   help="custom-resource schemas, kubeconform layout (repeatable; default $RENDER_SCHEMA_LOCATION)")
    p.add_argument("--ignore-missing-schemas", action="store_true", help="accept kinds that have no schema")
    if signatures:
        p.add_argument("--offline", action="store_true", help="verify signatures from signature.json only")
        p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                       help="use plain HTTP for this registry (repeatable; also $RENDER_INSECURE_REGISTRIES)")
        p.add_argument("--no-cache", action="store_true",
                       help="ignore the caches (verified signatures, policy verdicts) and render unchanged bundles again")
        p.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("env_dir", nargs="?", type=Path, default=DEFAULT_ENV_DIR, metavar="ENV_DIR",
                   help="the environments repo's root (default ./environments)")
    p.add_argument("--env", help="only this environment")
    p.add_argument("--only", metavar="TENANT/PLUGIN", help="only this bundle")
    _common(p)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="render", description="Render plugin installs into isolated namespace bundles.")
    p.add_argument("--version", action="version", version=f"render {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    b = sub.add_parser("build", help="render and validate into a folder")
    _build_args(b)
    b.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically)")
    from renderer.flows.legacy import register

    register(sub, _build_args)  # commit, diff, mark-good, rollback
    __import__("renderer.cli.migrations_cmd", fromlist=["register"]).register(sub)  # migrations check
    v = sub.add_parser("validate", help="schema, policy and isolation gates on a folder of rendered bundles")
    v.add_argument("folder", type=Path, metavar="DIR")
    v.add_argument("--kubernetes-version", default=None,
                   help="built-in schemas of this Kubernetes version (default 1.33)")
    _common(v, signatures=False)
    sc = sub.add_parser("schemas", help="schema tools")
    sc_sub = sc.add_subparsers(dest="schemas_command", parser_class=_Parser, required=True)
    imp = sc_sub.add_parser("import", help="convert CustomResourceDefinitions into kubeconform-layout schemas")
    imp.add_argument("crds", nargs="+", type=Path, metavar="CRD_FILE")
    imp.add_argument("--to", type=Path, required=True, metavar="DIR")
    imp.add_argument("--versions", default=None, help="comma-separated versions to write (default: every served one)")
    imp.add_argument("--format", choices=("text", "json"), default="text")
    return p


def _request(args: argparse.Namespace, out: Optional[Path]):
    from renderer.pipeline.build import BuildRequest, progress_printer
    from renderer.trust.signatures import default_cache_dir

    if args.only is not None and args.only.count("/") != 1:
        raise UsageError(f"render: error: --only takes TENANT/PLUGIN, got {args.only!r}")
    cache = None if args.no_cache else Path(os.environ["RENDER_CACHE_DIR"]) if os.environ.get("RENDER_CACHE_DIR") \
        else default_cache_dir()
    return BuildRequest(
        env_dir=args.env_dir, out=out, env=args.env, only=args.only,
        schema_locations=tuple(args.schema_location or _env_list("RENDER_SCHEMA_LOCATION")),
        ignore_missing_schemas=args.ignore_missing_schemas, offline=args.offline,
        insecure_registries=frozenset(args.insecure_registry + _env_list("RENDER_INSECURE_REGISTRIES")),
        cache_dir=cache, jobs=args.jobs, progress=progress_printer() if args.format == "text" else None,
    )


def _summary(result, out: Path, fmt: str) -> None:
    per_env = {e.name: len(e.bundles) for e in result.environments}
    for line in result.warnings:
        sys.stderr.write(f"warning: {line}\n")
    if fmt == "json":
        print(json.dumps({"out": str(out), "bundles": result.bundles, "objects": result.objects,
                          "environments": per_env, "seconds": round(result.seconds, 3), "kept": result.reused,
                          "warnings": result.warnings}, sort_keys=True))
        return
    envs = ", ".join(f"{k}: {v}" for k, v in per_env.items())
    kept = f", {result.reused} kept as they were (same inputDigest)" if result.reused else ""
    print(f"rendered {result.bundles} bundles ({result.objects} objects) for {len(per_env)} environments "
          f"({envs}) into {out}/ in {result.seconds:.2f} s{kept}")
    print("signatures verified; every bundle passed the migration, schema, policy and isolation gates")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        # `render` alone: the demo -- render ./environments into ./rendered
        argv = ["build", *argv, "--out", str(DEFAULT_OUT)] if "--out" not in argv else ["build", *argv]
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            from renderer.pipeline.build import build
            from renderer.pipeline.provenance import deployed_from_folder, reuse_from_folder
            from renderer.pipeline.write import MARKER

            request = _request(args, args.out)
            if (args.out / MARKER).is_file():  # an earlier build: what runs now, and what can be kept
                request = dataclasses.replace(request, deployed=deployed_from_folder(args.out))
                if not args.no_cache:
                    request = dataclasses.replace(request, reuse=reuse_from_folder(args.out))
            result = build(request)
            _summary(result, args.out, args.format)
            return EXIT_OK
        if getattr(args, "func", None):
            return args.func(args)
        if args.command == "validate":
            from renderer.pipeline.build import DEFAULT_KUBERNETES_VERSION, validate_folder

            count = validate_folder(
                args.folder, kubernetes_version=args.kubernetes_version or DEFAULT_KUBERNETES_VERSION,
                schema_locations=tuple(args.schema_location or _env_list("RENDER_SCHEMA_LOCATION")),
                ignore_missing_schemas=args.ignore_missing_schemas)
            if args.format == "json":
                print(json.dumps({"bundles": count, "violations": []}))
            else:
                print(f"{count} bundles in {args.folder} passed the schema, policy and isolation gates")
            return EXIT_OK
        if args.command == "schemas":
            from renderer.gates.crdschemas import import_crds

            versions = args.versions.split(",") if args.versions else None
            written = import_crds(args.crds, args.to, versions=versions)
            if args.format == "json":
                print(json.dumps({"written": [str(p) for p in written]}))
            else:
                for path in written:
                    print(f"wrote {path}")
            return EXIT_OK
        parser().print_help()
        return EXIT_USAGE
    except RenderError as exc:
        for line in exc.lines():
            sys.stderr.write(line + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("render: interrupted; nothing was written\n")
        return 130
    except Exception as exc:  # a bug: say so in one line; RENDER_DEBUG=1 shows the traceback
        if os.environ.get("RENDER_DEBUG"):
            raise
        sys.stderr.write(f"render: internal error ({type(exc).__name__}: {exc}); nothing was written. "
                         "This is a bug in render: rerun with RENDER_DEBUG=1 and report the traceback\n")
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
