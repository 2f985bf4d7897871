"""Stage 6: put rendered files into an output folder, all or nothing.

load -> plan -> verify -> render -> validate -> **write**.  Files go into a staging folder beside
the output; only when the whole run succeeded is the staging folder swapped in, atomically on
Linux (renameat2 RENAME_EXCHANGE). On any error the output folder is exactly as it was.
Parts of the old output that this run does not own (other environments with ``--env``, other
bundles with ``--only``) are carried over by hard links.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path
from typing import Iterable

from renderer.core.errors import RefusingToProceed

MARKER = ".render-output"
MARKER_TEXT = b"This folder is written by `render build`; edits here are overwritten.\n"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False when the kernel or libc can't."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


class Staging:
    """A staging copy of ``out``. ``owned`` are relative paths (folders or files) this run
    rewrites: they are not carried over from the old output."""

    @staticmethod
    def check_target(out: Path) -> None:
        """Refuse an output folder render did not write, before any work is done."""
        if out.exists():
            if not out.is_dir():
                raise RefusingToProceed(f"--out {out} exists and is not a folder; refusing to proceed")
            if any(out.iterdir()) and not (out / MARKER).is_file():
                raise RefusingToProceed(
                    f"--out {out} holds files that render did not write (no {MARKER} marker); refusing to "
                    "proceed: pick an empty or new folder"
                )

    def __init__(self, out: Path, owned: Iterable[str] | None):
        self.out = out.resolve()
        self.check_target(self.out)
        self.path = self.out.parent / f".{self.out.name}.staging-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        (self.path / MARKER).write_bytes(MARKER_TEXT)
        if owned is not None and self.out.is_dir():
            self._carry_over(set(owned))
        self._dirs: set[str] = set()

    def _carry_over(self, owned: set[str]) -> None:
        for dirpath, dirnames, filenames in os.walk(self.out):
            rel_dir = Path(dirpath).relative_to(self.out).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            dirnames[:] = [d for d in dirnames if _join(rel_dir, d) not in owned]
            for name in filenames:
                rel = _join(rel_dir, name)
                if rel in owned or rel == MARKER:
                    continue
                target = self.path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(Path(dirpath) / name, target)

    def write_folder(self, rel: str, files: Iterable[tuple[str, bytes]]) -> None:
        self.write_into(self.path, rel, files)

    def add_folder(self, rel: str, files: Iterable[tuple[str, bytes]]) -> None:
        self.add_into(self.path, rel, files)

    @staticmethod
    def write_into(staging: Path, rel: str, files: Iterable[tuple[str, bytes]]) -> None:
        """Write one folder of the staging tree (workers call this with the staging path)."""
        folder = staging / rel
        if folder.exists():
            shutil.rmtree(folder)
        Staging.add_into(staging, rel, files)

    @staticmethod
    def add_into(staging: Path, rel: str, files: Iterable[tuple[str, bytes]]) -> None:
        """Add files to one folder of the staging tree, made when missing (workers add each
        bundle's Application to ``<env>/argocd/`` so); a name already there fails."""
        folder = staging / rel
        folder.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:  # plain os calls: a bundle is about 25 small files, and Python file objects cost more than the writes
            for name, data in files:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def link_into(staging: Path, rel: str, source: Path, names: Iterable[str]) -> None:
        """Carry a kept bundle's files over by hard link (the bytes were checked by the caller)."""
        folder = staging / rel
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name in names:
            os.link(source / name, folder / name)

    def commit(self) -> None:
        if self.out.exists():
            if not _exchange(self.path, self.out):
                old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
                os.rename(self.out, old)
                os.rename(self.path, self.out)
                self.path = old
            shutil.rmtree(self.path)
        else:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.path, self.out)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a else b
