"""The source archive a spec asks for, made from git objects at the recorded commit.

The archive is named as the spec's Source0 (after macro expansion and ``#/`` renames) and
made in the format its name says, with the top folder the spec's ``%prep`` enters
(:class:`~superbuild.pipelines.rpm.spec.SpecFacts`): what ``%setup``/``%autosetup``
(``rpmuncompress``) unpack.

=================================  ==========================================
name ends with                     made by
=================================  ==========================================
``.tar.gz``, ``.tgz``              ``git archive --format=tar.gz``
``.tar.xz``, ``.txz``              ``git archive --format=tar``, then xz (Python's lzma)
``.tar.bz2``, ``.tbz2``, ``.tbz``  ``git archive --format=tar``, then bzip2 (Python's bz2)
``.tar.zst``, ``.tzst``            ``git archive --format=tar``, then ``zstd``
``.tar``                           ``git archive --format=tar``
``.zip``                           ``git archive --format=zip``
=================================  ==========================================
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
from pathlib import Path

from superbuild import git as g
from superbuild.pipelines.stage import Stage

_CHUNK = 1 << 20

#: Suffix -> (git archive format, compressor of the tar stream or None, its name).
FORMATS: dict[str, tuple[str, str | None]] = {
    ".tar.gz": ("tar.gz", None),
    ".tgz": ("tar.gz", None),
    ".tar.xz": ("tar", "xz"),
    ".txz": ("tar", "xz"),
    ".tar.bz2": ("tar", "bzip2"),
    ".tbz2": ("tar", "bzip2"),
    ".tbz": ("tar", "bzip2"),
    ".tar.zst": ("tar", "zstd"),
    ".tzst": ("tar", "zstd"),
    ".tar": ("tar", None),
    ".zip": ("zip", None),
}


def archive_format(file_name: str) -> tuple[str, str | None] | None:
    """How to make an archive named ``file_name``, or None if it is not an archive."""
    lowered = file_name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lowered.endswith(suffix):
            return FORMATS[suffix]
    return None


def supported_suffixes() -> str:
    return ", ".join(FORMATS)


def _compress(src: Path, dest: Path, how: str, st: Stage) -> None:
    """``src`` compressed into ``dest`` with xz or bzip2, in this process."""
    with (
        src.open("rb") as raw,
        lzma.open(dest, "wb", preset=6) if how == "xz" else bz2.open(dest, "wb") as packed,
    ):
        shutil.copyfileobj(raw, packed, _CHUNK)
    st.note(f"# compressed with {how} (Python)")


def make_archive(repo: Path, commit: str, dest: Path, top: str | None, st: Stage) -> None:
    """Write the archive ``dest`` of ``commit`` (files under ``top/``, or at the root).

    Raises :class:`~superbuild.pipelines.api.PipelineFailed` through ``st`` when git or
    the compressor fails; the caller has checked the name with :func:`archive_format`.
    """
    found = archive_format(dest.name)
    assert found is not None, dest.name
    git_format, compressor = found
    prefix = [f"--prefix={top}/"] if top else []
    target = dest if compressor is None else dest.with_name(dest.name + ".tar-stream")
    st.run(
        [
            "git",
            "-C",
            os.fspath(repo),
            "archive",
            f"--format={git_format}",
            *prefix,
            "-o",
            os.fspath(target),
            commit,
        ],
        env=g.default_git_env(),
        what="git archive",
    )
    if compressor is None:
        return
    try:
        if compressor in ("xz", "bzip2"):
            _compress(target, dest, compressor, st)
        else:
            st.run(["zstd", "-q", "-f", "-o", os.fspath(dest), os.fspath(target)], what="zstd")
    finally:
        target.unlink(missing_ok=True)
