"""A commit of a repository as plain files, and the environment user commands run in.

User commands (a manifest's ``verify``, the ``command`` pipeline's steps) see the
recorded commit, never a work tree: :func:`write_archive` makes a tarball of the commit
(``git archive``, through :mod:`superbuild.proc`), :func:`unpack` extracts it safely into
a folder, and :func:`export_commit` does both.  :func:`command_env` is their environment:
ours without any ``GIT_*`` variable (:func:`superbuild.git.user_env`), plus layers of
variables such as :func:`package_variables`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild.errors import SuperbuildError

_GZIP_SUFFIXES = (".tar.gz", ".tgz")


def archive_command(
    repo: str | os.PathLike[str], commit: str, tarball: Path, *, prefix: str = ""
) -> list[str]:
    """The ``git archive`` argv writing ``commit`` of ``repo`` to ``tarball``.

    The format follows the name (``.tar.gz``/``.tgz``: gzip, else plain tar); every file
    is under ``prefix/`` when ``prefix`` is given.  For callers that run it themselves
    (with their log, in git's environment: :func:`superbuild.git.default_git_env`).
    """
    fmt = "tar.gz" if tarball.name.endswith(_GZIP_SUFFIXES) else "tar"
    argv = ["git", "-C", os.fspath(repo), "archive", f"--format={fmt}"]
    if prefix:
        argv.append(f"--prefix={prefix}/")
    return [*argv, "-o", os.fspath(Path(tarball).absolute()), commit]  # git -C: not relative


def write_archive(repo: Path, commit: str, tarball: Path, *, prefix: str = "") -> Path:
    """Run :func:`archive_command`; a failure raises :class:`~superbuild.errors.GitError`."""
    argv = archive_command(repo, commit, tarball, prefix=prefix)
    g.git(repo, *argv[3:], what=f"git archive {commit[:12]}")
    return tarball


def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse a name that would land outside the folder (for Pythons without filters)."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise SuperbuildError(f"refusing to unpack {member.name!r}: outside the target folder")


def unpack(tarball: Path, dest: Path, *, prefix: str = "") -> Path:
    """Extract ``tarball`` (plain or gzip) so that its ``prefix/`` folder becomes ``dest``.

    ``dest`` is replaced if it exists.  Safe against hostile names: members that would
    land outside the folder (absolute, ``..``) are refused; symlinks are kept as they
    are, wherever they point (``tarfile``'s ``tar`` filter: a repository may hold any).
    An empty commit (git writes no folder for it) gives an empty ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.unpack-"))
    try:
        try:
            with tarfile.open(tarball, "r:*") as tar:
                if hasattr(tarfile, "tar_filter"):
                    tar.extractall(scratch, filter="tar")
                else:  # pragma: no cover - Python without extraction filters (< 3.10.12)
                    members = tar.getmembers()
                    for member in members:
                        _check_member(member)
                    tar.extractall(scratch, members)
        except tarfile.TarError as exc:  # FilterError (a name outside) is one
            raise SuperbuildError(f"cannot unpack {tarball}: {exc}") from None
        top = scratch / prefix if prefix else scratch
        top.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        top.rename(dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


def export_commit(repo: Path, commit: str, dest: Path) -> Path:
    """The files of ``commit`` of ``repo`` in the folder ``dest`` (replaced if it exists)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.export-") as tmp:
        tarball = write_archive(repo, commit, Path(tmp) / "export.tar")
        return unpack(tarball, dest)


def package_variables(name: str, path: str, commit: str, src: Path) -> dict[str, str]:
    """The ``SUPERBUILD_*`` variables every user command of a package gets."""
    return {
        "SUPERBUILD_PACKAGE": name,
        "SUPERBUILD_COMMIT": commit,
        "SUPERBUILD_PATH": path,
        "SUPERBUILD_SRC": os.fspath(src),
    }


def command_env(
    *layers: Mapping[str, str] | Iterable[tuple[str, str]],
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a user's command: ``base`` (default ``os.environ``) without any
    ``GIT_*`` variable, then each layer in order (a later one wins).

    E.g. ``command_env(ctx.env, package.env, package_variables(...))``.
    """
    env = g.user_env(base)
    for layer in layers:
        env.update(layer)
    return env
