"""The git pre-push hook: install it, and check what a push would publish.

``superbuild hook install`` writes :func:`hook_script` (the same text as ``hooks/pre-push``
in the source tree, with the interpreter filled in) into the hooks directory git uses
(``git rev-parse --git-path hooks``: honours ``core.hooksPath``).  Git runs it with the
remote's name and URL as arguments and one line per ref on stdin::

    <local ref> SP <local sha> SP <remote ref> SP <remote sha> LF

:func:`parse_refs` reads those lines (all of them, before anything else runs: a child
that inherited stdin could eat them, the bug of a shell ``while read`` loop), and
:func:`check_push` examines the superproject commits each ref would publish:

1. every gitlink those commits record (and, fail-closed, every gitlink of each pushed
   tip) must name a commit that is reachable from a remote-tracking branch or a tag of
   the initialized submodule (``--remote-check``: from what the submodule's URL
   advertises); a commit the submodule does not have at all is refused;
2. the tip's manifests must be valid and claim every changed gitlink;
3. the ``verify`` command of every package whose gitlink or manifest changed must pass,
   in a clean export of the recorded commit.

Gitlinks moving backwards or sideways (:func:`superbuild.changes.direction`) are warnings.  Every git command and every
``verify`` runs with stdin closed (:mod:`superbuild.proc`).
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from superbuild import git as g
from superbuild import proc
from superbuild.changes import (
    Change,
    ChangeSet,
    Range,
    detect,
    direction,
    gitlink_changes,
    resolve_range,
)
from superbuild.errors import GitError, ManifestError, SuperbuildError, UsageError
from superbuild.package import Package

HOOK_NAME = "pre-push"
#: The line that makes a hook file ours: install replaces it, uninstall removes it.
MARKER = "# superbuild-managed-hook: pre-push"
#: Where ``install --force`` keeps a hook superbuild did not write (uninstall restores it).
BACKUP_SUFFIX = ".before-superbuild"
#: ``SUPERBUILD_SKIP_HOOK=1`` skips the checks (as ``git push --no-verify`` does).
SKIP_VARIABLE = "SUPERBUILD_SKIP_HOOK"

_PYTHON_LINE = "INSTALL_PYTHON="

_TEMPLATE = """\
#!/bin/sh
# superbuild-managed-hook: pre-push
# The git pre-push hook of superbuild (docs/hooks.md): refuses a push whose superproject
# commits record unpublished submodule commits, invalid manifests or failing `verify`s.
# `superbuild hook install` writes this file with INSTALL_PYTHON set to the interpreter
# superbuild runs with (so an unactivated virtualenv works); `superbuild hook uninstall`
# removes it.  Bypass once: SUPERBUILD_SKIP_HOOK=1 git push ...  (or git push --no-verify)
INSTALL_PYTHON=''

if [ "${SUPERBUILD_SKIP_HOOK:-}" = 1 ]; then
    echo "superbuild: SUPERBUILD_SKIP_HOOK=1: pre-push checks skipped" >&2
    exit 0
fi
if [ -n "$INSTALL_PYTHON" ] && [ -x "$INSTALL_PYTHON" ]; then
    exec "$INSTALL_PYTHON" -m superbuild hook run "$@"
fi
if command -v superbuild >/dev/null 2>&1; then
    if [ -n "$INSTALL_PYTHON" ]; then
        echo "superbuild: $INSTALL_PYTHON not found: using superbuild from PATH" \\
            "(reinstall the hook: superbuild hook install)" >&2
    fi
    exec superbuild hook run "$@"
fi
echo "superbuild: cannot run the pre-push hook: ${INSTALL_PYTHON:-python} not found and" \\
    "superbuild is not on PATH: reinstall it (superbuild hook install)," \\
    "or bypass once: SUPERBUILD_SKIP_HOOK=1 git push" >&2
exit 1
"""


def hook_script(python: str | None = None) -> str:
    """The hook's text; ``python``: the interpreter it runs superbuild with (None: PATH)."""
    value = shlex.quote(python) if python else "''"
    lines = [
        f"{_PYTHON_LINE}{value}" if line.startswith(_PYTHON_LINE) else line
        for line in _TEMPLATE.split("\n")
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- install


def hooks_dir(repo: Path) -> Path:
    """The directory git runs hooks from (``core.hooksPath`` or ``$GIT_DIR/hooks``)."""
    out = g.git(repo, "rev-parse", "--git-path", "hooks").stdout
    return repo / g.decode_path(out.rstrip(b"\n"))


def is_ours(path: Path) -> bool:
    """True when ``path`` is a hook superbuild wrote (it carries :data:`MARKER`)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return MARKER.encode() in (line.rstrip(b"\r") for line in data.split(b"\n"))


@dataclass(frozen=True, slots=True)
class Installed:
    path: Path
    updated: bool  # an older hook of ours was replaced
    backup: Path | None  # where a foreign hook went (``--force``)


def install(repo: Path, *, force: bool = False, python: str | None = None) -> Installed:
    """Write the pre-push hook; a hook superbuild did not write needs ``force``.

    ``python`` defaults to the running interpreter (``sys.executable``, unresolved: a
    virtualenv's ``bin/python`` symlink is what makes the venv's packages importable).
    """
    import sys

    directory = hooks_dir(repo)
    target = directory / HOOK_NAME
    backup: Path | None = None
    exists = target.exists() or target.is_symlink()
    ours = exists and is_ours(target)
    if exists and not ours:
        if not force:
            raise SuperbuildError(
                f"{target} exists and was not written by superbuild: "
                f"rerun with --force to replace it (it is kept as {HOOK_NAME}{BACKUP_SUFFIX})"
            )
        backup = target.with_name(HOOK_NAME + BACKUP_SUFFIX)
        target.replace(backup)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{HOOK_NAME}-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(hook_script(python or sys.executable))
        Path(tmp).chmod(0o755)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Installed(target, ours, backup)


def uninstall(repo: Path) -> tuple[Path, Literal["removed", "absent", "foreign"], Path | None]:
    """Remove our hook (never another one): (hook path, what was found, restored backup)."""
    target = hooks_dir(repo) / HOOK_NAME
    if not (target.exists() or target.is_symlink()):
        return target, "absent", None
    if not is_ours(target):
        return target, "foreign", None
    target.unlink()
    backup = target.with_name(HOOK_NAME + BACKUP_SUFFIX)
    if backup.exists() or backup.is_symlink():
        backup.replace(target)
        return target, "removed", target
    return target, "removed", None


# --------------------------------------------------------------------------- refs


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
        if len(parts) != 4 or not all(_is_oid(p) for p in (parts[1], parts[3])):
            raise UsageError(
                f"stdin line {number}: expected '<local ref> <local sha> <remote ref> <remote sha>' "
                f"(as git gives a pre-push hook), got {line[:120]!r}"
            )
        refs.append(RefUpdate(*parts))
    return refs


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


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


# --------------------------------------------------------------------------- commits


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
            path = g.decode_path(fields[i])
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


def _remote_exclusions(repo: Path, remote: str) -> list[str]:
    """What counts as published already: the remote-tracking branches of ``remote`` when it
    is a configured remote (as pre-commit does), nothing when it is a URL (fail-closed: the
    whole history the push sends is checked)."""
    if remote and not remote.startswith("-"):
        found = g.git(repo, "config", "--get", f"remote.{remote}.url", check=False)
        if found.returncode == 0:
            return [f"--remotes={remote}"]
    return []


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    """What :func:`check_push` found: refusals make the hook exit 1."""

    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refs: int = 0
    commits: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.refusals

    def summary(self) -> str:
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        return (
            f"{n(self.refs, 'ref')}, {n(len(self.commits), 'commit')}, "
            f"{n(len(self.verified), 'package')} verified"
        )


# --------------------------------------------------------------------------- submodules


def initialized(repo: Path, path: str) -> bool:
    """Whether submodule ``path`` has its own repository (else git would use ours)."""
    sub = repo / path
    return (sub / ".git").exists()


Status = Literal["ok", "unpublished", "unknown"]


@dataclass
class _SubmoduleResult:
    statuses: dict[str, Status] = field(default_factory=dict)
    error: str | None = None  # --remote-check: the remote could not be listed


def _published(sub: Path, commits: Sequence[str], url: str | None) -> _SubmoduleResult:
    """Classify ``commits`` of one initialized submodule (two or three git processes).

    Without ``url``: published = reachable from a remote-tracking branch or a tag.  With
    ``url`` (``--remote-check``): published = a tip ``git ls-remote URL`` advertises, or an
    ancestor of an advertised tip that is present locally.
    """
    result = _SubmoduleResult()
    tips: set[str] = set()
    if url is not None:
        listing = g.git(sub, "ls-remote", "--", url, check=False)
        if listing.returncode != 0:
            detail = listing.stderr.decode(errors="replace").strip().splitlines()
            result.error = detail[-1] if detail else f"git ls-remote exited {listing.returncode}"
            return result
        tips = {line.split()[0] for line in listing.stdout.decode().splitlines() if line.strip()}
    found = g.resolve(sub, [f"{c}^{{commit}}" for c in commits])
    present = [c for c, f in zip(commits, found, strict=True) if f is not None]
    for commit, hit in zip(commits, found, strict=True):
        if hit is None:
            result.statuses[commit] = "ok" if commit in tips else "unknown"
    if not present:
        return result
    if url is None:
        exclude_args = ["--not", "--remotes", "--tags"]
        stdin = "".join(f"{c}\n" for c in present)
    else:
        ordered = sorted(tips)
        local_tips = [t for t, f in zip(ordered, _resolve_all(sub, ordered), strict=True) if f]
        exclude_args = []
        stdin = "".join(f"{c}\n" for c in present) + "".join(f"^{t}\n" for t in local_tips)
    out = g.git(sub, "rev-list", "--stdin", *exclude_args, input=stdin.encode()).stdout
    unreachable = set(out.decode().split())
    for commit in present:
        result.statuses[commit] = (
            "unpublished" if commit in unreachable and commit not in tips else "ok"
        )
    return result


def _resolve_all(sub: Path, oids: Sequence[str]) -> list[bool]:
    return [f is not None for f in g.resolve(sub, [f"{o}^{{commit}}" for o in oids])]


def _submodule_url(repo: Path, sub: Path, name: str | None) -> str | None:
    """The submodule's URL: the superproject's ``submodule.<name>.url``, else its origin."""
    if name:
        found = g.git(repo, "config", "--get", f"submodule.{name}.url", check=False)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.decode().strip()
    found = g.git(sub, "remote", "get-url", "origin", check=False)
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.decode().strip()
    return None


def _push_fix(sub: Path, path: str, commit: str) -> str:
    """How to publish ``commit`` (asked only when it is not published: the failure path)."""
    remotes = g.git(sub, "remote", check=False).stdout.decode().split()
    remote = "origin" if "origin" in remotes or not remotes else remotes[0]
    branches = g.git(
        sub, "for-each-ref", "--contains", commit, "--format=%(refname:short)", "refs/heads/"
    ).stdout.decode()
    branch = branches.split()[0] if branches.split() else None
    what = branch if branch else f"{commit}:refs/heads/BRANCH"
    return f"push it first: git -C {shlex.quote(path)} push {remote} {what}"


# --------------------------------------------------------------------------- the check


@dataclass
class _Pending:
    """What one ref needs checked once every ref has been read."""

    ref: RefUpdate
    tip: str
    links: dict[str, dict[str, str]]  # path -> {commit: superproject commit recording it}
    changed_paths: set[str]  # gitlinks changed by the pushed commits (others: tip only)
    moves: list[Change]
    verify: list[tuple[Package, str]]  # (package, recorded commit)


@dataclass
class _Context:
    repo: Path
    remote_check: bool
    report: Report
    names: dict[str, str] = field(default_factory=dict)  # submodule path -> package

    def label(self, path: str) -> str:
        name = self.names.get(path)
        return f"{name} ({path})" if name else path

    def refuse(self, ref: RefUpdate, text: str) -> None:
        self.report.refusals.append(f"{ref.name}: {text}")

    def warn(self, ref: RefUpdate, text: str) -> None:
        self.report.warnings.append(f"{ref.name}: {text}")


def check_push(
    repo: Path, remote: str, refs: Iterable[RefUpdate], *, remote_check: bool = False
) -> Report:
    """Check every ref of a push (see the module doc); never raises for a refusal."""
    report = Report()
    ctx = _Context(repo, remote_check, report)
    exclusions = _remote_exclusions(repo, remote)
    pending = []
    for ref in refs:
        report.refs += 1
        if ref.deletion:
            continue
        found = _examine(ctx, ref, exclusions)
        if found is not None:
            pending.append(found)
    statuses = _check_submodules(ctx, pending)
    verified: dict[tuple[str, str, tuple[str, ...]], str | None] = {}
    reported: set[tuple[str, str]] = set()
    for item in pending:
        ref = item.ref
        for path in sorted(item.links):
            result = statuses.get(path)
            if (path, "*") in reported:
                continue  # its remote could not be listed: said once
            for commit, recorder in item.links[path].items():
                if (path, commit) in reported:
                    continue
                where = f"recorded by {recorder[:12]}"
                if result is None:
                    if path in item.changed_paths:
                        reported.add((path, commit))
                        ctx.warn(
                            ref,
                            f"{ctx.label(path)}: submodule not initialized: commit {commit[:12]} "
                            f"({where}) not checked (git submodule update --init {shlex.quote(path)})",
                        )
                    continue
                if result.error is not None:
                    reported.add((path, "*"))
                    ctx.refuse(
                        ref,
                        f"{ctx.label(path)}: cannot list the submodule's remote (--remote-check): "
                        f"{result.error}: check its URL and your network",
                    )
                    break
                status = result.statuses.get(commit, "ok")
                if status == "ok":
                    continue
                reported.add((path, commit))
                if status == "unknown":
                    ctx.refuse(
                        ref,
                        f"{ctx.label(path)}: unknown commit {commit[:12]} ({where}): not in the "
                        f"submodule's repository: fetch it: git -C {shlex.quote(path)} fetch",
                    )
                else:
                    scope = (
                        "on the submodule's remote (--remote-check)"
                        if remote_check
                        else "on any remote-tracking branch or tag of the submodule"
                    )
                    fix = _push_fix(repo / path, path, commit)
                    ctx.refuse(
                        ref,
                        f"{ctx.label(path)}: commit {commit[:12]} ({where}) is not {scope}: {fix}",
                    )
        for change in item.moves:
            _warn_direction(ctx, ref, change)
        for package, commit in item.verify:
            known = statuses.get(package.path)
            if known is not None and known.statuses.get(commit) == "unknown":
                continue  # refused above: there is nothing to export
            key = (package.name, commit, package.verify)
            if key not in verified:  # the same check for another ref: reported once
                verified[key] = _verify(ctx, ref, package, commit)
    return report


def _examine(ctx: _Context, ref: RefUpdate, exclusions: list[str]) -> _Pending | None:
    """Read what ``ref`` publishes; manifest problems are refused here, the rest is queued."""
    repo = ctx.repo
    local, remote = g.resolve(repo, [f"{ref.local_sha}^{{commit}}", f"{ref.remote_sha}^{{commit}}"])
    if local is None:
        ctx.warn(ref, f"{ref.local_sha[:12]} is not a commit: nothing checked")
        return None
    tip = local[0]
    known_remote = None if ref.new or remote is None else remote[0]
    exclude = ([known_remote] if known_remote else []) + exclusions
    commits = pushed_commits(repo, tip, exclude)
    if not commits:
        return None
    ctx.report.commits.update(c.oid for c in commits)
    links: dict[str, dict[str, str]] = {}
    changed: set[str] = set()
    for commit in commits:
        for path, oid in commit.gitlinks:
            links.setdefault(path, {}).setdefault(oid, commit.oid)
            changed.add(path)
    tip_links = g.gitlinks(repo, tip)
    for path, oid in tip_links.items():
        links.setdefault(path, {}).setdefault(oid, tip)
    rng = _range(repo, known_remote, commits[0], tip)
    pending = _Pending(ref, tip, links, changed, [], [])
    try:
        changeset = detect(repo, rng)
    except ManifestError as exc:
        for line in exc.lines:
            ctx.refuse(ref, f"{line}")
        pending.moves = [
            c for c in gitlink_changes(g.diff_trees(repo, rng.base, rng.head)) if c.old_commit
        ]
        return pending
    _queue(ctx, ref, changeset, pending)
    return pending


def _range(repo: Path, remote: str | None, oldest: PushedCommit, tip: str) -> Range:
    """The range whose net change the push makes: from the remote's commit (their
    merge-base), else from the parent of the oldest pushed commit (None: a root)."""
    if remote is not None:
        try:
            return resolve_range(repo, remote, tip)
        except GitError:
            pass  # unrelated histories: fall back to the pushed commits
    rng = resolve_range(repo, oldest.parents[0] if oldest.parents else None, tip)
    if not oldest.parents:
        rng = Range(None, rng.head, rng.head_ids, (None, None))
    return rng


def _queue(ctx: _Context, ref: RefUpdate, changeset: ChangeSet, pending: _Pending) -> None:
    product = changeset.product
    for name, entry in product.entries.items():
        ctx.names.setdefault(entry["path"], name)
    for path in changeset.unmanaged:
        if path not in changeset.links:
            continue  # deleted: nothing is published at that path any more
        ctx.refuse(
            ref,
            f"{path}: gitlink changed but no manifest claims this path: add "
            f"manifests/<name>.yaml with 'path: {path}' (see docs/manifest.md), "
            "or remove the submodule",
        )
    pending.moves = [c for c in changeset.changes if c.old_commit and c.new_commit]
    for name in changeset.reasons:
        package = product.packages.get(name)
        if package is None or not package.verify:
            continue
        commit = changeset.links.get(package.path)
        if commit is not None:
            pending.verify.append((package, commit))


def _check_submodules(ctx: _Context, pending: list[_Pending]) -> dict[str, _SubmoduleResult]:
    """Classify every queued gitlink, one submodule per thread; None: not initialized."""
    wanted: dict[str, dict[str, None]] = {}
    for item in pending:
        for path, commits in item.links.items():
            wanted.setdefault(path, {}).update(dict.fromkeys(commits))
    paths = [p for p in sorted(wanted) if initialized(ctx.repo, p)]
    names: dict[str, str] = {}
    if ctx.remote_check:
        for item in pending:
            names = {**g.submodule_names(ctx.repo, item.tip), **names}

    def one(path: str) -> _SubmoduleResult:
        sub = ctx.repo / path
        url = None
        if ctx.remote_check:
            url = _submodule_url(ctx.repo, sub, names.get(path))
            if url is None:
                return _SubmoduleResult(error="no URL (no submodule.<name>.url, no origin)")
        return _published(sub, list(wanted[path]), url)

    if not paths:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def _warn_direction(ctx: _Context, ref: RefUpdate, change: Change) -> None:
    old, new = change.old_commit, change.new_commit
    if not old or not new or old == new:
        return
    how = change.direction
    if how is None:  # not filled by detect (invalid manifests): ask the submodule
        how = direction(ctx.repo / change.path, old, new)
    if how == "backward":
        ctx.warn(
            ref,
            f"{ctx.label(change.path)}: gitlink moves backwards {old[:12]} -> {new[:12]} "
            "(the new commit is an ancestor of the old one): intended?",
        )
    elif how == "sideways":
        ctx.warn(
            ref,
            f"{ctx.label(change.path)}: gitlink moves sideways {old[:12]} -> {new[:12]} "
            "(neither commit descends from the other: a rebase or another branch?)",
        )


# --------------------------------------------------------------------------- verify


def _verify(ctx: _Context, ref: RefUpdate, package: Package, commit: str) -> str | None:
    """Run ``package.verify`` on a clean export of ``commit``: the refusal, or None."""
    label = ctx.label(package.path)
    if not initialized(ctx.repo, package.path):
        ctx.warn(
            ref,
            f"{label}: verify skipped: submodule not initialized "
            f"(git submodule update --init {shlex.quote(package.path)})",
        )
        return None
    sub = ctx.repo / package.path
    if g.resolve(sub, [f"{commit}^{{commit}}"])[0] is None:
        ctx.warn(ref, f"{label}: verify skipped: commit {commit[:12]} is not in the submodule")
        return None
    command = shlex.join(package.verify)
    with tempfile.TemporaryDirectory(prefix="superbuild-verify-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        tarball = Path(tmp) / "export.tar"
        g.git(sub, "archive", "--format=tar", "-o", os.fspath(tarball), commit)
        # tar(1), not tarfile: a repository may hold symlinks pointing anywhere.
        proc.run(["tar", "-xf", tarball, "-C", src], what="tar -x (verify export)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(package.env)
        env.update(
            SUPERBUILD_PACKAGE=package.name,
            SUPERBUILD_COMMIT=commit,
            SUPERBUILD_PATH=package.path,
            SUPERBUILD_SRC=os.fspath(src),
        )
        timeout = package.timeout("verify")
        try:
            done = proc.run(package.verify, cwd=src, env=env, check=False, timeout=timeout)
        except SuperbuildError as exc:  # the command is not installed
            problem = f"{label}: verify `{command}` cannot run: {exc.lines[0]}"
            ctx.refuse(ref, problem)
            return problem
    ctx.report.verified.add(package.name)
    if done.ok:
        return None
    output = (done.stderr.strip() or done.stdout.strip()).decode(errors="replace").splitlines()
    tail = f": {output[-1].strip()}" if output else ""
    how = f"timed out after {timeout:g}s" if done.timed_out else f"failed (exit {done.returncode})"
    problem = (
        f"{label}: verify `{command}` {how} on commit {commit[:12]}{tail}: "
        f"fix it, or run it in a checkout of that commit (git -C {shlex.quote(package.path)} "
        f"checkout {commit[:12]}) to see why"
    )
    ctx.refuse(ref, problem)
    return problem
