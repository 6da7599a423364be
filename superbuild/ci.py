"""What CI needs besides change detection: GitHub outputs and the green refs (docs/ci.md).

The last green commit of a branch is the ref ``refs/superbuild/green/<branch>`` in git
itself (CI machines are ephemeral: a local build state would be gone by the next run).
:func:`mark_green` records it (and pushes it); :func:`resolve_green` reads it for
``--base green``, fetching it from :data:`GREEN_REMOTE` when it is not local.

This module sits just above :mod:`superbuild.git`: :mod:`superbuild.changes` resolves
``--base green`` through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from superbuild import git as g
from superbuild.errors import GitError, UsageError

#: The ``--base`` value that means the last green commit of the branch.
GREEN = "green"
GREEN_PREFIX = "refs/superbuild/green/"
#: Where ``--base green`` fetches the ref from when it is not local.
GREEN_REMOTE = "origin"
#: Variables CI systems name the branch in (a detached checkout has no branch).
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")


# --------------------------------------------------------------------------- GitHub outputs


def github_output(affected: Sequence[str], waves: Sequence[Sequence[str]]) -> list[str]:
    """``key=value`` lines for ``$GITHUB_OUTPUT`` (values are one-line JSON)."""
    import json

    return [
        f"packages={json.dumps(list(affected))}",
        f"waves={json.dumps([list(w) for w in waves])}",
        f"any={'true' if affected else 'false'}",
    ]


def append_github_output(
    lines: Sequence[str], environ: Mapping[str, str] | None = None
) -> Path | None:
    """Append ``lines`` to the file ``$GITHUB_OUTPUT`` names: that file, None if unset."""
    target = (os.environ if environ is None else environ).get("GITHUB_OUTPUT")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as fh:  # noqa: PTH123 - append
        fh.write("".join(f"{line}\n" for line in lines))
    return Path(target)


# --------------------------------------------------------------------------- green refs


def current_branch(repo: Path) -> str | None:
    """The branch being built: the checked-out one, else what CI says it builds."""
    result = g.git(repo, "symbolic-ref", "--short", "-q", "HEAD", check=False)
    name = result.stdout.decode().strip()
    if name:
        return name
    for var in BRANCH_VARIABLES:
        if os.environ.get(var):
            return os.environ[var]
    return None


def green_ref(branch: str) -> str:
    return GREEN_PREFIX + branch


def resolve_green(repo: Path) -> tuple[str | None, str | None]:
    """The last green commit of the current branch (fetched if not local), or a warning."""
    branch = current_branch(repo)
    if branch is None:
        return None, (
            "--base green: cannot tell the branch (detached HEAD): comparing with head's "
            "first parent"
        )
    ref = green_ref(branch)
    [found] = g.resolve(repo, [f"{ref}^{{commit}}"])
    if found is None:
        # Ephemeral CI machines: the ref lives on the remote (superbuild mark-green --push).
        g.git(repo, "fetch", "-q", GREEN_REMOTE, f"+{ref}:{ref}", check=False)
        [found] = g.resolve(repo, [f"{ref}^{{commit}}"])
    if found is None:
        return None, (
            f"--base green: no green commit recorded for branch {branch!r} ({ref}): "
            "comparing with head's first parent"
        )
    return found[0], None


class Marked(NamedTuple):
    """What :func:`mark_green` recorded."""

    ref: str
    commit: str
    pushed_to: str | None


def mark_green(
    repo: Path, head: str = "HEAD", *, branch: str | None = None, push: str | None = None
) -> Marked:
    """Record ``head`` as the last green commit of ``branch`` (default: the current one).

    With ``push`` (a remote), the commit is pushed to the remote's ref first, and the
    local ref moves only once the remote took it: a refused push leaves both as they
    were and raises :class:`~superbuild.errors.GitError` with git's whole message.
    """
    commit = g.rev_commit(repo, head, "--head revision")
    branch = branch or current_branch(repo)
    if not branch:
        raise UsageError("mark-green: cannot tell the branch (detached HEAD): pass --branch NAME")
    ref = green_ref(branch)
    if g.git(repo, "check-ref-format", ref, check=False).returncode != 0:
        raise UsageError(f"mark-green: {branch!r} is not a valid branch name")
    if push:
        done = g.git(repo, "push", "-q", "--", push, f"+{commit}:{ref}", check=False)
        if not done.ok:
            said = [line.rstrip() for line in done.stderr.decode(errors="replace").splitlines()]
            raise GitError(
                f"mark-green: git push {push} {ref} failed (exit {done.returncode}); "
                f"{ref} was not moved; git said:",
                *(f"  {line}" for line in said if line.strip()),
            )
    g.git(repo, "update-ref", "-m", "superbuild mark-green", ref, commit)
    return Marked(ref, commit, push or None)
