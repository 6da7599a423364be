"""The build state database: schema and migrations, recording, recovery, keys, weights, lock."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from superbuild import state as st
from superbuild.jobs import JobCancelled, JobFinished, JobResult, JobSkipped, JobStarted
from superbuild.manifest import Product
from superbuild.package import Package
from superbuild.state import (
    BuildInputs,
    BuildLock,
    BuildLocked,
    BuildState,
    RunRecorder,
    StateError,
    assess,
    build_inputs,
)

# The first released schema, written out by hand: what an old superbuild left behind.
SCHEMA_V1 = """
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    started_at REAL NOT NULL,
    finished_at REAL,
    head TEXT,
    base TEXT,
    result TEXT NOT NULL CHECK (result IN ('running', 'success', 'failure', 'interrupted')),
    pid INTEGER NOT NULL
);
CREATE TABLE builds (
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
);
INSERT INTO runs (id, started_at, finished_at, head, result, pid)
    VALUES ('old-run', 100.0, 160.0, 'h1', 'success', 4242);
INSERT INTO builds (run_id, package, commit_id, status, started_at, finished_at, duration_s,
                    artifacts, build_key, digest)
    VALUES ('old-run', 'base', 'c1', 'succeeded', 100.0, 160.0, 60.0, '["/out/base.rpm"]',
            'k1', 'd1');
PRAGMA user_version = 1;
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "superproject"
    path.mkdir()
    return path


@contextlib.contextmanager
def opened(repo: Path) -> Iterator[BuildState]:
    with BuildState.open(repo) as state:
        yield state


def inputs(commit: str, key: str, digest: str = "d", **deps: str) -> BuildInputs:
    return BuildInputs(commit, digest, deps, key)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


# --------------------------------------------------------------------------- schema


def test_new_database_is_wal_and_current(repo: Path) -> None:
    with opened(repo) as state:
        assert state.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == st.SCHEMA_VERSION
    assert (repo / ".superbuild" / ".gitignore").read_text().strip().endswith("*")


def test_version_1_database_is_migrated(repo: Path) -> None:
    (repo / ".superbuild").mkdir()
    path = repo / ".superbuild" / "state.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
    with opened(repo) as state:
        db = state.db
        assert db.execute("PRAGMA user_version").fetchone()[0] == st.SCHEMA_VERSION == 4
        [run] = state.runs()
        assert (run.id, run.result, run.pid, run.host) == ("old-run", "success", 4242, "")
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"builds_by_package", "builds_by_key"} <= indexes
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "build_files" in tables
        history = state.history()
        assert history["base"].last_success is not None
        assert history["base"].last_success.artifacts == ("/out/base.rpm",)
        assert state.weights(["base"]) == {"base": 60.0}
        # A success recorded before the pool existed has no pooled files: no release.
        assert state.successes([history["base"].last_success.build_key]) == {}
    with opened(repo) as state:  # opening again migrates nothing
        assert st.migrate(state.db) == st.SCHEMA_VERSION


def test_newer_schema_is_refused(repo: Path) -> None:
    (repo / ".superbuild").mkdir()
    with contextlib.closing(sqlite3.connect(repo / ".superbuild" / "state.db")) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match="schema version 99, newer"), opened(repo):
        pass


def test_damaged_file_is_a_clear_error(repo: Path) -> None:
    (repo / ".superbuild").mkdir()
    (repo / ".superbuild" / "state.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="move the file away"), opened(repo):
        pass


def test_read_creates_nothing(repo: Path) -> None:
    with BuildState.read(repo) as state:
        assert state is None
    assert not (repo / ".superbuild").exists()


def test_failed_transaction_leaves_nothing(repo: Path) -> None:
    with opened(repo) as state:
        state.start_run("r1", head="h", base=None, packages=[("a", inputs("c", "k"))])
        with pytest.raises(sqlite3.IntegrityError):  # same run id twice: rolled back whole
            state.start_run("r2", head="h", base=None, packages=[("a", inputs("c", "k"))] * 2)
        assert [r.id for r in state.runs()] == ["r1"]
        assert state.db.execute("SELECT COUNT(*) FROM builds").fetchone()[0] == 1


# --------------------------------------------------------------------------- recording


def record_run(state: BuildState, run_id: str, plan: dict[str, BuildInputs]) -> RunRecorder:
    rec = RunRecorder.for_packages(
        state, run_id, head="h", base=None, inputs=plan, packages=list(plan), output=Path("/out")
    )
    rec.start()
    return rec


def test_recorder_follows_events(repo: Path) -> None:
    plan = {n: inputs(f"c-{n}", f"k-{n}") for n in ("a", "b", "c", "d")}
    with opened(repo) as state:
        rec = record_run(state, "r1", plan)
        assert {b.status for b in state.builds("r1")} == {"pending"}
        rec(JobStarted("a", 1000.0))
        assert state.builds("r1")[0].status == "running"
        rec(
            JobFinished(
                "a",
                "succeeded",
                "",
                2.5,
                JobResult("succeeded", artifacts=["x.rpm"], log="/logs/a"),
            )
        )
        rec(JobStarted("b", 1001.0))
        rec(JobFinished("b", "failed", "b: rpm stage failed", 1.0, None))
        rec(JobSkipped("c", "dependency b failed"))
        rec(JobCancelled("d", "not started: interrupted"))
        rec.finish("failure")
        builds = {b.package: b for b in state.builds("r1")}
        assert builds["a"].status == "succeeded" and builds["a"].duration_s == 2.5
        assert builds["a"].artifacts == ("/out/x.rpm",) and builds["a"].log == "/logs/a"
        assert builds["a"].started_at == 1000.0 and builds["a"].finished_at is not None
        assert (builds["b"].status, builds["b"].reason) == ("failed", "b: rpm stage failed")
        assert (builds["c"].status, builds["c"].reason) == ("skipped", "dependency b failed")
        assert builds["d"].status == "cancelled" and builds["d"].started_at is None
        assert builds["a"].build_key == "k-a" and builds["a"].commit == "c-a"
        run = state.last_run()
        assert run is not None and (run.result, run.head) == ("failure", "h")
        assert [b.package for b in state.unfinished("r1")] == ["b", "c", "d"]


class FailedWithLog(Exception):
    """Any exception that names a log (as a pipeline's failure does)."""

    def __init__(self, log: Path) -> None:
        super().__init__("failed")
        self.log = log


def test_recorder_takes_the_log_of_a_job_that_raised(repo: Path) -> None:
    plan = {n: inputs(f"c-{n}", f"k-{n}") for n in ("a", "b")}
    with opened(repo) as state:
        rec = record_run(state, "r1", plan)
        for name in plan:
            rec(JobStarted(name, 1000.0))
        raised = FailedWithLog(Path("/logs/a/rpm.log"))
        rec(JobFinished("a", "failed", "a: failed", 1.0, None, raised))
        rec(JobFinished("b", "failed", "b: boom", 1.0, None, RuntimeError("boom")))
        rec.finish("failure")
        builds = {b.package: b for b in state.builds("r1")}
        assert builds["a"].log == "/logs/a/rpm.log" and builds["b"].log is None


def test_killed_run_is_seen_as_such_then_recovered(repo: Path) -> None:
    plan = {n: inputs(f"c-{n}", f"k-{n}") for n in ("a", "b", "c")}
    with opened(repo) as state:
        rec = record_run(state, "r1", plan)
        rec(JobStarted("a", 1000.0))
        rec(JobFinished("a", "succeeded", "", 1.0, JobResult("succeeded")))
        rec(JobStarted("b", 1001.0))
        # The process "dies" here: make the run's pid one that is gone.
        state.db.execute("UPDATE runs SET pid = ?", (dead_pid(),))
    with opened(repo) as state:
        # Read without the lock: shown the way recovery will record it.
        assert [(b.package, b.status, b.reason) for b in state.builds("r1")] == [
            ("a", "succeeded", ""),
            ("b", "cancelled", st.KILLED_RUNNING),
            ("c", "cancelled", st.KILLED_PENDING),
        ]
        history = state.history()
        assert history["b"].last_attempt is not None
        assert history["b"].last_attempt.status == "cancelled"
        [killed] = state.recover()
        assert killed.id == "r1"
        run = state.last_run()
        assert run is not None and run.result == "interrupted" and run.finished_at is not None
        assert [b.package for b in state.unfinished("r1")] == ["b", "c"]
        assert state.recover() == []


def test_running_run_of_a_live_process_is_not_stale(repo: Path) -> None:
    with opened(repo) as state:
        rec = record_run(state, "r1", {"a": inputs("c", "k")})
        rec(JobStarted("a", 1.0))
        assert state.builds("r1")[0].status == "running"  # this very process is alive
        assert state.history()["a"].last_attempt is not None


# --------------------------------------------------------------------------- keys, verdicts


def product(**requires: tuple[str, ...]) -> Product:
    return Product.of(
        "head",
        [Package(n, f"repos/{n}", f"manifests/{n}.yaml", reqs) for n, reqs in requires.items()],
    )


def test_build_keys_cover_commit_manifest_and_dependencies() -> None:
    p = product(base=(), client=("base",), tool=())
    links = {"repos/base": "b1", "repos/client": "c1", "repos/tool": "t1"}
    keys = {n: i.key for n, i in build_inputs(p, links).items()}
    assert build_inputs(p, links)["client"].deps == {"base": keys["base"]}

    bumped = {n: i.key for n, i in build_inputs(p, {**links, "repos/base": "b2"}).items()}
    assert bumped["base"] != keys["base"] and bumped["client"] != keys["client"]
    assert bumped["tool"] == keys["tool"]

    edited = Product.of(
        "head",
        [
            Package("base", "repos/base", "manifests/base.yaml", (), env=(("X", "1"),)),
            *(pkg for pkg in p.packages.values() if pkg.name != "base"),
        ],
    )
    changed = {n: i.key for n, i in build_inputs(edited, links).items()}
    assert changed["base"] != keys["base"] and changed["client"] != keys["client"]
    assert changed["tool"] == keys["tool"]


def history_of(repo: Path, runs: list[tuple[str, dict[str, tuple[BuildInputs, str]]]]) -> Any:
    """Record finished runs: run id -> package -> (inputs, final status)."""
    with opened(repo) as state:
        for t, (run_id, packages) in enumerate(runs):
            rec = record_run(state, run_id, {n: i for n, (i, _) in packages.items()})
            for name, (_, status) in packages.items():
                if status == "skipped":
                    rec(JobSkipped(name, "dependency x failed"))
                    continue
                rec(JobStarted(name, 1000.0 + t))
                rec(JobFinished(name, status, "", 1.0, None))  # type: ignore[arg-type]
            rec.finish("success")
        return state.history()


def test_verdicts(repo: Path) -> None:
    base1 = inputs("b1", "kb1", "db")
    base2 = inputs("b2", "kb2", "db")
    client1 = BuildInputs("c1", "dc", {"base": "kb1"}, "kc1")
    now = {
        "base": base2,  # rebuilt at its current key
        "client": BuildInputs("c1", "dc", {"base": "kb2"}, "kc2"),  # base rebuilt since
        "tool": inputs("t1", "kt1"),  # failed at this key
        "app": inputs("a1", "ka1"),  # skipped at this key
        "new": inputs("n1", "kn1"),
        "bumped": inputs("x2", "kx2"),
        "edited": inputs("e1", "ke2", "de2"),
        "downstream": BuildInputs("s1", "ds", {"client": "kc2"}, "ks2"),
    }
    history = history_of(
        repo,
        [
            ("r1", {"base": (base1, "succeeded"), "client": (client1, "succeeded")}),
            ("r2", {"base": (base2, "succeeded")}),
            (
                "r3",
                {"tool": (inputs("t1", "kt1"), "failed"), "app": (inputs("a1", "ka1"), "skipped")},
            ),
            ("r4", {"bumped": (inputs("x1", "kx1"), "succeeded")}),
            ("r5", {"edited": (inputs("e1", "ke1", "de1"), "succeeded")}),
            (
                "r6",
                {"downstream": (BuildInputs("s1", "ds", {"client": "kc1"}, "ks1"), "succeeded")},
            ),
        ],
    )
    verdicts = {n: (v.needs_rebuild, v.reason) for n, v in assess(now, history).items()}
    assert verdicts == {
        "base": (False, ""),
        "client": (True, "dependency base rebuilt since"),
        "tool": (True, "last build failed"),
        "app": (True, "last build skipped (dependency x failed)"),
        "new": (True, "never built"),
        "bumped": (True, "recorded commit differs from last successful build"),
        "edited": (True, "manifest changed since last successful build"),
        "downstream": (True, "dependency client changed since last successful build"),
    }


# --------------------------------------------------------------------------- weights


def test_weights_are_median_of_recent_successes(repo: Path) -> None:
    with opened(repo) as state:
        assert state.weights(["a"]) == {}
        durations = {"a": [100.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [10.0, 30.0], "f": [99.0]}
        for i in range(6):
            plan = {n: inputs("c", "k") for n, d in durations.items() if i < len(d)}
            rec = record_run(state, f"r{i}", plan)
            for name in plan:
                rec(JobStarted(name, float(i)))
                status = "failed" if name == "f" else "succeeded"
                rec(JobFinished(name, status, "", durations[name][i], None))  # type: ignore[arg-type]
            rec.finish("success")
        weights = state.weights(["a", "b", "f", "never"])
        # a: the last 5 (1..5, not the old 100) -> 3; b: 20; f failed: unknown -> median
        assert weights == {"a": 3.0, "b": 20.0, "f": 11.5, "never": 11.5}


# --------------------------------------------------------------------------- lock


def test_second_lock_is_refused_naming_the_holder(repo: Path) -> None:
    with BuildLock(repo, "run-one"):
        with pytest.raises(BuildLocked) as refused:
            BuildLock(repo, "run-two").acquire()
        [line] = refused.value.lines
        assert "run run-one" in line and f"pid {os.getpid()}" in line
        assert refused.value.exit_code == 2
    with BuildLock(repo, "run-three"):  # released: free again
        pass
