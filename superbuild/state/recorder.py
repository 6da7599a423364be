"""The recorder: an observer of one run's job events that writes them to the state.

Each event (:mod:`superbuild.jobs`) is one transaction, so the database follows the build
as it happens and a kill at any moment leaves it consistent.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superbuild.jobs import Event, JobCancelled, JobFinished, JobSkipped, JobStarted
from superbuild.layout import target_output
from superbuild.package import split_job_id
from superbuild.state.db import damaged
from superbuild.state.keys import BuildInputs
from superbuild.state.store import BuildState


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
    #: ``.superbuild/pool``: a success's artifacts are pooled there (None: not pooled).
    pool: Path | None = None
    started: dict[str, float] = field(default_factory=dict)
    finished: bool = False
    #: Why a write to the state failed (the run then fails with it).
    error: str | None = None

    @classmethod
    def for_packages(
        cls,
        state: BuildState,
        run_id: str,
        *,
        head: str | None,
        base: str | None,
        inputs: Mapping[str, BuildInputs],
        packages: Sequence[str],
        output: Path,
        pool: Path | None = None,
    ) -> RunRecorder:
        """The recorder of a run that builds ``packages`` (job ids; ``inputs``: of the whole
        product, by job id).  ``output`` is the output root (each target's below it)."""
        return cls(state, run_id, head, base, {n: inputs[n] for n in packages}, output, pool)

    def start(self) -> None:
        """Record the run and its packages (``pending``)."""
        self.state.start_run(
            self.run_id, head=self.head, base=self.base, packages=self.inputs.items()
        )

    def __call__(self, event: Event) -> None:
        """Record one scheduler event.

        A write that fails (a full disk: "database or disk is full") fails the run with
        that reason: the package is recorded as failed with it when the database still
        takes that one write, and :class:`StateError` (one line naming the file) is raised.
        """
        try:
            self._record(event)
        except sqlite3.Error as exc:
            self.error = f"the build state could not be written: {exc}"
            with contextlib.suppress(sqlite3.Error):
                self.state.update_build(
                    self.run_id,
                    event.job_id,
                    status="failed",
                    reason=self.error,
                    finished_at=time.time(),
                )
            raise damaged(self.state.path, exc) from None

    def _record(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self.started[event.job_id] = event.time
            self.state.update_build(
                self.run_id, event.job_id, status="running", started_at=event.time
            )
        elif isinstance(event, JobFinished):
            done = self._finished(event)
            if done["status"] == "succeeded" and self.pool is not None and event.result:
                done.update(self._pooled(event.job_id, list(event.result.artifacts)))
            self.state.update_build(self.run_id, event.job_id, **done)
        elif isinstance(event, (JobSkipped, JobCancelled)):
            status = "skipped" if isinstance(event, JobSkipped) else "cancelled"
            values: dict[str, Any] = {"status": status, "reason": event.reason}
            if event.job_id in self.started:
                values["finished_at"] = time.time()
                values["duration_s"] = values["finished_at"] - self.started[event.job_id]
            self.state.update_build(self.run_id, event.job_id, **values)

    def _finished(self, event: JobFinished) -> dict[str, Any]:
        result = event.result
        # A job that raised may still name its log (a pipeline's failure does).
        log = _log_path(getattr(event.exception, "log", None))
        if log is None and result is not None:
            log = _log_path(result.log)
        # Artifacts are relative to the job's target's output repository.
        root = target_output(self.output, split_job_id(event.job_id)[1])
        artifacts = [os.fspath(root / a) for a in result.artifacts] if result else []
        return {
            "status": event.status,
            "reason": event.reason,
            "finished_at": time.time(),
            "duration_s": event.duration_s,
            "log": log,
            "artifacts": json.dumps(artifacts),
        }

    def _pooled(self, job: str, artifacts: list[str]) -> dict[str, Any]:
        """Pool a success's artifacts (relative to its target's output repository) and
        record them (before the success itself, so a success always has its files); a
        pool that cannot take them fails the build."""
        from superbuild.release import pool

        assert self.pool is not None
        root = target_output(self.output, split_job_id(job)[1])
        try:
            files = pool.add_all(self.pool, root, artifacts)
        except OSError as exc:
            return {
                "status": "failed",
                "reason": f"artifacts could not be kept in {self.pool}: {exc.strerror or exc}",
            }
        self.state.record_files(self.run_id, job, [(f.path, f.sha256, f.size) for f in files])
        return {}

    def finish(self, result: str) -> None:
        """Record how the run ended (``success``, ``failure`` or ``interrupted``)."""
        if not self.finished:
            self.finished = True
            if self.error is None:
                self.state.finish_run(self.run_id, result)
                return
            with contextlib.suppress(sqlite3.Error):  # best effort: the write failed once
                self.state.finish_run(self.run_id, "failure")


def _log_path(value: object) -> str | None:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
