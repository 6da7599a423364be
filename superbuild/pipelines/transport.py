"""Files travelling between the coordinator and a remote worker, with their checksums.

A :class:`Blob` carries one file's bytes and the sha256 the sender computed; the
receiver checks it (:meth:`Blob.intact`) before anything is written, and refuses names
that would leave the folder it writes into.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from superbuild.errors import SuperbuildError


def sha256_of(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """One file (or folder, or symlink) travelling between coordinator and worker.

    ``name`` is a relative posix path; ``data`` the file's bytes (a symlink's target;
    empty for a folder) and ``sha256`` their checksum, computed by the sender and checked
    by the receiver (:meth:`intact`).
    """

    name: str
    data: bytes
    sha256: str
    kind: Literal["file", "dir", "link"] = "file"
    mode: int = 0o644

    @classmethod
    def of(
        cls,
        name: str,
        data: bytes,
        kind: Literal["file", "dir", "link"] = "file",
        mode: int = 0o644,
    ) -> Blob:
        """A blob of ``data`` with its checksum."""
        return cls(name, data, sha256_of(data), kind, mode)

    @classmethod
    def read(cls, path: Path, name: str | None = None) -> Blob:
        """The regular file ``path`` as a blob named ``name`` (default: its file name)."""
        data = path.read_bytes()
        return cls.of(name or path.name, data, "file", stat.S_IMODE(path.stat().st_mode))

    def intact(self) -> bool:
        """Do the bytes still match the checksum the sender computed?"""
        return sha256_of(self.data) == self.sha256

    def write(self, root: Path) -> Path:
        """Create the blob under ``root``; refuses names that would leave ``root``."""
        rel = PurePosixPath(self.name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise SuperbuildError(f"refusing a file named {self.name!r} from a worker")
        path = root.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "dir":
            path.mkdir(exist_ok=True)
        elif self.kind == "link":
            path.symlink_to(os.fsdecode(self.data))
        else:
            path.write_bytes(self.data)
            path.chmod(self.mode)
        return path


def pack_tree(root: Path) -> tuple[Blob, ...]:
    """Every file, symlink and folder under ``root`` as blobs named relative to it (sorted).

    Symlinks are kept as links (never followed); other special files are left out.
    """
    blobs: list[Blob] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        for name in [*dirnames, *filenames]:
            path = here / name
            relname = (rel / name).as_posix()
            if path.is_symlink():
                blobs.append(Blob.of(relname, os.fsencode(path.readlink()), "link"))
            elif path.is_dir():
                blobs.append(Blob.of(relname, b"", "dir", stat.S_IMODE(path.stat().st_mode)))
            elif path.is_file():
                blobs.append(Blob.read(path, relname))
    return tuple(sorted(blobs, key=lambda b: b.name))


def corrupted(blobs: tuple[Blob, ...] | list[Blob]) -> list[str]:
    """Names of the blobs whose bytes do not match their checksum."""
    return [b.name for b in blobs if not b.intact()]
