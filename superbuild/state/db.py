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
    builds(id, run_id, package, target, commit_id, status, reason, started_at,
           finished_at, duration_s, log, artifacts, build_key, digest, deps)
        status: pending | running | succeeded | failed | skipped | cancelled
        target: a name of superbuild.yaml ``targets:``, '' for the implicit target
    build_files(build_id, path, sha256, size)
        each artifact of a successful build, as pooled (``.superbuild/pool``)

Times are seconds since the epoch (UTC); ``artifacts`` is a JSON list of absolute paths,
``deps`` a JSON object (required package's job id -> its build key at the time).
One row per (package, target) and run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from superbuild.errors import EXIT_FAILED, SuperbuildError
from superbuild.fileio import free_if_full

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
    # 3: the target of each build ('' for the implicit one): one row per (package,
    # target) in a run.  SQLite cannot change a UNIQUE constraint: the table is copied.
    (
        """CREATE TABLE builds_3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs (id),
            package TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
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
            UNIQUE (run_id, package, target)
        )""",
        "INSERT INTO builds_3 (id, run_id, package, commit_id, status, reason, started_at, "
        "finished_at, duration_s, log, artifacts, build_key, digest, deps) "
        "SELECT id, run_id, package, commit_id, status, reason, started_at, finished_at, "
        "duration_s, log, artifacts, build_key, digest, deps FROM builds",
        "DROP TABLE builds",
        "ALTER TABLE builds_3 RENAME TO builds",
        "CREATE INDEX builds_by_package ON builds (package, target, status, started_at)",
    ),
    # 4: the artifacts of each successful build by content (superbuild.release.pool), so
    # that a release can be made of them after the output repository replaced them.
    (
        """CREATE TABLE build_files (
            build_id INTEGER NOT NULL REFERENCES builds (id),
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (build_id, path)
        )""",
        "CREATE INDEX builds_by_key ON builds (build_key, status)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


class StateError(SuperbuildError):
    """The build state database cannot be used (corrupt, or from a newer superbuild)."""


class StateDiskFull(StateError):
    """The build state's file system is full: the run fails (exit 1) like any full disk."""

    exit_code = EXIT_FAILED


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


def _uri(path: Path, *, read_only: bool) -> str:
    """The SQLite URI of ``path`` (any bytes, percent-encoded), read-only if asked.

    A read-only open of a folder nobody may write to is ``immutable`` (SQLite could not
    create the WAL index next to the database); otherwise ``mode=ro``.
    """
    uri = "file:" + urllib.parse.quote(os.fsencode(path.absolute()))
    if not read_only:
        return uri + "?mode=rwc"
    shm = Path(f"{path}-shm")
    if os.access(path.parent, os.W_OK) or shm.exists():
        return uri + "?mode=ro"
    return uri + "?mode=ro&immutable=1"


def damaged(path: Path, exc: BaseException) -> StateError:
    """The one line for an SQLite error on ``path``: what happened and what to do."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError) or text.startswith("Could not decode"):
        text = "it holds text that is not UTF-8"
    if "disk I/O error" in text and free_if_full(path.parent) is not None:
        text = "no space left on device (SQLite: disk I/O error)"
    if "disk is full" in text or "no space left" in text:
        return StateDiskFull(f"{os.fsdecode(path)}: {text} (free some space and run again)")
    if "disk I/O error" in text:
        return StateError(f"{os.fsdecode(path)}: {text} (check the disk and run again)")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StateError(
            f"{os.fsdecode(path)}: {text} (superbuild needs to write the build state here: "
            "run it where the superproject's .superbuild/ folder is writable)"
        )
    return StateError(
        f"{os.fsdecode(path)}: {text} (the build state is damaged: move the file away to start afresh)"
    )


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """Open the database at ``path`` (created if absent), migrated; closed on exit.

    The connection is in autocommit mode: writes go through :func:`transaction`.  A file
    that is not a usable database raises :class:`StateError`, and so does any SQLite error
    (or undecodable text) raised inside the ``with`` block: one line naming the file and
    what to do.  ``read_only`` opens it with ``mode=ro`` (``immutable`` when its folder is
    not writable): nothing is created, migrated or changed; an older schema is an error
    that says to run a build.
    """
    try:
        db = sqlite3.connect(
            _uri(path, read_only=read_only),
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            uri=True,
        )
    except sqlite3.Error as exc:
        raise damaged(path, exc) from None
    with contextlib.closing(db):
        try:
            db.row_factory = sqlite3.Row
            if read_only:
                db.execute("PRAGMA query_only = ON")
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    migrate(db)  # raises: from a newer superbuild
                if version < SCHEMA_VERSION:
                    raise StateError(
                        f"{os.fsdecode(path)}: the build state has schema version {version}, "
                        f"older than this superbuild's ({SCHEMA_VERSION}): run a build once "
                        "to upgrade it"
                    )
            else:
                db.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a killed process loses nothing committed; only a power cut
                # may lose the last transactions (never corrupts).
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA foreign_keys = ON")
                migrate(db)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise damaged(path, exc) from None
        try:
            yield db
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise damaged(path, exc) from None
        except IndexError as exc:
            if str(exc) != _NO_COLUMN:
                raise
            # sqlite3.Row has no such column: a table whose schema was damaged.
            raise damaged(path, sqlite3.DatabaseError("a table lacks a column")) from None


#: What :class:`sqlite3.Row` raises for a column the row does not have.
_NO_COLUMN = "No item with that key"


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on success, rolled back on an exception."""
    if db.in_transaction:
        db.rollback()  # left open by an interrupt between BEGIN and the block below
    db.execute("BEGIN IMMEDIATE")
    with db:  # commits (or rolls back) the transaction begun above
        yield db
