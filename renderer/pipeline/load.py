"""Stage 1 of the flow: read the environments repo (CONTRACT §1) into typed, frozen inputs.

load -> plan -> verify -> render -> validate -> write.  This module only reads files; it never
renders. It reports every problem it finds, compiler-style (``path:line: field: problem``), by
raising one ``InputError`` at the end, so a user fixes a whole run at once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Optional, TypeVar

from pydantic import BaseModel, ValidationError

from renderer.core.errors import InputError, Problem
from renderer.pipeline.modelerrors import message as _message, real_path as _real_path
from renderer.pipeline.models import DNS_LABEL_RE, Platform, Plugin, PluginInstall, Publisher, Tenant
from renderer.pipeline.parsedinputs import ParsedInputs
from renderer.core.yamlio import MAX_INPUT_BYTES, Document, YamlProblem, field_name, load_document

M = TypeVar("M", bound=BaseModel)

RESERVED = {"publishers", "catalog"}
MAX_CATALOG_FILE_BYTES = 8 << 20  # any one file of a catalog version folder (migrations included)
MAX_CATALOG_FILES = 1000  # files in one catalog version folder
MAX_CATALOG_BYTES = 64 << 20  # all files of one catalog version folder together
OUTSIDE = ("is a symbolic link or lies outside the environments repo: only regular files and folders "
           "inside it are read")


@dataclass(frozen=True)
class Source(Generic[M]):
    """One input file: its model, where it came from, and what its bytes hash to."""

    model: M
    path: str  # relative to the environments root, '/'-separated
    doc: Document
    sha256: str

    def line(self, *path) -> int:
        return self.doc.line_of(tuple(path))


@dataclass(frozen=True)
class CatalogVersion:
    plugin: Source[Plugin]
    dir: Path
    files_sha256: str  # over every file of the version folder: names and bytes
    signature_file: Optional[Path]
    migrations: tuple[Path, ...]


@dataclass(frozen=True)
class TenantInput:
    tenant: Source[Tenant]
    installs: tuple[Source[PluginInstall], ...]


@dataclass(frozen=True)
class EnvironmentInput:
    name: str
    platform: Source[Platform]
    tenants: tuple[TenantInput, ...]


@dataclass(frozen=True)
class Inputs:
    """What loaded cleanly, plus the problems of what did not (``plan`` reports them all at once)."""

    root: Path
    publishers: dict  # name -> Source[Publisher]
    catalog: dict  # (plugin, version) -> CatalogVersion
    environments: tuple[EnvironmentInput, ...]
    problems: tuple[Problem, ...] = ()
    broken: frozenset = frozenset()  # catalog keys and publisher names whose files did not load


@dataclass
class _Reader:
    root: Path
    problems: list = field(default_factory=list)
    _clean: set = field(default_factory=set)  # folders known to be inside, with no link on the way
    # (model, bytes) -> (model instance, document, sha256) of a file that checked cleanly: many installs
    # are byte-identical (`version: X` and nothing else), and models and documents are never mutated
    _parsed: dict = field(default_factory=dict)
    recorded: Optional[ParsedInputs] = None  # documents parsed in earlier runs, by their bytes

    def __post_init__(self) -> None:
        self._clean.add(self.root)
        self._prefix = str(self.root) + os.sep

    def rel(self, path: Path) -> str:
        text = str(path)
        if text.startswith(self._prefix) and os.sep == "/":
            return text[len(self._prefix):]
        return path.relative_to(self.root).as_posix()

    def problem(self, path: Path | str, line: int, fld: str, message: str) -> None:
        self.problems.append(Problem(path if isinstance(path, str) else self.rel(path), line, fld, message))

    def mark_clean(self, folder: Path) -> None:
        """A folder found (not through a link) inside a clean folder: clean too."""
        if folder.parent in self._clean:
            self._clean.add(folder)

    def inside(self, path: Path) -> bool:
        """Whether ``path`` may be read: no symbolic link on the way from the root, and it resolves
        inside the repo. Reports it (once) when not: nothing outside the repo is ever read.
        A folder found clean is remembered, so a path in it costs one ``lstat`` of its own name, and
        the folder itself nothing."""
        if path in self._clean:
            return True
        if path.parent in self._clean:
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                mode = 0  # missing: nothing to follow (the read reports it)
            if not stat.S_ISLNK(mode):
                if stat.S_ISDIR(mode):
                    self._clean.add(path)
                return True
            self.problems.append(Problem(self.rel(path), 0, "", OUTSIDE))
            return False
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            parts = None
        node, ok = self.root, parts is not None
        for part in parts or ():
            node = node / part
            if node.is_symlink():
                ok = False
                break
        real = Path(os.path.realpath(path))
        if ok and (real == self.root or self.root in real.parents):
            if path.is_dir():
                self._clean.add(path)
            return True
        self.problems.append(Problem(self.rel(node) if parts is not None else str(path), 0, "", OUTSIDE))
        return False

    def read(self, path: Path, model: type[M], listed: bool = False) -> Optional[Source[M]]:
        """``listed``: ``path`` is a file that ``_entries`` found (not a link) in a folder that
        ``inside`` checked, so no second check is needed: the open refuses a link put there since."""
        rel = self.rel(path)
        if not listed and not self.inside(path):
            return None
        try:
            # O_NOFOLLOW: a file swapped for a link after the check above is still not followed
            raw = _read_regular(path, MAX_INPUT_BYTES + 1)
            if raw is None:
                self.problem(rel, 0, "", "not a regular file")
                return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link, put there since the folder was listed
                self.problem(rel, 0, "", OUTSIDE)
            else:
                self.problem(rel, 0, "", f"cannot read file: {exc.strerror}")
            return None
        known = self._parsed.get((model, raw))
        if known is not None:
            return Source(known[0], rel, known[1], known[2])
        sha = hashlib.sha256(raw).hexdigest()
        if self.recorded is not None:
            doc = self.recorded.get(model.__name__, sha)
            try:
                obj = model.model_validate(doc.data) if doc is not None else None
            except (ValidationError, RecursionError):  # not what was recorded: parse the file
                obj = None
            if obj is not None:
                self._parsed[(model, raw)] = (obj, doc, sha)
                return Source(obj, rel, doc, sha)
        try:
            doc = load_document(raw)
        except YamlProblem as exc:
            self.problem(rel, exc.line, exc.field, exc.message)
            return None
        except RecursionError:
            self.problem(rel, 0, "", "nested too deeply (no input file needs more than a few levels)")
            return None
        try:
            obj = model.model_validate(doc.data)
        except RecursionError:
            self.problem(rel, 0, "", "nested too deeply (no input file needs more than a few levels)")
            return None
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
                # pydantic reports Annotated/union branches as extra loc parts; keep only real fields
                loc = _real_path(doc.data, loc)
                fld = field_name(loc).encode("unicode_escape").decode("ascii")  # a key may hold a newline
                self.problem(rel, doc.line_of(loc), fld or "(document)", _message(err))
            return None
        if self.recorded is not None:
            self.recorded.add(model.__name__, sha, doc)
        self._parsed[(model, raw)] = (obj, doc, sha)
        return Source(obj, rel, doc, sha)


def _read_regular(path: Path, limit: int) -> Optional[bytes]:
    """At most ``limit`` bytes of a regular file, or None when it is something else. O_NOFOLLOW: a
    file swapped for a link after ``inside`` checked it is still not followed. Plain ``os.read``
    calls: a buffered ``read(limit)`` would allocate ``limit`` bytes for every small file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        first = min(limit, info.st_size + 1)  # a short read is the end: one read for a file that kept its size
        chunks, size, asked = [], 0, first
        while size < limit:
            chunk = os.read(fd, asked)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < asked:
                break
            asked = min(limit - size, 1 << 16)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _files_sha256(reader: _Reader, folder: Path) -> Optional[str]:
    """sha256 over every file of a catalog version folder, or None (reported) when one of them is a
    symbolic link, not a regular file, too big, or there are too many."""
    files, ok = [], True
    for top, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs + names):
            path = Path(top) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                ok = reader.inside(path) and ok
            elif stat.S_ISREG(mode):
                if path.lstat().st_size > MAX_CATALOG_FILE_BYTES:
                    reader.problem(path, 0, "", f"larger than {MAX_CATALOG_FILE_BYTES >> 20} MiB")
                    ok = False
                files.append(path)
            elif not stat.S_ISDIR(mode):
                reader.problem(path, 0, "", "not a regular file")
                ok = False
    if len(files) > MAX_CATALOG_FILES or sum(p.lstat().st_size for p in files) > MAX_CATALOG_BYTES:
        reader.problem(folder, 0, "", f"more than {MAX_CATALOG_FILES} files or {MAX_CATALOG_BYTES >> 20} MiB in one "
                                      "catalog version")
        ok = False
    if not ok:
        return None
    h = hashlib.sha256()
    for path in sorted(files):
        data = _read_regular(path, MAX_CATALOG_FILE_BYTES + 1)
        if data is None:  # swapped for something else since the walk above
            reader.problem(path, 0, "", "not a regular file")
            return None
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def _entries(reader: _Reader, folder: Path) -> list[tuple[Path, str]]:
    """(path, "dir" | "file" | "other") of the entries of a folder the loader may read, by name (no dot files;
    links reported and skipped). One directory read: the kinds come from it, not from a stat each."""
    if not reader.inside(folder):
        return []
    with os.scandir(folder) as it:
        found = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    out = []
    for entry in found:
        path = folder / entry.name
        if entry.is_symlink():
            reader.problems.append(Problem(reader.rel(path), 0, "", OUTSIDE))
            continue
        kind = "dir" if entry.is_dir(follow_symlinks=False) else "file" if entry.is_file(follow_symlinks=False) else "other"
        if kind == "dir":
            reader.mark_clean(path)
        out.append((path, kind))
    return out


def _tenant_kinds(reader: _Reader, tenant_dir: Path) -> dict[str, str]:
    """The kinds ("file", "dir", "link", "other") of ``tenant.yaml`` and ``plugins`` in a tenant
    folder that ``_entries`` listed, from one directory read instead of a ``stat`` of each (at
    10,000 bundles, 3,334 tenant folders). In a folder not known to be clean, the names are
    reported as links, so that they go through ``_Reader.inside`` as before."""
    with os.scandir(tenant_dir) as it:
        found = {e.name: e for e in it if e.name in ("tenant.yaml", "plugins")}
    clean = tenant_dir in reader._clean
    return {name: "link" if not clean or e.is_symlink() else "dir" if e.is_dir(follow_symlinks=False)
            else "file" if e.is_file(follow_symlinks=False) else "other" for name, e in found.items()}


def _listing(reader: _Reader, folder: Path) -> list[Path]:
    """The entries of a folder the loader may read (no dot files; links and escapes reported)."""
    return [path for path, _ in _entries(reader, folder)]


def _yaml_files(reader: _Reader, folder: Path) -> list[Path]:
    out = []
    for path, kind in _entries(reader, folder):
        if kind == "file" and path.suffix == ".yaml":
            out.append(path)
        else:
            reader.problem(path, 0, "", f"unexpected {'folder' if kind == 'dir' else 'file'}: only <name>.yaml files belong in {reader.rel(folder)}/")
    return out


def _name_matches(reader: _Reader, src: Source, expected: str, what: str) -> None:
    actual = src.model.metadata.name
    if actual != expected:
        reader.problem(src.path, src.line("metadata", "name"), "metadata.name",
                       f"{actual!r} differs from the {what} {expected!r}; they must be equal")


def load(root: Path, only_env: Optional[str] = None, parsed: Optional[ParsedInputs] = None) -> Inputs:
    """Read and check every input file under ``root``. Problems are collected in ``Inputs.problems``
    (``plan`` raises them together with its own); only a missing root raises here. ``parsed``: the
    documents of files parsed in earlier runs (``parsedinputs``), and where this run's are recorded."""
    root = root.resolve()
    reader = _Reader(root, recorded=parsed)
    if not root.is_dir():
        raise InputError([Problem(str(root), 0, "", "environments folder does not exist")])

    publishers: dict = {}
    broken: set = set()
    pub_dir = root / "publishers"
    if not pub_dir.is_dir():
        reader.problem("publishers", 0, "", "missing folder publishers/ (one <publisher>.yaml each)")
    else:
        for path in _yaml_files(reader, pub_dir):
            src = reader.read(path, Publisher, listed=True)
            if not src:
                broken.add(path.stem)
            if src:
                _name_matches(reader, src, path.stem, "file name")
                publishers[path.stem] = src

    catalog: dict = {}
    cat_dir = root / "catalog"
    if not cat_dir.is_dir():
        reader.problem("catalog", 0, "", "missing folder catalog/ (catalog/<plugin>/<version>/plugin.yaml)")
    else:
        for plugin_dir in _listing(reader, cat_dir):
            if not plugin_dir.is_dir():
                reader.problem(plugin_dir, 0, "", "unexpected file: catalog/ holds one folder per plugin")
                continue
            for version_dir in _listing(reader, plugin_dir):
                manifest = version_dir / "plugin.yaml"
                files_sha256 = _files_sha256(reader, version_dir) if version_dir.is_dir() else None
                if not manifest.is_file() and not manifest.is_symlink():
                    reader.problem(version_dir, 0, "", "missing plugin.yaml in this catalog version folder")
                    continue
                src = reader.read(manifest, Plugin)
                if not src or files_sha256 is None:
                    broken.add((plugin_dir.name, version_dir.name))
                    continue
                _name_matches(reader, src, plugin_dir.name, "catalog folder name")
                if src.model.metadata.version != version_dir.name:
                    reader.problem(src.path, src.line("metadata", "version"), "metadata.version",
                                   f"{src.model.metadata.version!r} differs from the folder name {version_dir.name!r}")
                sig = version_dir / "signature.json"
                mig_dir = version_dir / "migrations"
                migrations = tuple(p for p in _listing(reader, mig_dir) if p.suffix == ".sql") if mig_dir.is_dir() else ()
                if migrations and src.model.spec.database is None:
                    reader.problem(src.path, src.line("spec"), "spec.database",
                                   "the version ships migrations/ but declares no database")
                catalog[(plugin_dir.name, version_dir.name)] = CatalogVersion(
                    src, version_dir, files_sha256, sig if sig.is_file() else None, migrations
                )

    environments = []
    env_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in RESERVED
                      and (p / "platform.yaml").is_file() and reader.inside(p))
    if only_env is not None:
        if only_env not in [p.name for p in env_dirs]:
            raise InputError([Problem(only_env, 0, "--env", f"no environment {only_env!r} (no {only_env}/platform.yaml)")])
        env_dirs = [p for p in env_dirs if p.name == only_env]
    if not env_dirs:
        reader.problem(".", 0, "", "no environment found (no <env>/platform.yaml)")
    for env_dir in env_dirs:
        if not DNS_LABEL_RE.fullmatch(env_dir.name) or len(env_dir.name) > 63:
            reader.problem(env_dir, 0, "", "an environment folder name must be a DNS label")
            continue
        platform = reader.read(env_dir / "platform.yaml", Platform)
        if platform:
            _name_matches(reader, platform, env_dir.name, "environment folder name")
        tenants = []
        tenants_dir = env_dir / "tenants"
        for tenant_dir, kind in _entries(reader, tenants_dir) if tenants_dir.is_dir() else []:
            if kind != "dir":
                reader.problem(tenant_dir, 0, "", "unexpected file: tenants/ holds one folder per tenant id")
                continue
            tenant_file, plugins_dir = tenant_dir / "tenant.yaml", tenant_dir / "plugins"
            kinds = _tenant_kinds(reader, tenant_dir)
            if kinds.get("tenant.yaml") not in ("file", "link"):
                reader.problem(tenant_dir, 0, "", "missing tenant.yaml in this tenant folder")
                continue
            tenant = reader.read(tenant_file, Tenant, listed=kinds["tenant.yaml"] == "file")
            if tenant:
                _name_matches(reader, tenant, tenant_dir.name, "tenant folder name")
            installs = []
            if kinds.get("plugins") == "dir":
                reader.mark_clean(plugins_dir)
            if kinds.get("plugins") == "dir" or (kinds.get("plugins") == "link" and plugins_dir.is_dir()):
                for path in _yaml_files(reader, plugins_dir):
                    inst = reader.read(path, PluginInstall, listed=True)
                    if inst:
                        _name_matches(reader, inst, path.stem, "file name")
                        installs.append(inst)
            if tenant:
                tenants.append(TenantInput(tenant, tuple(installs)))
        if platform:
            environments.append(EnvironmentInput(env_dir.name, platform, tuple(tenants)))

    if parsed is not None:
        parsed.save()
    return Inputs(root, publishers, catalog, tuple(environments), tuple(reader.problems), frozenset(broken))
