"""Git plumbing: one small function per question.

Everything that scales with the number of submodules or manifests goes through a
single git process (``diff-tree -r -z``, ``ls-tree -r -z``, ``cat-file --batch``);
paths are read NUL-separated and never unquoted.  GitPython is not imported here:
its object layer costs a process or a tree scan per submodule and 100 ms to import.

Two environments, one policy each: :func:`git_env` for superbuild's own git commands
(drops what points git at another repository, keeps what configures it) and
:func:`user_env` for a user's command (drops every ``GIT_*``: run from a hook, it must
not inherit ``GIT_DIR``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from superbuild import gitparse, proc
from superbuild.errors import GitError
from superbuild.gitenv import repository_top

# The parsers live in superbuild.gitparse (importable without processes); this module
# keeps their names.
RawChange = gitparse.RawChange
decode_path = gitparse.decode_path
parse_raw_diff = gitparse.parse_raw_diff
tree_path = gitparse.tree_path
unsafe_path = gitparse.unsafe_path
git_env = gitparse.git_env

GITLINK = 0o160000
TREE = 0o040000
ZERO_OID = "0" * 40
EMPTY_TREE = {
    40: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    64: "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}


def user_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's command (``verify``, build steps): ``base`` (default
    ``os.environ``) without any ``GIT_*`` variable.

    Run from a git hook, superbuild inherits ``GIT_DIR`` and friends: a user's command
    must not, or its own git commands would work on the superproject.
    """
    env = os.environ if base is None else base
    return {k: v for k, v in env.items() if not k.startswith("GIT_")}


_ENV: dict[str, str] | None = None


def default_git_env() -> dict[str, str]:
    """:func:`git_env` of this process's environment, computed once (do not modify it)."""
    global _ENV  # noqa: PLW0603 - computed once per process
    if _ENV is None:
        _ENV = git_env()
    return _ENV


def git(
    repo: str | os.PathLike[str],
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    what: str | None = None,
) -> proc.Completed:
    """Run ``git -C repo args...``; failures raise :class:`GitError`."""
    try:
        return proc.run(
            ["git", "-C", os.fspath(repo), *args],
            env=default_git_env(),
            input=input,
            check=check,
            what=what or f"git {args[0]}",
        )
    except proc.ProcessError as exc:
        raise GitError(*exc.lines) from None


def is_oid(text: str) -> bool:
    """True for a full object id (40 or 64 lowercase hex digits)."""
    return len(text) in (40, 64) and not text.strip("0123456789abcdef")


def short_oid(oid: str | None, missing: str = "-") -> str:
    """An object id as people read it (7 digits); ``missing`` when there is none."""
    return oid[:7] if oid else missing


#: The line of a command's stderr that says why it failed (see :func:`proc.reason_line`).
first_line = proc.reason_line


# --------------------------------------------------------------------------- locating


def find_toplevel(start: str | os.PathLike[str]) -> Path:
    """The top of the work tree (or the git dir of a bare repository) containing ``start``."""
    here = Path(start).resolve()
    if not here.exists():
        raise GitError(f"{os.fspath(start)}: no such directory")
    found = repository_top(os.fspath(here))  # a bare repository too (CI mirrors)
    if found is not None:
        return Path(found[0])
    raise GitError(
        f"{here} is not in a git repository: run superbuild inside the superproject or use -C DIR"
    )


def git_dir(top: Path) -> Path:
    """The git directory of a work tree found by :func:`find_toplevel` (follows ``.git`` files)."""
    dot = top / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        text = dot.read_text(encoding="utf-8", errors="surrogateescape").strip()
        if text.startswith("gitdir:"):
            target = Path(text[len("gitdir:") :].strip())
            return target if target.is_absolute() else (top / target).resolve()
    return top  # bare repository


# --------------------------------------------------------------------------- revisions


def resolve(repo: Path, specs: Sequence[str]) -> list[tuple[str, str] | None]:
    """Resolve revision expressions in one ``cat-file --batch-check``: (oid, type) or None."""
    if not specs:
        return []
    for spec in specs:
        if "\n" in spec:
            raise GitError(f"invalid revision {spec!r}")
    out = git(
        repo,
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        input="".join(f"{s}\n" for s in specs).encode(),
    ).stdout.decode("utf-8", "replace")
    result: list[tuple[str, str] | None] = []
    for spec, line in zip(specs, out.splitlines(), strict=True):
        if line in (f"{spec} missing", f"{spec} ambiguous"):
            result.append(None)
            continue
        oid, _, kind = line.partition(" ")
        result.append((oid, kind))
    return result


def rev_commit(repo: Path, rev: str, option: str = "revision") -> str:
    """The commit a revision names, or a :class:`GitError` naming it."""
    [found] = resolve(repo, [f"{rev}^{{commit}}"])
    if found is None:
        raise GitError(
            f"unknown {option} {rev!r}: no such commit in {repo} "
            "(check the name, or fetch it: git fetch origin)"
        )
    return found[0]


def merge_base(repo: Path, a: str, b: str) -> str:
    result = git(repo, "merge-base", a, b, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise GitError(
            f"no common ancestor between {a[:12]} and {b[:12]}: pass a --base that shares history with --head"
        )
    return result.stdout.decode().split()[0]


# --------------------------------------------------------------------------- trees


def empty_tree(commit: str) -> str:
    return EMPTY_TREE[len(commit)]


def diff_trees(repo: Path, old: str | None, new: str) -> list[RawChange]:
    """Net changes between two commits (``old`` None: everything in ``new`` is added)."""
    out = git(repo, *gitparse.DIFF_TREE, old or empty_tree(new), new).stdout
    return parse_raw_diff(out)


class TreeEntry(NamedTuple):
    mode: int
    kind: str
    oid: str
    path: str
    size: int | None = None  # a blob's size, from ``ls-tree -l`` (None: not asked, or no blob)


def parse_ls_tree(data: bytes) -> list[TreeEntry]:
    """Parse ``git ls-tree -z`` output: ``<mode> SP <type> SP <oid> TAB <path>\\0``, and
    with ``-l`` the blob's size (``-`` for others) padded before the TAB."""
    entries = []
    for record in data.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid, *rest = meta.split()
        size = int(rest[0]) if rest and rest[0].isdigit() else None
        entries.append(
            TreeEntry(int(mode, 8), kind.decode(), oid.decode(), tree_path(raw_path), size)
        )
    return entries


def ls_tree(
    repo: Path, treeish: str, *, recursive: bool = True, sizes: bool = False
) -> list[TreeEntry]:
    """The entries of ``treeish`` (every file with ``recursive``; with ``sizes``, each
    blob's size too), in one process."""
    args = ["ls-tree", "-z", "--full-tree"]
    if recursive:
        args.append("-r")
    if sizes:
        args.append("-l")
    return parse_ls_tree(git(repo, *args, treeish).stdout)


def gitlinks(repo: Path, commit: str) -> dict[str, str]:
    """Every gitlink (submodule path -> recorded commit) in ``commit``, one process.

    On the hot path of ``changed``: records that are not gitlinks are skipped unparsed.
    """
    return gitparse.parse_gitlinks(git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).stdout)


def read_blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Read many blobs through one ``git cat-file --batch``."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    out = git(repo, "cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode()).stdout
    blobs: dict[str, bytes] = {}
    pos = 0
    for oid in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode()
        pos = end + 1
        if header.endswith(" missing"):
            raise GitError(f"object {oid} is missing from {repo}")
        size = int(header.rsplit(" ", 1)[1])
        blobs[oid] = out[pos : pos + size]
        pos += size + 1  # the content is followed by a newline
    return blobs


def submodule_names(repo: Path, commit: str) -> dict[str, str]:
    """``.gitmodules`` of ``commit``: submodule path -> submodule name (empty if none)."""
    result = git(
        repo,
        "config",
        "-z",
        "--blob",
        f"{commit}:.gitmodules",
        "--get-regexp",
        r"^submodule\..*\.path$",
        check=False,
    )
    if result.returncode != 0:
        return {}
    names: dict[str, str] = {}
    for record in result.stdout.split(b"\0"):
        if not record:
            continue
        key, _, value = record.partition(b"\n")
        name = decode_path(key)[len("submodule.") : -len(".path")]
        names[decode_path(value)] = name
    return names
