"""Facts about submodules, one definition each.

- :func:`initialized`: the submodule's folder has a repository of its own (else git,
  run there, would silently use the superproject's);
- :func:`published`: which of some commits of a submodule are published (on a
  remote-tracking branch or a tag, or on what the submodule's URL advertises);
- :func:`remote_url`: where a submodule comes from (the superproject's configuration);
- :func:`superproject_of`: whether a repository is itself a submodule, and of what.

No dataclasses here: :mod:`superbuild.changes` (the hot path of ``changed``) uses
:func:`initialized`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from superbuild import git as g


def initialized(work_tree: Path) -> bool:
    """Whether the submodule checked out at ``work_tree`` has its own repository.

    A ``.git`` folder or file (what ``git submodule update --init`` makes), or the layout
    of a bare repository.  An uninitialized submodule is an empty folder (or none).
    """
    if (work_tree / ".git").exists():
        return True
    return (work_tree / "HEAD").is_file() and (work_tree / "objects").is_dir()


Status = Literal["ok", "unpublished", "unknown"]


class Published(NamedTuple):
    """What :func:`published` found for the commits of one submodule."""

    #: commit -> ok (published), unpublished (only local), unknown (not in the repository)
    statuses: dict[str, Status]
    #: why the remote could not be listed (``url`` given): git's reason, else None
    error: str | None = None
    url: str | None = None


#: The refs whose history counts as published, for ``status`` and the pre-push hook
#: alike: remote-tracking branches and tags (``git rev-list ... --not`` these).
PUBLISHED_REFS = ("--remotes", "--tags")


def published(sub: Path, commits: Sequence[str], url: str | None = None) -> Published:
    """Classify ``commits`` of the initialized submodule ``sub`` (two or three git processes).

    Without ``url``: published = reachable from a remote-tracking branch or a tag.  With
    ``url`` (``--remote-check``): published = a tip ``git ls-remote URL`` advertises, or an
    ancestor of an advertised tip that is present locally.
    """
    statuses: dict[str, Status] = {}
    tips: set[str] = set()
    if url is not None:
        listing = g.git(sub, "ls-remote", "--", url, check=False)
        if listing.returncode != 0:
            reason = g.first_line(listing.stderr) or f"git ls-remote exited {listing.returncode}"
            return Published(statuses, reason, url)
        tips = {line.split()[0] for line in listing.stdout.decode().splitlines() if line.strip()}
    found = g.resolve(sub, [f"{c}^{{commit}}" for c in commits])
    present = [c for c, f in zip(commits, found, strict=True) if f is not None]
    for commit, hit in zip(commits, found, strict=True):
        if hit is None:
            statuses[commit] = "ok" if commit in tips else "unknown"
    if not present:
        return Published(statuses, None, url)
    if url is None:
        exclude_args = ["--not", *PUBLISHED_REFS]
        stdin = "".join(f"{c}\n" for c in present)
    else:
        ordered = sorted(tips)
        here = g.resolve(sub, [f"{t}^{{commit}}" for t in ordered])
        local_tips = [t for t, f in zip(ordered, here, strict=True) if f is not None]
        exclude_args = []
        stdin = "".join(f"{c}\n" for c in present) + "".join(f"^{t}\n" for t in local_tips)
    out = g.git(sub, "rev-list", "--stdin", *exclude_args, input=stdin.encode()).stdout
    unreachable = set(out.decode().split())
    for commit in present:
        statuses[commit] = "unpublished" if commit in unreachable and commit not in tips else "ok"
    return Published(statuses, None, url)


def remote_url(repo: Path, sub: Path, name: str | None) -> str | None:
    """The submodule's URL: the superproject's ``submodule.<name>.url``, else its origin."""
    if name:
        found = g.git(repo, "config", "--get", f"submodule.{name}.url", check=False)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.decode().strip()
    found = g.git(sub, "remote", "get-url", "origin", check=False)
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.decode().strip()
    return None


def superproject_of(repo: Path) -> tuple[Path, str] | None:
    """(the superproject's work tree, the submodule's path in it) when ``repo`` is a
    checked-out submodule, else None.  One git process: ask it on error paths only."""
    found = g.git(repo, "rev-parse", "--show-superproject-working-tree", check=False)
    text = found.stdout.decode("utf-8", "surrogateescape").strip()
    if found.returncode != 0 or not text:
        return None
    top = Path(text)
    try:
        path = repo.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        path = repo.name
    return top, path
