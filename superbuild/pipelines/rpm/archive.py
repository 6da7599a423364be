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
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from superbuild import git as g
from superbuild import proc
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


def make_archive(
    repo: Path,
    commit: str,
    dest: Path,
    top: str | None,
    st: Stage,
    *,
    listing: tuple[list[g.TreeEntry], Mapping[str, bytes]] | None = None,
) -> None:
    """Write the archive ``dest`` of ``commit`` (files under ``top/``, or at the root).

    Nested submodules of the commit are included at their recorded commits (recursively)
    and Git LFS pointers are replaced by their files (:func:`_complete_tar`); either
    one unavailable fails the stage naming it.  Raises
    :class:`~superbuild.pipelines.api.PipelineFailed` through ``st`` when git or the
    compressor fails; the caller has checked the name with :func:`archive_format`.
    ``listing``: the commit's ``ls-tree -r -l`` and the contents of its
    :func:`lfs_candidates`, when the caller has them (else they are read here).
    """
    found = archive_format(dest.name)
    assert found is not None, dest.name
    git_format, compressor = found
    extras = _Extras.of(repo, commit, st) if listing is None else _Extras.of_listing(*listing)
    if extras.nested or extras.pointers:
        stream = dest.with_name(dest.name + ".tar-stream")
        try:
            _complete_tar(repo, commit, top or "", stream, extras=extras, st=st, depth=0)
            _pack(stream, dest, git_format, compressor, st)
        finally:
            stream.unlink(missing_ok=True)
        return
    prefix = [f"--prefix={top}/"] if top else []
    target = dest if compressor is None else dest.with_name(dest.name + ".tar-stream")
    st.run(
        [
            "git",
            "-C",
            os.fspath(repo),
            *_NO_LFS_FILTER,
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
        _compress_tar(target, dest, compressor, st)
    finally:
        target.unlink(missing_ok=True)


def _compress_tar(target: Path, dest: Path, compressor: str, st: Stage) -> None:
    if compressor in ("xz", "bzip2"):
        _compress(target, dest, compressor, st)
    elif compressor == "gzip":
        with target.open("rb") as raw, gzip.GzipFile(dest, "wb", compresslevel=6, mtime=0) as gz:
            shutil.copyfileobj(raw, gz, _CHUNK)
    else:
        st.run(["zstd", "-q", "-f", "-o", os.fspath(dest), os.fspath(target)], what="zstd")


def _pack(stream: Path, dest: Path, git_format: str, compressor: str | None, st: Stage) -> None:
    """The finished tar ``stream`` as ``dest`` in its format."""
    if git_format == "zip":
        _tar_to_zip(stream, dest)
    elif git_format == "tar.gz":
        _compress_tar(stream, dest, "gzip", st)
    elif compressor is not None:
        _compress_tar(stream, dest, compressor, st)
    else:
        stream.replace(dest)


def _tar_to_zip(stream: Path, dest: Path) -> None:
    with tarfile.open(stream, "r:") as tar, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for member in tar:
            info = zipfile.ZipInfo(member.name + ("/" if member.isdir() else ""))
            info.date_time = (1980, 1, 1, 0, 0, 0)
            if member.issym():
                info.external_attr = (0o120777 << 16) | 0
                z.writestr(info, member.linkname)
            elif member.isdir():
                info.external_attr = ((0o040000 | member.mode) << 16) | 0x10
                z.writestr(info, b"")
            elif member.isfile():
                info.external_attr = (0o100000 | member.mode) << 16
                data = tar.extractfile(member)
                assert data is not None
                with z.open(info, "w") as out:
                    shutil.copyfileobj(data, out, _CHUNK)


# ------------------------------------------------------------- nested submodules, Git LFS

#: A Git LFS pointer file, exactly (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
#: ``version`` first, then keys in order; no file this small and this shaped is anything else.
_LFS_RE = re.compile(
    rb"\Aversion https://git-lfs\.github\.com/spec/v1\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*?"
    rb"oid sha256:(?P<oid>[0-9a-f]{64})\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*?"
    rb"size (?P<size>[0-9]+)\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*\Z"
)
_NO_LFS_FILTER = (
    "-c",
    "filter.lfs.process=",
    "-c",
    "filter.lfs.smudge=cat",
    "-c",
    "filter.lfs.required=false",
)
_LFS_TIMEOUT_S = 300.0
_LFS_MAX = 1024  # the spec's limit for a pointer file
#: The smallest pointer the expression matches: version, an oid and ``size 0``.
_LFS_MIN = len(b"version https://git-lfs.github.com/spec/v1\noid sha256:\nsize 0\n") + 64
_MAX_DEPTH = 8  # nested submodules inside nested submodules


class _Extras:
    """What ``git archive`` alone would get wrong in a commit: its nested submodules
    (path -> recorded commit) and its Git LFS pointers (path -> pointer bytes)."""

    def __init__(self, nested: dict[str, str], pointers: dict[str, bytes]) -> None:
        self.nested = nested
        self.pointers = pointers

    @classmethod
    def of(cls, repo: Path, commit: str, st: Stage) -> _Extras:
        entries = g.ls_tree(repo, commit, sizes=True)
        return cls.of_listing(entries, g.read_blobs(repo, lfs_candidates(entries)))

    @classmethod
    def of_listing(cls, entries: list[g.TreeEntry], contents: Mapping[str, bytes]) -> _Extras:
        """From a commit's ``ls-tree -r -l`` and the contents of its
        :func:`lfs_candidates` (more blobs may be given)."""
        nested = {e.path: e.oid for e in entries if e.kind == "commit"}
        pointers: dict[str, bytes] = {}
        for entry in entries:
            data = contents.get(entry.oid) if entry.kind == "blob" else None
            if (
                data is not None
                and entry.mode != 0o120000
                and data.startswith(b"version https://git-lfs")
                and _LFS_RE.match(data)
            ):
                pointers[entry.path] = data
        return cls(nested, pointers)


def lfs_candidates(entries: list[g.TreeEntry]) -> list[str]:
    """The blobs of a listing (``ls-tree -l``) that are sized like a Git LFS pointer: the
    only ones whose content must be read to know (a symbolic link is never one)."""
    return [
        e.oid
        for e in entries
        if e.kind == "blob"
        and e.mode != 0o120000
        and (e.size is None or _LFS_MIN <= e.size <= _LFS_MAX)
    ]


def _complete_tar(
    repo: Path,
    commit: str,
    top: str,
    dest: Path,
    *,
    extras: _Extras,
    st: Stage,
    depth: int,
    out: tarfile.TarFile | None = None,
) -> None:
    """A tar of ``commit`` under ``top`` with LFS files smudged and nested submodules
    included, written to ``dest`` (or appended to ``out`` for a nested one)."""
    prefix = f"{top}/" if top else ""
    raw = dest.with_name(f"{dest.name}.{depth}.{commit[:12]}.raw")
    # The LFS filter (git lfs install) would smudge in git archive, or fail without
    # git-lfs: pointers stay pointers here and _smudge handles them, one way everywhere.
    cmd = ["git", "-C", os.fspath(repo), *_NO_LFS_FILTER, "archive", "--format=tar"]
    if prefix:
        cmd.append(f"--prefix={prefix}")
    st.run([*cmd, "-o", os.fspath(raw), commit], env=g.default_git_env(), what="git archive")
    files = _smudge(repo, commit, extras.pointers, st)
    try:
        with contextlib.ExitStack() as stack:
            if out is None:
                out = stack.enter_context(tarfile.open(dest, "w:", format=tarfile.PAX_FORMAT))
            with tarfile.open(raw, "r:") as tar:
                for member in tar:
                    if member.name == "pax_global_header":
                        continue
                    rel = member.name[len(prefix) :].rstrip("/")
                    if rel in files:
                        member.size = len(files[rel])
                        out.addfile(member, io.BytesIO(files[rel]))
                    elif member.isfile():
                        out.addfile(member, tar.extractfile(member))
                    else:
                        out.addfile(member)
            for path, nested_commit in sorted(extras.nested.items()):
                nested_repo = _nested_repo(repo, commit, path, nested_commit, st)
                if depth + 1 > _MAX_DEPTH:
                    st.fail(f"nested submodules deeper than {_MAX_DEPTH} levels at {path}")
                inner = _Extras.of(nested_repo, nested_commit, st)
                _complete_tar(
                    nested_repo,
                    nested_commit,
                    f"{prefix}{path}",
                    dest,
                    extras=inner,
                    st=st,
                    depth=depth + 1,
                    out=out,
                )
                st.note(f"# nested submodule {path} at {nested_commit} included")
    finally:
        raw.unlink(missing_ok=True)


def _nested_repo(repo: Path, commit: str, path: str, nested_commit: str, st: Stage) -> Path:
    """Where the objects of the nested submodule at ``path`` are: its ``modules/<name>``
    repository in the component's git dir, or its own checkout."""
    names = g.submodule_names(repo, commit)
    name = names.get(path, path)
    git_dir = Path(
        g.git(repo, "rev-parse", "--absolute-git-dir", what="git rev-parse")
        .stdout.decode("utf-8", "surrogateescape")
        .strip()
    )
    candidates = [] if g.unsafe_path(name) else [git_dir / "modules" / name]
    if not g.unsafe_path(path):
        candidates.append(repo / path)
    for candidate in candidates:
        if not (candidate / "HEAD").is_file() and not (candidate / ".git").exists():
            continue
        found = g.resolve(candidate, [f"{nested_commit}^{{commit}}"])
        if found and found[0] is not None:
            return candidate
    st.fail(
        f"nested submodule {path} (recorded {nested_commit[:12]}) is not available in "
        f"{repo}: run git -C {repo} submodule update --init --recursive -- {path}"
    )


def _smudge(repo: Path, commit: str, pointers: dict[str, bytes], st: Stage) -> dict[str, bytes]:
    """The files the LFS ``pointers`` stand for, through ``git lfs smudge``."""
    if not pointers:
        return {}
    names = ", ".join(sorted(pointers))
    if shutil.which("git-lfs") is None:
        st.fail(
            f"{names} at {commit[:12]} are Git LFS pointers and git-lfs is not installed: "
            "install it (apt-get install git-lfs / dnf install git-lfs) and run git lfs "
            f"fetch in {repo}, or commit the files themselves"
        )
    files = {}
    for path, pointer in sorted(pointers.items()):
        found = _LFS_RE.match(pointer)
        assert found is not None
        # git lfs smudge downloads an object that is not local: bounded by the stage's
        # timeout (else _LFS_TIMEOUT_S), so a dead LFS server cannot hold the build.
        remaining = st.remaining()
        result = proc.run(
            ["git", "-C", os.fspath(repo), "lfs", "smudge", "--", path],
            input=pointer,
            env=g.default_git_env(),
            check=False,
            timeout=max(1.0, remaining) if remaining is not None else _LFS_TIMEOUT_S,
        )
        data = result.stdout
        if (
            result.returncode != 0
            or result.timed_out
            or hashlib.sha256(data).hexdigest() != found["oid"].decode()
        ):
            st.fail(
                f"Git LFS file {path} at {commit[:12]} is not available in {repo}: run "
                f"git -C {repo} lfs fetch (or git lfs pull) first"
            )
        files[path] = data
        st.note(f"# Git LFS file {path} ({len(data)} bytes) smudged")
    return files
