"""The build state: every build run and every package build, in ``.superbuild/state.db``.

An embedded SQLite database (standard library ``sqlite3``, WAL journal) in the
superproject's git-ignored ``.superbuild/`` folder.  Each state change is one
transaction (pre-commit's ``store.py`` pattern: ``contextlib.closing(sqlite3.connect())``
and ``with db:``), so a build killed at any moment leaves a consistent database; the next
build marks the runs it finds still ``running`` as ``interrupted``.

Only one ``superbuild build`` runs in a superproject at a time: :class:`BuildLock` holds
an ``flock`` on ``.superbuild/build.lock`` for the whole run, and a second build refuses
to start (exit 2) with a message naming the running one.

A package build is identified by its **build key**: a sha256 over the submodule commit
the superproject records, the package's effective manifest entry (``Package.digest``,
settings defaults included) and the build keys of the packages it requires (computed in
topological order over the whole product).  A package needs a rebuild exactly when its
key differs from the key of its last successful build.

Schema (``PRAGMA user_version`` is the number of :data:`MIGRATIONS` applied)::

    runs(seq, id, started_at, finished_at, head, base, result, pid, host)
        result: running | success | failure | interrupted
    builds(id, run_id, package, commit_id, status, reason, started_at, finished_at,
           duration_s, log, artifacts, build_key, digest, deps)
        status: pending | running | succeeded | failed | skipped | cancelled

Times are seconds since the epoch (UTC); ``artifacts`` is a JSON list of absolute paths,
``deps`` a JSON object (required package -> its build key at the time).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superbuild import layout
from superbuild.errors import SuperbuildError
from superbuild.jobs import Event, JobCancelled, JobFinished, JobSkipped, JobStarted

if TYPE_CHECKING:
    from superbuild.manifest import Product

#: Successful builds whose durations make a package's expected duration (their median).
WEIGHT_SAMPLES = 5
#: How long a connection waits for another one's write transaction (seconds).
BUSY_TIMEOUT_S = 30.0

RUN_RESULTS = ("running", "success", "failure", "interrupted")
BUILD_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled")
#: Statuses of a run's packages that ``--retry-failed`` rebuilds (pending and running
#: only remain in a run that was killed and not yet recovered).
UNFINISHED = ("failed", "skipped", "cancelled", "pending", "running")

#: Columns of ``builds`` that change while a run goes on.
_UPDATABLE = frozenset(
    {"status", "reason", "started_at", "finished_at", "duration_s", "log", "artifacts"}
)

KILLED_RUNNING = "run was killed"
KILLED_PENDING = "not started: run was killed"

#: Schema migrations: ``MIGRATIONS[n]`` takes the database from version n to n + 1.
#: Never edit a released migration; append a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    # 1: the initial schema.
    (
        """CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            started_at REAL NOT NULL,
            finished_at REAL,
            head TEXT,
            base TEXT,
            result TEXT NOT NULL CHECK (result IN
                ('running', 'success', 'failure', 'interrupted')),
            pid INTEGER NOT NULL
        )""",
        """CREATE TABLE builds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs (id),
            package TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
            reason TEXT NOT NULL DEFAULT '',
            started_at REAL,
            finished_at REAL,
            duration_s REAL,
            log TEXT,
            artifacts TEXT NOT NULL DEFAULT '[]',
            build_key TEXT NOT NULL,
            digest TEXT NOT NULL,
            deps TEXT NOT NULL DEFAULT '{}',
            UNIQUE (run_id, package)
        )""",
    ),
    # 2: the host of each run (a pid means nothing on another machine), and an index
    # for the per-package queries (last success, durations).
    (
        "ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX builds_by_package ON builds (package, status, started_at)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


class StateError(SuperbuildError):
    """The build state database cannot be used (corrupt, or from a newer superbuild)."""


class BuildLocked(SuperbuildError):
    """Another ``superbuild build`` runs in this superproject (exit 2)."""


# --------------------------------------------------------------------------- database


def db_path(repo: Path) -> Path:
    """``<superproject>/.superbuild/state.db`` (not created)."""
    return layout.db_path(repo)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one transaction per migration.

    The version is read again inside each write transaction, so two processes opening an
    old database at once apply each migration once.  Returns the version found first.
    """
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StateError(
            f"the build state has schema version {found}, newer than this superbuild "
            f"knows ({SCHEMA_VERSION}): upgrade superbuild"
        )
    version = found
    while version < SCHEMA_VERSION:
        with transaction(db):
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version >= SCHEMA_VERSION:
                break
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
    return found


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """Open the database at ``path`` (created if absent), migrated; closed on exit.

    The connection is in autocommit mode: writes go through :func:`transaction`.  A file
    that is not a usable database raises :class:`StateError`.
    """
    with contextlib.closing(
        sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    ) as db:
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a killed process loses nothing committed; only a power cut may
            # lose the last transactions (never corrupts).
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            migrate(db)
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"{path}: {exc} (the build state is damaged: move the file away to start afresh)"
            ) from None
        yield db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on success, rolled back on an exception."""
    if db.in_transaction:
        db.rollback()  # left open by an interrupt between BEGIN and the block below
    db.execute("BEGIN IMMEDIATE")
    with db:  # commits (or rolls back) the transaction begun above
        yield db


def _now() -> float:
    return time.time()


@functools.cache
def host() -> str:
    """This machine's name, as runs record it."""
    import socket

    return socket.gethostname()


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as ISO-8601 (UTC), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# --------------------------------------------------------------------------- build keys


@dataclass(frozen=True)
class BuildInputs:
    """What one package build depends on, and the key that sums it up."""

    commit: str  # the submodule commit the superproject records
    digest: str  # Package.digest: the effective manifest entry
    deps: Mapping[str, str]  # required package -> its build key
    key: str


def build_inputs(product: Product, links: Mapping[str, str]) -> dict[str, BuildInputs]:
    """The build inputs of every package of ``product`` (``links``: path -> recorded commit).

    Computed in topological order, so that a package's key covers its dependencies' keys.
    Cost: one sha256 per package, no git process.
    """
    graph = product.graph
    result: dict[str, BuildInputs] = {}
    for name in graph.order():
        entry = product.entries[name]
        commit = links.get(entry["path"], "")
        digest = product.digest(name)
        deps = {req: result[req].key for req in graph.requires[name]}
        raw = "\0".join(
            ["superbuild-build-key-1", name, commit, digest]
            + [f"{dep}={key}" for dep, key in sorted(deps.items())]
        )
        key = hashlib.sha256(raw.encode()).hexdigest()
        result[name] = BuildInputs(commit, digest, deps, key)
    return result


# --------------------------------------------------------------------------- records


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
    """One row of ``builds``: one package in one run."""

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


# --------------------------------------------------------------------------- the store


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
        path = db_path(repo)
        if not path.is_file():
            yield None
            return
        with connect(path) as db:
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
        packages: Iterable[tuple[str, BuildInputs]],
        started_at: float | None = None,
    ) -> None:
        """Record a new run and one ``pending`` row per package it will build."""
        started = _now() if started_at is None else started_at
        with transaction(self.db) as db:
            db.execute(
                "INSERT INTO runs (id, started_at, head, base, result, pid, host) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, started, head, base, os.getpid(), host()),
            )
            db.executemany(
                "INSERT INTO builds (run_id, package, commit_id, status, build_key, digest, deps) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                [
                    (run_id, name, i.commit, i.key, i.digest, json.dumps(dict(i.deps)))
                    for name, i in packages
                ],
            )

    def finish_run(self, run_id: str, result: str, finished_at: float | None = None) -> None:
        """Record how a run ended; packages it left ``pending``/``running`` become cancelled."""
        if result not in RUN_RESULTS[1:]:
            raise ValueError(f"not a final run result: {result!r}")
        finished = _now() if finished_at is None else finished_at
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

    def update_build(self, run_id: str, package: str, **values: Any) -> None:
        """Set columns of one package row, in one transaction."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable build columns: {', '.join(sorted(unknown))}")
        columns = ", ".join(f"{column} = ?" for column in values)
        with transaction(self.db) as db:
            db.execute(
                f"UPDATE builds SET {columns} WHERE run_id = ? AND package = ?",
                (*values.values(), run_id, package),
            )

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

    def unfinished(self, run_id: str) -> list[str]:
        """The packages of a run that did not succeed (failed, skipped, cancelled)."""
        return [b.package for b in self.builds(run_id) if b.status in UNFINISHED]

    # ------------------------------------------------------------------ queries
    def history(self) -> dict[str, PackageHistory]:
        """Per package: last success, last attempt, last row.  Three indexed queries."""
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
                f"(SELECT MAX(id) FROM builds WHERE {where} GROUP BY package)",
                params,
            )
            return {
                r["package"]: BuildRecord.from_row(r, run_stale=r["run_id"] in stale) for r in rows
            }

        success = latest("status = 'succeeded'")
        attempt = latest("started_at IS NOT NULL")
        # A pending row counts only in a killed run (it reads as cancelled).
        marks = ", ".join("?" * len(stale))
        row = latest(f"status != 'pending' OR run_id IN ({marks})", stale)
        names = set(success) | set(attempt) | set(row)
        return {
            n: PackageHistory(success.get(n), attempt.get(n), row.get(n)) for n in sorted(names)
        }

    def weights(self, names: Iterable[str]) -> dict[str, float]:
        """Expected build durations (seconds) for the scheduler's critical paths.

        The median of the last :data:`WEIGHT_SAMPLES` successful builds of each package;
        a package never built successfully gets the median of the others.  Empty when
        nothing is known (every package then weighs the same).
        """
        import statistics

        wanted = list(dict.fromkeys(names))
        samples: dict[str, list[float]] = {}
        rows = self.db.execute(
            "SELECT package, duration_s FROM builds "
            "WHERE status = 'succeeded' AND duration_s IS NOT NULL ORDER BY id DESC"
        )
        wanted_set = set(wanted)
        for package, duration in rows:
            if package in wanted_set:
                got = samples.setdefault(package, [])
                if len(got) < WEIGHT_SAMPLES:
                    got.append(float(duration))
        known = {n: statistics.median(samples[n]) for n in wanted if n in samples}
        if not known:
            return {}
        default = statistics.median(known.values())
        return {n: known.get(n, default) for n in wanted}

    # ------------------------------------------------------------------ recording
    def recorder(
        self,
        run_id: str,
        *,
        head: str | None,
        base: str | None,
        inputs: Mapping[str, BuildInputs],
        packages: Sequence[str],
        output: Path,
    ) -> RunRecorder:
        """An observer recording one run (see :class:`RunRecorder`)."""
        return RunRecorder(self, run_id, head, base, {n: inputs[n] for n in packages}, output)


@dataclass
class RunRecorder:
    """Records one run: :meth:`start`, then scheduler events, then :meth:`finish`.

    A scheduler observer (called in the scheduler's thread): each event is one
    transaction, so the database follows the build as it happens.
    """

    state: BuildState
    run_id: str
    head: str | None
    base: str | None
    inputs: dict[str, BuildInputs]
    output: Path
    started: dict[str, float] = field(default_factory=dict)
    finished: bool = False

    def start(self) -> None:
        """Record the run and its packages (``pending``)."""
        self.state.start_run(
            self.run_id, head=self.head, base=self.base, packages=self.inputs.items()
        )

    def __call__(self, event: Event) -> None:
        """Record one scheduler event."""
        if isinstance(event, JobStarted):
            self.started[event.job_id] = event.time
            self.state.update_build(
                self.run_id, event.job_id, status="running", started_at=event.time
            )
        elif isinstance(event, JobFinished):
            self.state.update_build(self.run_id, event.job_id, **self._finished(event))
        elif isinstance(event, (JobSkipped, JobCancelled)):
            status = "skipped" if isinstance(event, JobSkipped) else "cancelled"
            values: dict[str, Any] = {"status": status, "reason": event.reason}
            if event.job_id in self.started:
                values["finished_at"] = _now()
                values["duration_s"] = values["finished_at"] - self.started[event.job_id]
            self.state.update_build(self.run_id, event.job_id, **values)

    def _finished(self, event: JobFinished) -> dict[str, Any]:
        result = event.result
        log: str | None = None
        failed_log = getattr(event.exception, "log", None)  # a stage failure names its log
        if isinstance(failed_log, str | os.PathLike):
            log = os.fspath(failed_log)
        elif result is not None and result.log is not None:
            log = os.fspath(result.log)
        artifacts = [os.fspath(self.output / a) for a in result.artifacts] if result else []
        return {
            "status": event.status,
            "reason": event.reason,
            "finished_at": _now(),
            "duration_s": event.duration_s,
            "log": log,
            "artifacts": json.dumps(artifacts),
        }

    def finish(self, result: str) -> None:
        """Record how the run ended (``success``, ``failure`` or ``interrupted``)."""
        if not self.finished:
            self.finished = True
            self.state.finish_run(self.run_id, result)


# --------------------------------------------------------------------------- the lock


class BuildLock:
    """``flock`` on ``.superbuild/build.lock`` for a whole build run.

    The lock file names the holder (JSON: pid, run, host, started) so that a refused
    build can say who runs.  The kernel drops the lock when the holder exits, even on
    SIGKILL; the file itself stays.
    """

    def __init__(self, repo: Path, run_id: str) -> None:
        self.repo = repo
        self.run_id = run_id
        self.path = layout.lock_path(repo)
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`BuildLocked` naming the running build."""
        layout.state_dir(self.repo)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BuildLocked(self._refusal()) from None
        except BaseException:
            os.close(fd)
            raise
        holder = {
            "pid": os.getpid(),
            "run": self.run_id,
            "host": host(),
            "started": iso(_now()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self.fd = fd

    def _refusal(self) -> str:
        holder: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                holder = loaded
        who = (
            f"run {holder.get('run', '?')} (pid {holder.get('pid', '?')}, "
            f"started {holder.get('started', '?')})"
            if holder
            else "another process"
        )
        return (
            f"another build is running in this superproject: {who}; "
            f"wait for it to finish or stop it (lock: {self.path})"
        )

    def release(self) -> None:
        """Drop the lock (the file stays)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """Whether a package needs a rebuild, and why (``reason`` is empty when it does not)."""

    needs_rebuild: bool
    reason: str = ""


NEVER_BUILT = "never built"
LAST_FAILED = "last build failed"
COMMIT_DIFFERS = "recorded commit differs from last successful build"
MANIFEST_CHANGED = "manifest changed since last successful build"


def assess(
    inputs: Mapping[str, BuildInputs], history: Mapping[str, PackageHistory]
) -> dict[str, Verdict]:
    """Compare each package's current build inputs with its history.

    Up to date when the last successful build has the current build key.  Otherwise the
    reason is the first that applies of: the last build of the current inputs failed
    (``last build failed``; ``last build cancelled`` / ``skipped (...)`` likewise),
    ``never built``, the recorded commit differs, the manifest changed, a dependency's
    key changed (``dependency X rebuilt since`` when X has been rebuilt since,
    ``dependency X changed since last successful build`` otherwise).
    """
    verdicts: dict[str, Verdict] = {}
    for name, now in inputs.items():
        past = history.get(name, PackageHistory())
        ok = past.last_success
        if ok is not None and ok.build_key == now.key:
            verdicts[name] = Verdict(False)
            continue
        last = past.last_row
        if last is not None and last.build_key == now.key and last.status != "succeeded":
            if last.status == "failed":
                verdicts[name] = Verdict(True, LAST_FAILED)
                continue
            if last.status in ("cancelled", "skipped"):
                detail = f" ({last.reason})" if last.reason else ""
                verdicts[name] = Verdict(True, f"last build {last.status}{detail}")
                continue
        if ok is None:
            verdicts[name] = Verdict(True, NEVER_BUILT)
        elif ok.commit != now.commit:
            verdicts[name] = Verdict(True, COMMIT_DIFFERS)
        elif ok.digest != now.digest:
            verdicts[name] = Verdict(True, MANIFEST_CHANGED)
        else:
            verdicts[name] = Verdict(True, _dependency_reason(ok, now, history))
    return verdicts


def _dependency_reason(
    ok: BuildRecord, now: BuildInputs, history: Mapping[str, PackageHistory]
) -> str:
    changed = [dep for dep, key in sorted(now.deps.items()) if ok.deps.get(dep) != key]
    for dep in changed:
        dep_ok = history.get(dep, PackageHistory()).last_success
        if (
            dep_ok is not None
            and dep_ok.build_key == now.deps[dep]
            and (dep_ok.finished_at or 0) >= (ok.finished_at or 0)
        ):
            return f"dependency {dep} rebuilt since"
    if changed:
        return f"dependency {changed[0]} changed since last successful build"
    return "build inputs changed since last successful build"


def verdicts_for(
    state: BuildState | None, product: Product, links: Mapping[str, str]
) -> tuple[dict[str, BuildInputs], dict[str, PackageHistory], dict[str, Verdict]]:
    """Build inputs, history and verdicts of every package (``state`` None: no history)."""
    inputs = build_inputs(product, links)
    history = state.history() if state is not None else {}
    return inputs, history, assess(inputs, history)


def since_last_success(
    repo: Path, product: Product, links: dict[str, str]
) -> tuple[set[str], dict[str, str]]:
    """Packages whose build key differs from their last successful build, with reasons.

    ``links`` are the gitlinks (path -> recorded commit) of ``product``'s commit.  Reads
    ``.superbuild/state.db`` without creating it: with no state every package is
    returned, "never built".  Dependents are *not* added: use
    :func:`affected_since_last_success` (or ``product.graph.with_dependents``).
    """
    with BuildState.read(repo) as state:
        _, _, verdicts = verdicts_for(state, product, links)
    reasons = {n: v.reason for n, v in verdicts.items() if v.needs_rebuild}
    return set(reasons), reasons


@dataclass(frozen=True)
class SinceLastSuccess:
    """What ``--since-last-success`` selects: changed packages plus their dependents."""

    changed: set[str]
    reasons: dict[str, str]  # changed package -> why
    affected: list[str]  # in build order
    waves: list[list[str]]


def affected_since_last_success(
    repo: Path, product: Product, links: dict[str, str]
) -> SinceLastSuccess:
    """:func:`since_last_success` plus dependents, in waves: for ``changed``/``plan``/``build``."""
    changed, reasons = since_last_success(repo, product, links)
    graph = product.graph
    waves = graph.waves(graph.with_dependents(changed))
    return SinceLastSuccess(changed, reasons, [n for w in waves for n in w], waves)
