"""Files written whole or not at all: a temporary file in the same folder, then rename.

Every report, cache and hook superbuild writes goes through :func:`write_bytes_atomic`,
so a reader (or a crash) never sees half a file, and the file gets the permissions a
plain ``open(..., "w")`` would give it under the current umask (``mkstemp`` alone
would make it 0600).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it: do it once, before threads write files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(
    path: Path, data: bytes, *, mode: int = 0o666, make_parents: bool = False
) -> None:
    """Replace ``path`` with ``data`` atomically; ``mode`` is masked by the umask.

    ``make_parents`` creates missing parent folders (off by default: a report path with a
    typo should fail, not create ``/no/such/dir``).  On any error the temporary file is
    removed and the exception propagates.
    """
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode & ~_umask())
        Path(tmp).replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            # A write that fails (a full disk) names the file, as an open() would.
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise


def write_text_atomic(path: Path, text: str, **options: Any) -> None:
    """:func:`write_bytes_atomic` of ``text`` in UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"), **options)


def write_json_atomic(path: Path, data: Any, **options: Any) -> None:
    """:func:`write_bytes_atomic` of ``data`` as indented JSON and a newline."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n", **options)


#: Free bytes below which a tool's vague failure is put down to a full file system.
NEARLY_FULL = 1 << 20


def free_if_full(folder: Path) -> int | None:
    """The free bytes of ``folder``'s file system when it is (almost) full, else None.

    For tools that report a full disk vaguely: createrepo_c's "gzclose(): file operation
    error", SQLite's "disk I/O error" while mapping its WAL index.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return free if free < NEARLY_FULL else None


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it, ignoring errors, as
    ``shutil.rmtree(path, ignore_errors=True)`` does (links are removed, never followed).

    A package's scratch folder is most often a few empty folders: those go with one
    ``rmdir`` each (the listing says which entries are folders) instead of rmtree's
    descriptor walk of every level.
    """
    if path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # which refuses a link, as callers expect
        return
    try:
        with os.scandir(path) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            try:
                Path(entry.path).rmdir()  # empty
            except OSError:
                shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                Path(entry.path).unlink()
    try:
        path.rmdir()
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
