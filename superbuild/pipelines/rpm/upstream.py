"""Source archives that ``git archive`` of the recorded commit does not make.

``archive: {command: ...}`` (Packit's ``create-archive``, DLRN's sdist)
    The project's own tool makes the archive: :func:`run_archive_command` runs it in a
    clone of the component (``git clone --shared``: cheap, and with every branch and
    tag, which pbr, setuptools-scm and ``make dist`` read) checked out at the recorded
    commit, with stdin closed, its own process group, the stage timeout and the
    manifest's ``env``.  It must write exactly one file into ``$SUPERBUILD_ARCHIVE_DIR``;
    that file becomes Source0 (renamed to Source0's name).

``archive: {upstream: TAG_OR_GLOB, patches: per-commit|single}`` (GEAR style)
    The pristine upstream tarball is ``git archive`` of the tag (the exact tag, or the
    nearest tag matching the glob that the recorded commit descends from); the commits
    after it, minus the packaging files (the spec and the sources committed next to
    it), become ``git format-patch`` patches (one per commit, or one ``git diff`` with
    ``patches: single``), added to the SRPM and to the spec as numbered ``Patch`` tags
    after its own; the spec's ``%prep`` must apply them (``%autosetup -p1`` or
    ``%autopatch``), which is checked on rpm's expansion.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from superbuild import git as g
from superbuild.export import package_variables
from superbuild.pipelines.api import BuildContext
from superbuild.pipelines.stage import Stage, build_env

ARCHIVE_DIR_VAR = "SUPERBUILD_ARCHIVE_DIR"


def run_archive_command(ctx: BuildContext, st: Stage, commit: str, work: Path) -> Path:
    """Run the manifest's archive command; the one file it wrote."""
    pkg = ctx.package
    clone = work / "archive-clone"
    out = work / "archive-out"
    for folder in (clone, out):
        if folder.exists():
            shutil.rmtree(folder)
    out.mkdir(parents=True)
    git_env = g.default_git_env()
    st.run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", os.fspath(ctx.source_repo), clone],
        env=git_env,
        what="git clone --shared",
    )
    st.run(
        ["git", "-C", clone, "checkout", "--quiet", "--detach", commit],
        env=git_env,
        what="git checkout",
    )
    env = build_env(
        ctx,
        {**package_variables(pkg.name, pkg.path, commit, clone), ARCHIVE_DIR_VAR: os.fspath(out)},
    )
    st.run(pkg.archive_command, cwd=clone, env=env, what="the archive command")
    written = sorted(out.iterdir())
    files = [p for p in written if p.is_file() and not p.is_symlink()]
    if len(files) != 1 or len(written) != 1:
        names = ", ".join(p.name for p in written) or "nothing"
        st.fail(
            f"the archive command of {pkg.manifest} must write exactly one file into "
            f"${ARCHIVE_DIR_VAR}; it wrote {names}"
        )
    st.note(f"# the archive command wrote {files[0].name}")
    shutil.rmtree(clone, ignore_errors=True)
    return files[0]


def top_folders(archive: Path) -> set[str]:
    """The first path components of an archive's members (tar of any compression, zip)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
    else:
        with tarfile.open(archive, "r:*") as tar:
            names = [m.name for m in tar if m.name != "pax_global_header"]
    return {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}


def upstream_tag(repo: Path, commit: str, pattern: str) -> tuple[str, str] | None:
    """(tag, its commit) for ``archive.upstream``: the exact tag, else the nearest tag
    matching the glob that ``commit`` descends from; None if there is none."""
    exact = g.resolve(repo, [f"refs/tags/{pattern}^{{commit}}"])
    tag: str | None = pattern if exact and exact[0] is not None else None
    if tag is None:
        found = g.git(
            repo,
            "describe",
            "--tags",
            "--abbrev=0",
            f"--match={pattern}",
            commit,
            check=False,
            what="git describe",
        )
        if found.returncode != 0:
            return None
        tag = found.stdout.decode("utf-8", "surrogateescape").strip()
    resolved = g.resolve(repo, [f"refs/tags/{tag}^{{commit}}"])
    if not resolved or resolved[0] is None:
        return None
    return tag, resolved[0][0]


def is_ancestor(repo: Path, ancestor: str, commit: str) -> bool:
    result = g.git(repo, "merge-base", "--is-ancestor", ancestor, commit, check=False)
    return result.returncode == 0


def make_patches(
    repo: Path,
    base: str,
    commit: str,
    *,
    exclude: Sequence[str],
    single_name: str | None,
    dest: Path,
) -> list[str]:
    """Patches from ``base`` to ``commit`` without the ``exclude`` paths, written into
    ``dest`` (a folder of their own): one per commit (``git format-patch``), or one
    ``single_name`` diff."""
    pathspec = ["--", ".", *(f":(exclude,literal){path}" for path in exclude)]
    if single_name is not None:
        diff = g.git(
            repo,
            "diff-tree",
            "-p",
            "--binary",
            "--full-index",
            base,
            commit,
            *pathspec,
            what="git diff-tree",
        ).stdout
        if not diff:
            return []
        (dest / single_name).write_bytes(diff)
        return [single_name]
    g.git(
        repo,
        "format-patch",
        "--quiet",
        "--no-signature",
        "--no-stat",
        "--zero-commit",
        "--full-index",
        "--binary",
        "-N",
        "-o",
        os.fspath(dest),
        f"{base}..{commit}",
        *pathspec,
        what="git format-patch",
    )
    return sorted(p.name for p in dest.glob("*.patch"))
