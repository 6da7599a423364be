"""Check what a push would publish: :func:`check_push`.

For every ref (:class:`~superbuild.hooks.protocol.RefUpdate`) it examines the superproject
commits the ref would publish (:func:`~superbuild.hooks.protocol.pushed_commits`):

1. every gitlink those commits record (and, fail-closed, every gitlink of each pushed
   tip) must name a commit that is reachable from a remote-tracking branch or a tag of
   the initialized submodule (``--remote-check``: from what the submodule's URL
   advertises); a commit the submodule does not have at all is refused
   (:func:`superbuild.submodules.published`);
2. the tip's manifests must be valid and claim every changed gitlink;
3. the ``verify`` command of every package whose gitlink or manifest changed must pass,
   in a clean export of the recorded commit (:mod:`superbuild.hooks.verify`).

Gitlinks moving backwards or sideways (:func:`superbuild.changes.direction`) are warnings.
Every git command and every ``verify`` runs with stdin closed (:mod:`superbuild.proc`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from superbuild import git as g
from superbuild import submodules
from superbuild.changes import (
    Change,
    ChangeSet,
    Range,
    detect,
    direction,
    gitlink_changes,
    resolve_range,
)
from superbuild.errors import GitError, ManifestError
from superbuild.hooks.protocol import PushedCommit, RefUpdate, pushed_commits, remote_exclusions
from superbuild.hooks.verify import verify
from superbuild.package import Package

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
    exclusions = remote_exclusions(repo, remote)
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
                    where = f" {result.url}" if result.url else ""
                    ctx.refuse(
                        ref,
                        f"{ctx.label(path)}: cannot list the submodule's remote{where} "
                        f"(--remote-check): {result.error}: check its URL and your network",
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
        ctx.names.setdefault(entry.path, name)
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


def _check_submodules(ctx: _Context, pending: list[_Pending]) -> dict[str, submodules.Published]:
    """Classify every queued gitlink, one submodule per thread; None: not initialized."""
    wanted: dict[str, dict[str, None]] = {}
    for item in pending:
        for path, commits in item.links.items():
            wanted.setdefault(path, {}).update(dict.fromkeys(commits))
    paths = [p for p in sorted(wanted) if submodules.initialized(ctx.repo / p)]
    names: dict[str, str] = {}
    if ctx.remote_check:
        for item in pending:
            names = {**g.submodule_names(ctx.repo, item.tip), **names}

    def one(path: str) -> submodules.Published:
        sub = ctx.repo / path
        url = None
        if ctx.remote_check:
            url = submodules.remote_url(ctx.repo, sub, names.get(path))
            if url is None:
                return submodules.Published({}, "no URL (no submodule.<name>.url, no origin)")
        return submodules.published(sub, list(wanted[path]), url)

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


def _verify(ctx: _Context, ref: RefUpdate, package: Package, commit: str) -> str | None:
    """Run ``package.verify`` (:func:`~superbuild.hooks.verify.verify`): the refusal, or None."""
    outcome = verify(ctx.repo, package, commit, ctx.label(package.path))
    if outcome.ran:
        ctx.report.verified.add(package.name)
    if outcome.skipped is not None:
        ctx.warn(ref, outcome.skipped)
    if outcome.problem is not None:
        ctx.refuse(ref, outcome.problem)
    return outcome.problem
