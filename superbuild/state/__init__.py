"""The build state: every build run and every package build, in ``.superbuild/state.db``.

- :mod:`~superbuild.state.db`: the SQLite database, its schema and migrations;
- :mod:`~superbuild.state.keys`: build keys, and verdicts (does a package need a rebuild);
- :mod:`~superbuild.state.store`: :class:`BuildState`, the queries and their records;
- :mod:`~superbuild.state.recorder`: :class:`RunRecorder`, which writes a run's events;
- :mod:`~superbuild.state.lock`: :class:`BuildLock`, one build at a time.

The names other modules use are importable from here.
"""

from __future__ import annotations

from superbuild.state.db import (
    MIGRATIONS,
    SCHEMA_VERSION,
    StateError,
    connect,
    migrate,
    transaction,
)
from superbuild.state.keys import (
    COMMIT_DIFFERS,
    LAST_FAILED,
    MANIFEST_CHANGED,
    NEVER_BUILT,
    BuildInputs,
    Verdict,
    assess,
    build_inputs,
    since_last_success,
    verdicts_for,
)
from superbuild.state.lock import BuildLock, BuildLocked
from superbuild.state.recorder import RunRecorder
from superbuild.state.store import (
    KILLED_PENDING,
    KILLED_RUNNING,
    UNFINISHED,
    BuildRecord,
    BuildState,
    FileRecord,
    PackageHistory,
    PooledBuild,
    RunRecord,
    iso,
)

__all__ = [
    "COMMIT_DIFFERS",
    "KILLED_PENDING",
    "KILLED_RUNNING",
    "LAST_FAILED",
    "MANIFEST_CHANGED",
    "MIGRATIONS",
    "NEVER_BUILT",
    "SCHEMA_VERSION",
    "UNFINISHED",
    "BuildInputs",
    "BuildLock",
    "BuildLocked",
    "BuildRecord",
    "BuildState",
    "FileRecord",
    "PackageHistory",
    "PooledBuild",
    "RunRecord",
    "RunRecorder",
    "StateError",
    "Verdict",
    "assess",
    "build_inputs",
    "connect",
    "iso",
    "migrate",
    "since_last_success",
    "transaction",
    "verdicts_for",
]
