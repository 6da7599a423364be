"""What git tells a pre-push hook, and what a push would publish.

Git runs the hook with the remote's name and URL as arguments and one line per ref on
stdin::

    <local ref> SP <local sha> SP <remote ref> SP <remote sha> LF

:func:`parse_refs` reads those lines (the caller reads all of stdin first: a child that
inherited it could eat them, the bug of a shell ``while read`` loop);
:func:`pre_commit_refs` reads the ``PRE_COMMIT_*`` variables pre-commit sets instead.
:func:`pushed_commits` lists the superproject commits a ref publishes, with the gitlinks
each one sets, in one ``git log``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from superbuild import git as g
from superbuild.errors import SuperbuildError, UsageError


def _is_zero(oid: str) -> bool:
    return set(oid) == {"0"}


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One line of the pre-push protocol."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def deletion(self) -> bool:
        return _is_zero(self.local_sha)

    @property
    def new(self) -> bool:
        return _is_zero(self.remote_sha)

    @property
    def name(self) -> str:
        """How lines about this ref name it: the remote ref (what the push changes)."""
        return self.remote_ref or self.local_ref


def parse_refs(data: bytes) -> list[RefUpdate]:
    """Parse git's pre-push stdin (every line; blank lines are ignored)."""
    refs = []
    for number, raw in enumerate(data.decode("utf-8", "surrogateescape").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        parts = line.rsplit(maxsplit=3)
        if len(parts) != 4 or not all(g.is_oid(p) for p in (parts[1], parts[3])):
            raise UsageError(
                f"stdin line {number}: expected '<local ref> <local sha> <remote ref> <remote sha>' "
                f"(as git gives a pre-push hook), got {line[:120]!r}"
            )
        refs.append(RefUpdate(*parts))
    return refs


def pre_commit_refs(repo: Path, environ: Mapping[str, str]) -> list[RefUpdate]:
    """The ref pre-commit describes in ``PRE_COMMIT_*`` variables (it keeps git's stdin).

    pre-commit passes its hooks neither git's arguments nor its stdin: it reads them,
    picks the first ref with something to push and exports ``PRE_COMMIT_FROM_REF``/
    ``PRE_COMMIT_TO_REF`` (absent when the whole history is new),
    ``PRE_COMMIT_LOCAL_BRANCH``, ``PRE_COMMIT_REMOTE_BRANCH`` and
    ``PRE_COMMIT_REMOTE_NAME``.
    """
    to_ref = environ.get("PRE_COMMIT_TO_REF") or ""
    from_ref = environ.get("PRE_COMMIT_FROM_REF") or ""
    local_branch = environ.get("PRE_COMMIT_LOCAL_BRANCH") or ""
    if not (to_ref or local_branch):
        return []
    local = g.rev_commit(repo, to_ref or local_branch, "PRE_COMMIT_TO_REF")
    remote = g.rev_commit(repo, from_ref, "PRE_COMMIT_FROM_REF") if to_ref and from_ref else ""
    return [
        RefUpdate(
            local_branch or to_ref,
            local,
            environ.get("PRE_COMMIT_REMOTE_BRANCH") or local_branch or to_ref,
            remote or "0" * len(local),
        )
    ]


@dataclass(frozen=True, slots=True)
class PushedCommit:
    """A superproject commit a push publishes, and the gitlinks it sets (vs first parent)."""

    oid: str
    parents: tuple[str, ...]
    gitlinks: tuple[tuple[str, str], ...]  # (path, recorded commit)


def parse_log(data: bytes) -> list[PushedCommit]:
    """Parse ``git log -z --raw --format=tformat:%x01%H %P`` output."""
    commits: list[PushedCommit] = []
    fields = data.split(b"\0")
    oid = ""
    parents: tuple[str, ...] = ()
    links: list[tuple[str, str]] = []
    i = 0

    def flush() -> None:
        if oid:
            commits.append(PushedCommit(oid, parents, tuple(links)))

    while i < len(fields):
        token = fields[i].lstrip(b"\n")
        i += 1
        if token.startswith(b"\x01"):
            flush()
            words = token[1:].decode().split()
            oid, parents, links = words[0], tuple(words[1:]), []
        elif token.startswith(b":"):
            meta = token[1:].split(b" ")
            path = g.tree_path(fields[i])
            i += 1
            if len(meta) == 5 and int(meta[1], 8) == g.GITLINK:
                links.append((path, meta[3].decode()))
        elif token:
            raise SuperbuildError(f"unexpected git log output: {token[:80]!r}")
    flush()
    return commits


def pushed_commits(repo: Path, tip: str, exclude: Sequence[str]) -> list[PushedCommit]:
    """Commits reachable from ``tip`` but not from ``exclude`` (revisions or pseudo-options
    such as ``--remotes=origin``), oldest first, in one ``git log``."""
    out = g.git(
        repo,
        "log",
        "-z",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--no-ext-diff",
        "--diff-merges=first-parent",
        "--root",
        "--topo-order",
        "--reverse",
        "--format=tformat:%x01%H %P",
        tip,
        "--not",
        *exclude,
    ).stdout
    return parse_log(out)


def remote_exclusions(repo: Path, remote: str) -> list[str]:
    """What counts as published already: the remote-tracking branches of ``remote`` when it
    is a configured remote (as pre-commit does), nothing when it is a URL (fail-closed: the
    whole history the push sends is checked)."""
    if remote and not remote.startswith("-"):
        found = g.git(repo, "config", "--get", f"remote.{remote}.url", check=False)
        if found.returncode == 0:
            return [f"--remotes={remote}"]
    return []
