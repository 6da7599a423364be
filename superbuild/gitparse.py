"""git's environment and the parsing of its output: paths from trees, ``diff-tree --raw``
records, gitlinks.

Pure functions over bytes, importing nothing that starts processes, so that the lean
``changed`` path (:mod:`superbuild.fastchanged`) parses git's output with the very code
the general path uses (:mod:`superbuild.git` re-exports them).
"""

from __future__ import annotations

from superbuild.errors import GitError
from superbuild.gitenv import git_env

__all__ = [  # git_env lives in gitenv (only os): the lean path starts git before the rest
    "DIFF_TREE",
    "RawChange",
    "decode_path",
    "git_env",
    "parse_gitlinks",
    "parse_raw_diff",
    "tree_path",
    "unsafe_path",
]

TYPE_CHECKING = False  # no typing import: this module is on changed's lean path
if TYPE_CHECKING:
    from typing import NamedTuple

#: ``git diff-tree`` as change detection asks it (both ``changed`` paths: the same records).
DIFF_TREE = (
    "diff-tree",
    "-r",
    "-z",
    "--raw",
    "--no-renames",
    "--no-ext-diff",
    "--ignore-submodules=none",
)

_UNSAFE_PARTS = frozenset(("", ".", ".."))


def decode_path(raw: bytes) -> str:
    """Git paths are bytes; keep undecodable bytes round-trippable."""
    return raw.decode("utf-8", "surrogateescape")


def unsafe_path(path: str) -> bool:
    """Whether a path recorded in a tree would leave (or reach into the git folder of) the
    repository: absolute, or with an empty, ``.``, ``..`` or ``.git`` component."""
    if not path or path[0] == "/":
        return True
    if "/" not in path and "." not in path:
        return False  # the common case: a plain name
    return any(part in _UNSAFE_PARTS or part.lower() == ".git" for part in path.split("/"))


def tree_path(raw: bytes) -> str:
    """A path from a git tree (ls-tree, diff-tree, log --raw), refused when it is unsafe.

    Commits are untrusted input: a crafted tree can record ``repos/../../victim``, which
    git itself would never check out, but which would lead superbuild outside the
    superproject.
    """
    path = decode_path(raw)
    if unsafe_path(path):
        raise GitError(
            f"a commit records the path {path!r}, which leaves the repository "
            "(absolute, or an empty, '.', '..' or '.git' component): refused"
        )
    return path


if TYPE_CHECKING:

    class RawChange(NamedTuple):
        """One record of ``git diff-tree -r -z --raw``."""

        old_mode: int
        new_mode: int
        old_oid: str
        new_oid: str
        status: str  # A D M T (R C U X with a score when rename detection is on)
        path: str
        old_path: str | None = None  # set for R and C records

else:  # the same fields, without importing typing
    from collections import namedtuple

    RawChange = namedtuple(
        "RawChange",
        ["old_mode", "new_mode", "old_oid", "new_oid", "status", "path", "old_path"],
        defaults=(None,),
    )


def parse_raw_diff(data: bytes) -> list[RawChange]:
    """Parse NUL-separated ``--raw`` output (``diff-tree -r -z`` with two trees).

    Each record is ``:<old mode> <new mode> <old oid> <new oid> <status>\\0<path>\\0``;
    rename and copy records carry a second path.
    """
    fields = data.split(b"\0")
    changes: list[RawChange] = []
    i = 0
    n = len(fields)
    while i < n:
        head = fields[i]
        if not head:
            i += 1
            continue
        if not head.startswith(b":"):
            raise GitError(f"unexpected diff-tree output: {head[:80]!r}")
        parts = head[1:].split(b" ")
        if len(parts) != 5 or i + 1 >= n:
            raise GitError(f"unexpected diff-tree record: {head[:80]!r}")
        old_mode, new_mode, old_oid, new_oid, status = parts
        letter = status[:1].decode()
        if letter in ("R", "C"):
            if i + 2 >= n:
                raise GitError(f"truncated diff-tree record: {head[:80]!r}")
            old_path: str | None = tree_path(fields[i + 1])
            path = tree_path(fields[i + 2])
            i += 3
        else:
            old_path = None
            path = tree_path(fields[i + 1])
            i += 2
        changes.append(
            RawChange(
                int(old_mode, 8),
                int(new_mode, 8),
                old_oid.decode(),
                new_oid.decode(),
                letter,
                path,
                old_path,
            )
        )
    return changes


def parse_gitlinks(out: bytes) -> dict[str, str]:
    """Every gitlink (path -> recorded commit) of ``git ls-tree -r -z --full-tree`` output;
    records that are not gitlinks are skipped unparsed."""
    links: dict[str, str] = {}
    for record in out.split(b"\0"):
        if record.startswith(b"160000 commit "):
            meta, _, raw_path = record.partition(b"\t")
            links[tree_path(raw_path)] = meta[14:].decode()
    return links
