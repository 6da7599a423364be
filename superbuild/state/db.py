"""The build state database: ``.superbuild/state.db``, its schema and its migrations.

An embedded SQLite database (standard library ``sqlite3``, WAL journal) in the
superproject's git-ignored ``.superbuild/`` folder (:mod:`superbuild.layout`).  Each state
change is one transaction (pre-commit's ``store.py`` pattern:
``contextlib.closing(sqlite3.connect())`` and ``with db:``), so a build killed at any
moment leaves a consistent database; the next build marks the runs it finds still
``running`` as ``interrupted``.

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
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from superbuild.errors import SuperbuildError

#: How long a connection waits for another one's write transaction (seconds).
BUSY_TIMEOUT_S = 30.0

RUN_RESULTS = ("running", "success", "failure", "interrupted")
BUILD_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled")

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
