"""``superbuild status``: each submodule's recorded commit, checkout and last build.

For maintainers, one :class:`SubmoduleStatus` per package (and per unmanaged submodule).
Cost, whatever the number of submodules:

- one ``git status --porcelain=v2 -z --ignore-submodules=none --untracked-files=no`` in
  the superproject: its ``1 <XY> S<c><m><u>`` records say which submodules have
  modified tracked content (``m``) or untracked files (``u``);
- the recorded commits from one ``ls-tree`` of ``HEAD`` (plus the manifests, from the
  cache); the build state in three indexed SQLite queries;
- for each initialized submodule, its checkout commit and refs read from files
  (``HEAD``, loose refs, ``packed-refs``: no process), and
  ``git rev-list --count HEAD --branches --not --remotes --tags`` only when a local tip is not
  also a remote-tracking tip (and its count is not cached).  The files are read one
  after the other while ``git status`` runs (started before the imports by
  :mod:`superbuild.prestart`); only the ``rev-list`` processes go to a thread pool.

Uninitialized submodules cost nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superbuild import git as g
from superbuild.errors import GitError
from superbuild.submodules import initialized

if TYPE_CHECKING:
    from superbuild.state import PackageHistory

#: Threads for the per-submodule work.
WORKERS = 8
_MAX_SYMREF_DEPTH = 5


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class LastBuild:
    """The last build of a package that started (``status`` may be ``running``)."""

    commit: str
    status: str
    finished_at: str | None  # ISO-8601, UTC

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "status": self.status, "finished_at": self.finished_at}


@dataclass(frozen=True)
class TargetStatus:
    """The build state of a package for one named target (superbuild.yaml ``targets:``)."""

    target: str
    last_build: LastBuild | None
    needs_rebuild: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "last_build": self.last_build.to_json() if self.last_build else None,
            "needs_rebuild": self.needs_rebuild,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SubmoduleStatus:
    """One row of ``superbuild status``.

    ``checkout_commit``, ``dirty``, ``checkout_differs`` and ``unpushed`` are None when
    the submodule is not initialized; ``package``, ``needs_rebuild`` and ``last_build``
    are None for a submodule no manifest claims.  With named targets, ``targets`` holds
    each target's verdict and ``last_build``/``needs_rebuild``/``reason`` sum them up
    (the latest build, any target needing one, ``el9: never built; ...``).
    """

    package: str | None
    path: str
    recorded_commit: str
    checkout_commit: str | None
    initialized: bool
    dirty: bool | None
    checkout_differs: bool | None
    unpushed: int | None
    last_build: LastBuild | None
    needs_rebuild: bool | None
    reason: str
    targets: tuple[TargetStatus, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "path": self.path,
            "recorded_commit": self.recorded_commit,
            "checkout_commit": self.checkout_commit,
            "initialized": self.initialized,
            "dirty": self.dirty,
            "checkout_differs": self.checkout_differs,
            "unpushed": self.unpushed,
            "last_build": self.last_build.to_json() if self.last_build else None,
            "needs_rebuild": self.needs_rebuild,
            "reason": self.reason,
            "targets": [t.to_json() for t in self.targets],
        }


@dataclass(frozen=True)
class Checkout:
    """What an initialized submodule has checked out.

    ``tips`` identifies the refs the unpushed count was computed from (see
    :func:`tips_key`), when it took a ``git rev-list``: the count may be cached under it.
    """

    commit: str | None  # None: HEAD names an unborn branch
    unpushed: int
    tips: str | None = field(default=None, compare=False)


# --------------------------------------------------------------------------- git status


@dataclass(frozen=True)
class SubmoduleFlags:
    """The ``S<c><m><u>`` field of a ``git status --porcelain=v2`` record."""

    commit_changed: bool
    modified: bool
    untracked: bool


def parse_porcelain_v2(data: bytes) -> dict[str, SubmoduleFlags]:
    """Submodule records of ``git status --porcelain=v2 -z``: path -> flags.

    Records: ``1 XY sub mH mI mW hH hI path``, ``2 XY sub mH mI mW hH hI Xscore path``
    followed by the original path, ``u XY sub m1 m2 m3 mW h1 h2 h3 path``, ``? path``,
    ``! path``, ``# header``; ``sub`` is ``N...`` for anything but a submodule.
    """
    fields = data.split(b"\0")
    flags: dict[str, SubmoduleFlags] = {}
    i = 0
    while i < len(fields):
        record = fields[i]
        i += 1
        if not record:
            continue
        kind = record[:1]
        if kind == b"1":
            parts = record.split(b" ", 8)
        elif kind == b"2":
            parts = record.split(b" ", 9)
            i += 1  # the original path of a rename
        elif kind == b"u":
            parts = record.split(b" ", 10)
        else:
            continue
        if len(parts) < 3:
            raise GitError(f"unexpected git status record: {record[:80]!r}")
        sub = parts[2]
        if sub.startswith(b"S") and len(sub) == 4:
            flags[g.decode_path(parts[-1])] = SubmoduleFlags(
                sub[1:2] == b"C", sub[2:3] == b"M", sub[3:4] == b"U"
            )
    return flags


def submodule_flags(repo: Path) -> dict[str, SubmoduleFlags]:
    """One ``git status`` of the superproject: flags of the submodules that differ."""
    from superbuild import prestart

    started = prestart.take(os.fspath(repo), prestart.STATUS_ARGS)
    if started is None:
        out = g.git(repo, *prestart.STATUS_ARGS).stdout
    else:  # started by the entry point before the imports (superbuild.prestart)
        from superbuild import proc

        try:
            out = proc.finish_started(started, what="git status").stdout
        except proc.ProcessError as exc:
            raise GitError(*exc.lines) from None
    return parse_porcelain_v2(out)


# --------------------------------------------------------------------------- refs from files


class RefsUnreadable(Exception):
    """The refs cannot be read from files (reftable, odd layout): ask git instead."""


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise RefsUnreadable(f"{path} is a directory") from None


@dataclass
class RefStore:
    """The refs of one repository, read from its files like git does.

    Loose refs (``<dir>/refs/...``) win over ``packed-refs``; per-worktree refs
    (``HEAD``) live in the git dir, shared ones in the common dir (``commondir`` file).
    Raises :class:`RefsUnreadable` for a layout it does not know (reftable).
    """

    git_dir: Path
    common_dir: Path
    _packed: dict[str, str] | None = None

    @classmethod
    def of(cls, git_dir: Path) -> RefStore:
        common = git_dir
        pointer = _read_text(git_dir / "commondir")
        if pointer is not None:
            target = Path(pointer.strip())
            common = target if target.is_absolute() else (git_dir / target)
        if (common / "reftable").exists():
            raise RefsUnreadable("reftable ref storage")
        return cls(git_dir, common)

    @property
    def packed(self) -> dict[str, str]:
        """``packed-refs``: ref name -> object id (peeled lines skipped)."""
        if self._packed is None:
            self._packed = {}
            text = _read_text(self.common_dir / "packed-refs") or ""
            for line in text.splitlines():
                if not line or line[0] in "#^":
                    continue
                oid, _, name = line.partition(" ")
                if not g.is_oid(oid):
                    raise RefsUnreadable(f"unexpected packed-refs line {line[:80]!r}")
                self._packed[name] = oid
        return self._packed

    def _loose_dir(self, name: str) -> Path:
        per_worktree = "/" not in name or name.startswith(("refs/worktree/", "refs/bisect/"))
        return self.git_dir if per_worktree else self.common_dir

    def resolve(self, name: str) -> str | None:
        """The object id ``name`` (``HEAD``, ``refs/heads/main``) points to; None if unborn."""
        for _ in range(_MAX_SYMREF_DEPTH):
            text = _read_text(self._loose_dir(name) / name)
            if text is None:
                return self.packed.get(name)
            value = text.strip()
            if value.startswith("ref:"):
                name = value[4:].strip()
                continue
            if not g.is_oid(value):
                raise RefsUnreadable(f"unexpected content in {name}: {value[:80]!r}")
            return value
        raise RefsUnreadable(f"symbolic refs nested too deep at {name}")

    def tips(self, prefix: str) -> set[str]:
        """Object ids of every ref under ``prefix`` (``refs/heads/``); symbolic refs skipped."""
        refs = {name: oid for name, oid in self.packed.items() if name.startswith(prefix)}
        root = self.common_dir
        for dirpath, _dirs, files in os.walk(root / prefix):
            for file in files:
                if file.endswith(".lock"):
                    continue  # a ref being written: git ignores these too
                path = Path(dirpath) / file
                name = path.relative_to(root).as_posix()
                text = (_read_text(path) or "").strip()
                if text.startswith("ref:"):
                    refs.pop(name, None)  # e.g. refs/remotes/origin/HEAD: its target counts
                elif g.is_oid(text):
                    refs[name] = text  # a loose ref wins over a packed one
                else:
                    raise RefsUnreadable(f"unexpected content in {name}")
        return set(refs.values())


def submodule_git_dir(work_tree: Path) -> Path | None:
    """The git directory of a submodule checkout (``.git`` file or folder), None if absent."""
    dot = work_tree / ".git"
    if dot.is_dir():
        return dot
    text = _read_text(dot) if dot.is_file() else None
    if text is None or not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    return target if target.is_absolute() else (work_tree / target)


def tips_key(head: str | None, local: Iterable[str], remote: Iterable[str]) -> str:
    """A key for the unpushed count of these tips.

    Commits are immutable and name their parents, so the same tips always give the same
    count, in any repository: a cache under this key cannot go stale.
    """
    import hashlib

    text = f"{head}\n{','.join(sorted(local))}\n{','.join(sorted(remote))}"
    return hashlib.sha256(text.encode()).hexdigest()


def read_checkout(work_tree: Path, known: Mapping[str, int] | None = None) -> Checkout:
    """The checkout commit and unpushed count of an initialized submodule.

    Reads the refs from files.  The count is 0 without a process when every local tip
    (HEAD, branches) is also a remote-tracking tip; else it is taken from ``known``
    (counts by :func:`tips_key`) or ``git rev-list --count HEAD --branches --not
    --remotes --tags`` (:data:`superbuild.submodules.PUBLISHED_REFS`: the hook's rule).  A ref layout it cannot read (reftable) is left to git.
    """
    tips = _tips(work_tree)
    found = _without_git(tips, known) if tips is not None else None
    return found if found is not None else _asked(work_tree, tips)


def _asked(work_tree: Path, tips: tuple[str | None, set[str], set[str]] | None) -> Checkout:
    """:func:`read_checkout` when git must be asked: the whole answer for a layout it
    reads itself (``tips`` None), else the unpushed count of the tips read from files."""
    if tips is None:
        return _checkout_from_git(work_tree)
    head, local, remote = tips
    return Checkout(head, _unpushed(work_tree, head is not None), tips_key(head, local, remote))


def _tips(work_tree: Path) -> tuple[str | None, set[str], set[str]] | None:
    """(HEAD, local tips, published tips) read from files; None: a layout for git."""
    git_dir = submodule_git_dir(work_tree)
    try:
        if git_dir is None:
            return None
        refs = RefStore.of(git_dir)
        head = refs.resolve("HEAD")
        local = refs.tips("refs/heads/")
        remote = refs.tips("refs/remotes/") | refs.tips("refs/tags/")  # PUBLISHED_REFS
    except (RefsUnreadable, OSError):
        return None
    return head, local, remote


def _without_git(
    tips: tuple[str | None, set[str], set[str]], known: Mapping[str, int] | None
) -> Checkout | None:
    head, local, remote = tips
    mine = local | ({head} if head is not None else set())
    if mine <= remote:
        return Checkout(head, 0)  # every local tip is a remote-tracking tip
    key = tips_key(head, local, remote)
    count = (known or {}).get(key)
    return None if count is None else Checkout(head, count, key)


def _unpushed(work_tree: Path, has_head: bool = True) -> int:
    tips = ["HEAD"] if has_head else []
    from superbuild.submodules import PUBLISHED_REFS

    out = g.git(work_tree, "rev-list", "--count", *tips, "--branches", "--not", *PUBLISHED_REFS)
    return int(out.stdout.decode().strip() or "0")


def _checkout_from_git(work_tree: Path) -> Checkout:
    head = g.git(work_tree, "rev-parse", "--verify", "-q", "HEAD", check=False)
    commit = (head.stdout.decode().strip() or None) if head.returncode == 0 else None
    return Checkout(commit, _unpushed(work_tree, commit is not None))


# --------------------------------------------------------------------------- collecting

#: The unpushed-count cache, in ``<git dir>/superbuild/`` next to the manifest cache.
UNPUSHED_CACHE = "unpushed.json"


@dataclass(frozen=True)
class UnpushedCache:
    """Unpushed counts by :func:`tips_key`: one JSON object, rewritten when it changes.

    Keeps the entries of the last run only.  A missing or corrupt file is an empty cache.
    """

    path: Path

    def load(self) -> dict[str, int]:
        import json

        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("cache") != UNPUSHED_CACHE:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict) or data.get("sha256") != _checksum(entries):
            return {}  # copied from elsewhere, edited or damaged: recomputed, never trusted
        return {k: v for k, v in entries.items() if isinstance(k, str) and type(v) is int}

    def save(self, old: Mapping[str, int], new: Mapping[str, int]) -> None:
        if dict(old) == dict(new):
            return
        from superbuild.fileio import write_json_atomic

        entries = dict(sorted(new.items()))
        data = {"cache": UNPUSHED_CACHE, "sha256": _checksum(entries), "entries": entries}
        with contextlib.suppress(OSError):  # a read-only git dir: no cache, same answers
            write_json_atomic(self.path, data, make_parents=True)


def _checksum(entries: Mapping[str, Any]) -> str:
    """The SHA-256 of ``entries`` as canonical JSON: what a cache file must carry."""
    import hashlib
    import json

    text = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _last_build(history: PackageHistory | None) -> LastBuild | None:
    from superbuild.state import iso

    attempt = history.last_attempt if history is not None else None
    if attempt is None:
        return None
    return LastBuild(attempt.commit, attempt.status, iso(attempt.finished_at))


def collect(repo: Path, *, workers: int = WORKERS) -> list[SubmoduleStatus]:
    """The status of every submodule recorded in the superproject's ``HEAD``, by path."""
    from superbuild.changes import cache_dir, load_head, resolve_range
    from superbuild.package import job_id
    from superbuild.state import BuildState, Verdict, verdicts_for

    bare = not (repo / ".git").exists()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        flags_job: Future[dict[str, SubmoduleFlags]] | None = None
        if not bare:
            flags_job = pool.submit(submodule_flags, repo)
        try:
            rng = resolve_range(repo, None, "HEAD")
        except GitError:
            raise GitError(f"{repo}: the superproject has no commit yet") from None
        product, links = load_head(repo, rng)
        checked_out = [] if bare else [p for p in links if initialized(repo / p)]
        cache = UnpushedCache(cache_dir(repo) / UNPUSHED_CACHE)
        known = cache.load() if checked_out else {}
        # Read from files here, one after the other: threads would only contend for the
        # interpreter (and the core git status runs on); the pool asks git the rest.
        tips = {path: _tips(repo / path) for path in checked_out}
        inline = {p: _without_git(t, known) if t is not None else None for p, t in tips.items()}
        checkouts = {
            path: pool.submit(_asked, repo / path, tips[path])
            for path, found in inline.items()
            if found is None
        }
        with BuildState.read(repo) as state:
            _, history, verdicts = verdicts_for(state, product, links)
        flags = flags_job.result() if flags_job is not None else {}
        done: dict[str, Checkout] = {p: c for p, c in inline.items() if c is not None}
        for path, job in checkouts.items():
            try:
                done[path] = job.result()
            except GitError:
                continue  # a .git git cannot read: shown as not initialized
    cache.save(known, {c.tips: c.unpushed for c in done.values() if c.tips is not None})
    rows = []
    for path in sorted(links):
        name = product.name_at(path)
        recorded = links[path]
        checkout = done.get(path)
        flag = flags.get(path)
        verdict = verdicts.get(name) if name is not None else None
        per_target: tuple[TargetStatus, ...] = ()
        last = _last_build(history.get(name)) if name is not None else None
        if name is not None and product.target_names:
            per_target = tuple(
                TargetStatus(
                    t,
                    _last_build(history.get(job_id(name, t))),
                    verdicts[job_id(name, t)].needs_rebuild,
                    verdicts[job_id(name, t)].reason,
                )
                for t in product.targets_of(name)
                if t is not None
            )
            verdict = Verdict(
                any(t.needs_rebuild for t in per_target),
                "; ".join(f"{t.target}: {t.reason}" for t in per_target if t.needs_rebuild),
            )
            builds = [t.last_build for t in per_target if t.last_build is not None]
            last = max(builds, key=lambda b: b.finished_at or "", default=None)
        rows.append(
            SubmoduleStatus(
                package=name,
                path=path,
                recorded_commit=recorded,
                checkout_commit=checkout.commit if checkout else None,
                initialized=checkout is not None,
                dirty=bool(flag and (flag.modified or flag.untracked)) if checkout else None,
                checkout_differs=checkout.commit != recorded if checkout else None,
                unpushed=checkout.unpushed if checkout else None,
                last_build=last,
                needs_rebuild=verdict.needs_rebuild if verdict is not None else None,
                reason=verdict.reason if verdict is not None else "",
                targets=per_target,
            )
        )
    return rows


def to_json(rows: Iterable[SubmoduleStatus]) -> list[dict[str, Any]]:
    """The ``--json`` document: a list of row objects."""
    return [row.to_json() for row in rows]


def summary(rows: Iterable[SubmoduleStatus]) -> Mapping[str, int]:
    """Counts for the line under the table."""
    rows = list(rows)
    return {
        "submodules": len(rows),
        "initialized": sum(r.initialized for r in rows),
        "dirty": sum(bool(r.dirty) for r in rows),
        "differ": sum(bool(r.checkout_differs) for r in rows),
        "unpushed": sum(bool(r.unpushed) for r in rows),
        "rebuild": sum(bool(r.needs_rebuild) for r in rows),
    }
