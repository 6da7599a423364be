"""The pool: every successful build's artifacts by content, ``.superbuild/pool/ab/abcd...``.

The output repository keeps only what the latest builds made; a release must keep the
files it was made of.  When the state records a success
(:class:`superbuild.state.RunRecorder`), each artifact is hard-linked here under its
sha256 (copied when the output is on another filesystem), and the state records its
sha256 and size.  A file is only ever added under a temporary name and renamed, so a
pool file is whole or absent; the same content twice is one file.  Nothing here knows
of releases: :func:`superbuild.release.compose.gc` removes what no release and no latest
build uses.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class PooledFile:
    """One artifact as the pool holds it (``path``: relative to the output repository)."""

    path: str
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pool_file(pool: Path, sha256: str) -> Path:
    """Where content ``sha256`` lives in ``pool`` (it may be absent)."""
    return pool / sha256[:2] / sha256


def link_or_copy(src: Path, dest: Path) -> bool:
    """Make ``dest`` (absent) a hard link to ``src``, or a copy when a link cannot be made
    (another filesystem, a filesystem without links).  True when it copied."""
    try:
        os.link(src, dest)
        return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    try:
        shutil.copyfile(src, dest)
        with dest.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.filename is None:  # a write that failed (a full disk): name the file
            raise OSError(exc.errno, exc.strerror, os.fspath(dest)) from exc
        raise
    return True


def add(pool: Path, src: Path, rel: str) -> PooledFile:
    """Put the file ``src`` (``rel``: its path in the output) into ``pool``."""
    sha = sha256_of(src)
    size = src.stat().st_size
    dest = pool_file(pool, sha)
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{sha[:12]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            link_or_copy(src, tmp)
            tmp.replace(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return PooledFile(rel, sha, size)


def add_all(pool: Path, output: Path, artifacts: list[str]) -> list[PooledFile]:
    """Pool the ``artifacts`` (paths relative to ``output``) of one build."""
    return [add(pool, output / rel, rel) for rel in artifacts if (output / rel).is_file()]


def contents(pool: Path) -> dict[str, Path]:
    """Every content in ``pool``: sha256 -> file (temporary names left out)."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for sub in pool.iterdir():
            if not sub.is_dir():
                continue
            for entry in sub.iterdir():
                if not entry.name.startswith(".") and entry.is_file():
                    found[entry.name] = entry
    return found
