"""The store: runs and package builds in the state database, and what they tell.

:class:`BuildState` wraps one open connection (:func:`superbuild.state.db.connect`):
recording (a run, its package rows, their updates), recovery of runs a kill left
``running``, and the queries ``status``, ``--retry-failed``, ``--since-last-success`` and
the scheduler's weights read.  Rows come back as the frozen records below.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from superbuild import layout
from superbuild.package import job_id, split_job_id
from superbuild.proc import pid_alive
from superbuild.state.db import RUN_RESULTS, connect, transaction

#: Successful builds whose durations make a package's expected duration (their median).
WEIGHT_SAMPLES = 5
#: Statuses of a run's packages that ``--retry-failed`` rebuilds (pending and running
#: only remain in a run that was killed and not yet recovered).
UNFINISHED = ("failed", "skipped", "cancelled", "pending", "running")

#: Columns of ``builds`` that change while a run goes on.
_UPDATABLE = frozenset(
    {"status", "reason", "started_at", "finished_at", "duration_s", "log", "artifacts"}
)

KILLED_RUNNING = "run was killed"
KILLED_PENDING = "not started: run was killed"


@functools.cache
def host() -> str:
    """This machine's name, as runs record it."""
    import socket

    return socket.gethostname()


def _columns(job: str) -> tuple[str, str]:
    """The ``(package, target)`` columns of a job id (target ``''``: the implicit one)."""
    package, target = split_job_id(job)
    return package, target or ""


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as ISO-8601 (UTC), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class PlannedBuild(Protocol):
    """What a ``pending`` row records of a package build (:class:`~superbuild.state.keys.BuildInputs`)."""

    @property
    def commit(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def deps(self) -> Mapping[str, str]: ...
    @property
    def key(self) -> str: ...


def _storable(value: Any) -> Any:
    """``value``, with a string SQLite cannot take (a path with bytes that are not UTF-8,
    held as surrogates) shown as ``\\xNN`` escapes: a reason or a log path is for reading."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs``."""

    id: str
    started_at: float
    finished_at: float | None
    head: str | None
    base: str | None
    result: str
    pid: int
    host: str

    @property
    def stale(self) -> bool:
        """Still ``running`` although its process is gone (killed): seen from this host."""
        return self.result == "running" and self.host == host() and not pid_alive(self.pid)


@dataclass(frozen=True)
class BuildRecord:
    """One row of ``builds``: one package for one target in one run."""

    run_id: str
    package: str
    commit: str
    status: str
    reason: str
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    log: str | None
    build_key: str
    digest: str
    artifacts_json: str = field(default="[]", repr=False)
    deps_json: str = field(default="{}", repr=False)
    #: The target built for (None: the implicit target).
    target: str | None = None

    @property
    def job_id(self) -> str:
        """``package`` or ``package@target``: the key of the dicts of this module."""
        return job_id(self.package, self.target)

    @functools.cached_property
    def artifacts(self) -> tuple[str, ...]:
        """Absolute paths of the artifacts (parsed on first use)."""
        return tuple(json.loads(self.artifacts_json))

    @functools.cached_property
    def deps(self) -> dict[str, str]:
        """Required package -> its build key when this build was planned."""
        loaded: dict[str, str] = json.loads(self.deps_json)
        return loaded

    @classmethod
    def from_row(cls, row: sqlite3.Row, *, run_stale: bool = False) -> BuildRecord:
        status, reason = row["status"], row["reason"]
        if run_stale and status in ("running", "pending"):
            # Seen without the build lock: how the next build will record it.
            reason = KILLED_RUNNING if status == "running" else KILLED_PENDING
            status = "cancelled"
        return cls(
            run_id=row["run_id"],
            package=row["package"],
            commit=row["commit_id"],
            status=status,
            reason=reason,
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            duration_s=row["duration_s"],
            log=row["log"],
            build_key=row["build_key"],
            digest=row["digest"],
            artifacts_json=row["artifacts"] or "[]",
            deps_json=row["deps"] or "{}",
            target=row["target"] or None,
        )


@dataclass(frozen=True)
class PackageHistory:
    """What the state knows about one package."""

    #: The last successful build.
    last_success: BuildRecord | None = None
    #: The last build that started (its status may be ``running``).
    last_attempt: BuildRecord | None = None
    #: The last row of any status but ``pending`` (a skip is a row, not an attempt).
    last_row: BuildRecord | None = None


@dataclass(frozen=True)
class FileRecord:
    """One row of ``build_files``: an artifact of a successful build, by content."""

    path: str  # relative to the output repository
    sha256: str
    size: int


@dataclass(frozen=True)
class PooledBuild:
    """A successful build and its pooled artifacts (:meth:`BuildState.successes`)."""

    build: BuildRecord
    files: tuple[FileRecord, ...]


def _run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        head=row["head"],
        base=row["base"],
        result=row["result"],
        pid=row["pid"],
        host=row["host"],
    )


class BuildState:
    """The build state of one superproject, over an open connection.

    Open it with :meth:`open` (creates and migrates the database; a build holds
    :class:`BuildLock` meanwhile) or :meth:`read` (None when there is no database yet:
    nothing is created).
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    @contextlib.contextmanager
    def open(cls, repo: Path) -> Iterator[BuildState]:
        """The state of ``repo``, created if absent."""
        layout.state_dir(repo)
        path = layout.db_path(repo)
        with connect(path) as db:
            yield cls(db, path)

    @classmethod
    @contextlib.contextmanager
    def read(cls, repo: Path) -> Iterator[BuildState | None]:
        """The state of ``repo``, or None if no build was ever recorded there."""
        path = layout.db_path(repo)
        if not path.is_file():
            yield None
            return
        with connect(path, read_only=True) as db:
            yield cls(db, path)

    # ------------------------------------------------------------------ runs
    def recover(self) -> list[RunRecord]:
        """Mark runs left ``running`` as ``interrupted`` (call it holding the build lock).

        Their ``running`` packages become ``cancelled`` ("run was killed"), their
        ``pending`` ones ``cancelled`` ("not started: run was killed").  Returns the runs
        recovered.
        """
        with transaction(self.db) as db:
            rows = db.execute("SELECT * FROM runs WHERE result = 'running' ORDER BY seq").fetchall()
            for row in rows:
                db.execute(
                    "UPDATE builds SET status = 'cancelled', reason = ? "
                    "WHERE run_id = ? AND status = 'running'",
                    (KILLED_RUNNING, row["id"]),
                )
                db.execute(
                    "UPDATE builds SET status = 'cancelled', reason = ? "
                    "WHERE run_id = ? AND status = 'pending'",
                    (KILLED_PENDING, row["id"]),
                )
                # The last sign of life: when its last package started or ended.
                db.execute(
                    "UPDATE runs SET result = 'interrupted', finished_at = COALESCE("
                    "(SELECT MAX(COALESCE(finished_at, started_at)) FROM builds "
                    "WHERE run_id = runs.id), started_at) WHERE id = ?",
                    (row["id"],),
                )
        return [_run_record(r) for r in rows]

    def start_run(
        self,
        run_id: str,
        *,
        head: str | None,
        base: str | None,
        packages: Iterable[tuple[str, PlannedBuild]],
        started_at: float | None = None,
    ) -> None:
        """Record a new run and one ``pending`` row per build (``packages``: by job id)."""
        started = time.time() if started_at is None else started_at
        with transaction(self.db) as db:
            db.execute(
                "INSERT INTO runs (id, started_at, head, base, result, pid, host) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, started, head, base, os.getpid(), host()),
            )
            db.executemany(
                "INSERT INTO builds (run_id, package, target, commit_id, status, build_key, "
                "digest, deps) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                [
                    (run_id, *_columns(job), i.commit, i.key, i.digest, json.dumps(dict(i.deps)))
                    for job, i in packages
                ],
            )

    def finish_run(self, run_id: str, result: str, finished_at: float | None = None) -> None:
        """Record how a run ended; packages it left ``pending``/``running`` become cancelled."""
        if result not in RUN_RESULTS[1:]:
            raise ValueError(f"not a final run result: {result!r}")
        finished = time.time() if finished_at is None else finished_at
        with transaction(self.db) as db:
            db.execute(
                "UPDATE builds SET status = 'cancelled', reason = ?, "
                "finished_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END "
                "WHERE run_id = ? AND status IN ('pending', 'running')",
                (f"run ended: {result}", finished, run_id),
            )
            db.execute(
                "UPDATE runs SET result = ?, finished_at = ? WHERE id = ?",
                (result, finished, run_id),
            )

    def update_build(self, run_id: str, job: str, **values: Any) -> None:
        """Set columns of one build row (``job``: its job id), in one transaction."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable build columns: {', '.join(sorted(unknown))}")
        columns = ", ".join(f"{column} = ?" for column in values)
        params = [_storable(v) for v in values.values()]
        with transaction(self.db) as db:
            db.execute(
                f"UPDATE builds SET {columns} WHERE run_id = ? AND package = ? AND target = ?",
                (*params, run_id, *_columns(job)),
            )

    def record_files(self, run_id: str, job: str, files: Iterable[tuple[str, str, int]]) -> None:
        """Record the pooled artifacts (path, sha256, size) of one build row (``job``: its
        job id)."""
        with transaction(self.db) as db:
            row = db.execute(
                "SELECT id FROM builds WHERE run_id = ? AND package = ? AND target = ?",
                (run_id, *_columns(job)),
            ).fetchone()
            if row is None:
                return
            db.executemany(
                "INSERT OR REPLACE INTO build_files (build_id, path, sha256, size) "
                "VALUES (?, ?, ?, ?)",
                [(row["id"], path, sha, size) for path, sha, size in files],
            )

    def successes(self, keys: Iterable[str]) -> dict[str, PooledBuild]:
        """Per build key: its newest successful build with pooled files (a build recorded
        before the pool existed has none, and does not count)."""
        found: dict[str, PooledBuild] = {}
        for key in dict.fromkeys(keys):
            rows = self.db.execute(
                "SELECT * FROM builds WHERE build_key = ? AND status = 'succeeded' "
                "AND EXISTS (SELECT 1 FROM build_files WHERE build_id = builds.id) "
                "ORDER BY id DESC LIMIT 1",
                (key,),
            ).fetchall()
            if not rows:
                continue
            files = self.db.execute(
                "SELECT path, sha256, size FROM build_files WHERE build_id = ? ORDER BY path",
                (rows[0]["id"],),
            )
            found[key] = PooledBuild(
                BuildRecord.from_row(rows[0]),
                tuple(FileRecord(r["path"], r["sha256"], r["size"]) for r in files),
            )
        return found

    def latest_contents(self) -> set[str]:
        """The sha256 of every artifact of each package's latest successful build: what
        the pool keeps even when no release uses it."""
        rows = self.db.execute(
            "SELECT sha256 FROM build_files WHERE build_id IN "
            "(SELECT MAX(id) FROM builds WHERE status = 'succeeded' "
            "AND EXISTS (SELECT 1 FROM build_files WHERE build_id = builds.id) "
            "GROUP BY package, target)"
        )
        return {r["sha256"] for r in rows}

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        sql = "SELECT * FROM runs ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_run_record(r) for r in self.db.execute(sql)]

    def last_run(self) -> RunRecord | None:
        """The most recent run, or None."""
        runs = self.runs(limit=1)
        return runs[0] if runs else None

    def builds(self, run_id: str) -> list[BuildRecord]:
        """The package rows of a run, in the order they were planned."""
        run = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        stale = run is not None and _run_record(run).stale
        rows = self.db.execute("SELECT * FROM builds WHERE run_id = ? ORDER BY id", (run_id,))
        return [BuildRecord.from_row(r, run_stale=stale) for r in rows]

    def unfinished(self, run_id: str) -> list[BuildRecord]:
        """The package rows of a run that did not succeed (failed, skipped, cancelled)."""
        return [b for b in self.builds(run_id) if b.status in UNFINISHED]

    # ------------------------------------------------------------------ queries
    def history(self) -> dict[str, PackageHistory]:
        """Per build (job id): last success, last attempt, last row.  Three indexed queries."""
        stale = [
            record.id
            for record in map(
                _run_record, self.db.execute("SELECT * FROM runs WHERE result = 'running'")
            )
            if record.stale
        ]

        def latest(where: str, params: Sequence[str] = ()) -> dict[str, BuildRecord]:
            rows = self.db.execute(
                "SELECT * FROM builds WHERE id IN "
                f"(SELECT MAX(id) FROM builds WHERE {where} GROUP BY package, target)",
                params,
            )
            found = (BuildRecord.from_row(r, run_stale=r["run_id"] in stale) for r in rows)
            return {record.job_id: record for record in found}

        success = latest("status = 'succeeded'")
        attempt = latest("started_at IS NOT NULL")
        # A pending row counts only in a killed run (it reads as cancelled).
        marks = ", ".join("?" * len(stale))
        row = latest(f"status != 'pending' OR run_id IN ({marks})", stale)
        names = set(success) | set(attempt) | set(row)
        return {
            n: PackageHistory(success.get(n), attempt.get(n), row.get(n)) for n in sorted(names)
        }

    def successful(self, keys: Iterable[str]) -> dict[str, BuildRecord]:
        """Per build key of ``keys``: the latest successful build with that key (its
        ``package``, ``target``, ``artifacts``: what a release composes from)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, BuildRecord] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT * FROM builds WHERE id IN (SELECT MAX(id) FROM builds WHERE "
                f"status = 'succeeded' AND build_key IN ({marks}) GROUP BY build_key)",
                chunk,
            )
            for row in rows:
                record = BuildRecord.from_row(row)
                found[record.build_key] = record
        return found

    def rebuilds(self, commits: Mapping[str, str]) -> dict[str, int]:
        """Per build (``commits``: job id -> the commit about to be built): how many
        successful builds of it (same package, same target) at that same commit the
        state records.

        A package rebuilt at an unchanged commit (because what it builds against changed)
        takes this as its rebuild number, so that each build gets a new Release.
        """
        found = dict.fromkeys(commits, 0)
        rows = self.db.execute(
            "SELECT package, target, commit_id, COUNT(*) FROM builds "
            "WHERE status = 'succeeded' GROUP BY package, target, commit_id"
        )
        for package, target, commit, count in rows:
            job = job_id(package, target or None)
            if commits.get(job) == commit:
                found[job] = int(count)
        return found

    def weights(self, names: Iterable[str]) -> dict[str, float]:
        """Expected build durations (seconds) for the scheduler's critical paths.

        The median of the last :data:`WEIGHT_SAMPLES` successful builds of each build
        (``names``: job ids); one never built successfully gets the median of the others.  Empty when
        nothing is known (every package then weighs the same).
        """
        import statistics

        wanted = list(dict.fromkeys(names))
        samples: dict[str, list[float]] = {}
        rows = self.db.execute(
            "SELECT package, target, duration_s FROM builds "
            "WHERE status = 'succeeded' AND duration_s IS NOT NULL ORDER BY id DESC"
        )
        wanted_set = set(wanted)
        for package, target, duration in rows:
            job = job_id(package, target or None)
            if job in wanted_set:
                got = samples.setdefault(job, [])
                if len(got) < WEIGHT_SAMPLES:
                    got.append(float(duration))
        known = {n: statistics.median(samples[n]) for n in wanted if n in samples}
        if not known:
            return {}
        default = statistics.median(known.values())
        return {n: known.get(n, default) for n in wanted}
