"""What runs on a Dask worker: one job's work, its processes marked with the job's key.

Importable wherever superbuild is installed (``pip install superbuild[dask]`` on every
build host); it imports Dask only inside :func:`dask_setup`, which Dask calls when the
module is given as a worker preload (``dask worker --preload superbuild.worker``, done
for you by the embedded LocalCluster).

The coordinator submits :func:`run` with a job's :class:`~superbuild.jobs.Work` and a
*job key*; neither knows what the work does (a package build, say).  Every process the
work starts gets ``SUPERBUILD_DASK_JOB=<key>`` in its environment, so that :func:`terminate` can
find and stop a cancelled build's process tree on a host -- including the orphans of a
worker process that was killed (build processes run in their own sessions and outlive
it).  Keys start with the coordinator's run token, so one call stops a whole run.

A job stops itself when nobody wants its result any more (:func:`run`'s watchdog
thread): when the coordinator went away (its client disconnected, so the scheduler
cancelled the task on this worker), or the scheduler was lost (the worker closes).  A
worker process that is SIGKILLed takes its jobs' processes with it (one
:mod:`superbuild.reaper` per worker process), and the scratch folders it leaves in
``TMPDIR`` are removed by the next job on the host (:func:`superbuild.cleanup.remove_dead_temp`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superbuild.proc import Session

__all__ = ["MARKER", "dask_setup", "marked_processes", "run", "terminate"]

#: Environment variable naming the job that started a build process.
MARKER = "SUPERBUILD_DASK_JOB"
#: The worker process's reaper marks the processes of its jobs with this variable.
REAPER_MARK = "_SUPERBUILD_WORKER"
#: How often a job's watchdog looks whether its result is still wanted.
WATCH_INTERVAL_S = 0.5
#: The Dask event topic on which a job says it began (the coordinator subscribes).
BEGAN_TOPIC = "superbuild-began"
#: Worker task states in which the job is still wanted (Dask's worker state machine).
_WANTED = frozenset({"executing", "long-running"})

#: This process's reaper: pid (a fork needs its own) -> the session holding it.
_reapers: dict[int, Session] = {}
_reaper_lock = threading.Lock()


def run(fn: Callable[..., Any], args: tuple[Any, ...], key: str) -> Any:
    """The Dask task: a job's work ``fn(*args, session=...)`` in a session of its own.

    Every process the work starts carries ``SUPERBUILD_DASK_JOB=<key>``.  What the work
    raises propagates, and Dask retries the task (``retries=``), possibly elsewhere.  On
    a Dask worker, a watchdog thread cancels the session (its processes are stopped and
    the work ends with :class:`~superbuild.errors.Interrupted`) as soon as the worker
    closes (scheduler lost) or the task is no longer wanted (coordinator gone, cancelled).
    """
    from superbuild.cleanup import remove_dead_temp

    remove_dead_temp()  # what jobs of a SIGKILLed worker on this host left in TMPDIR
    watched = _current_task()
    # On a Dask worker, the worker process's reaper stops the job's processes if it dies.
    session = Session(env={MARKER: key, **(_reaper_env() if watched else {})})
    done = threading.Event()
    if watched is not None:
        with contextlib.suppress(Exception):  # progress only: the build goes on without it
            watched[0].log_event(BEGAN_TOPIC, {"key": str(watched[1])})
        threading.Thread(
            target=_watch, args=(*watched, session, done), name="superbuild-watch", daemon=True
        ).start()
    try:
        return fn(*args, session=session)
    finally:
        done.set()


def _current_task() -> tuple[Any, Any] | None:
    """``(worker, task key)`` when called in a Dask task, else None (no Dask needed)."""
    import sys

    if "distributed" not in sys.modules:
        return None
    distributed: Any = sys.modules["distributed"]
    try:
        worker = distributed.get_worker()
        return worker, worker.get_current_task()
    except (ValueError, AttributeError, KeyError):
        return None


def _still_wanted(worker: Any, key: Any) -> bool:
    status = str(getattr(getattr(worker, "status", None), "name", ""))
    if status not in ("running", "paused"):
        return False  # the worker closes: the scheduler is gone, or it was told to stop
    task = worker.state.tasks.get(key)
    return task is not None and task.state in _WANTED


def _watch(worker: Any, key: Any, session: Session, done: threading.Event) -> None:
    """Cancel ``session`` once the worker no longer wants the task ``key`` to run."""
    while not done.wait(WATCH_INTERVAL_S):
        try:
            wanted = _still_wanted(worker, key)
        except Exception:  # the worker's state changed under us: ask again
            continue
        if not wanted:
            session.cancel(grace=1.0)
            return


def _reaper_env() -> dict[str, str]:
    """The mark of this process's reaper (started on first use, again after a fork):
    whatever a job started is stopped when this worker process dies, even by SIGKILL."""
    with _reaper_lock:
        holder = _reapers.get(os.getpid())
        if holder is None:
            holder = Session()
            try:
                holder.start_watchdog(REAPER_MARK)
            except OSError:
                return {}
            _reapers.clear()
            _reapers[os.getpid()] = holder
        return {REAPER_MARK: holder.env[REAPER_MARK]}


def marked_processes(prefix: str) -> list[int]:
    """Pids on this host whose environment has ``SUPERBUILD_DASK_JOB=<prefix>...``.

    Reads ``/proc/<pid>/environ`` (Linux; processes of other users are unreadable and
    skipped).  Elsewhere: an empty list.
    """
    needle = f"{MARKER}={prefix}".encode()
    me = os.getpid()
    found = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(needle) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def terminate(prefix: str, grace: float = 1.0) -> int:
    """SIGTERM every marked process of ``prefix`` on this host, SIGKILL what is left.

    Returns how many processes were found.  Safe to call anywhere (a worker through
    ``Client.run``, the coordinator): only processes that carry the marker are touched.
    """
    pids = marked_processes(prefix)
    if not pids:
        return 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if _alive(p)]
    for pid in marked_processes(prefix):  # what survived, and children started meanwhile
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def dask_setup(worker: Any) -> None:
    """Dask preload hook: a worker ignores SIGINT, and does not log task bytes.

    Ctrl-C in a terminal reaches the whole foreground process group, worker processes of
    an embedded LocalCluster included; the coordinator stops them (and their builds)
    itself, in order, instead of every process dying with a traceback at once.

    ``distributed.protocol.pickle`` logs the first 10 kB of a task it cannot unpickle at
    INFO level: with a job, that is its tarball and ``env:``.  Its level is raised to
    WARNING (docs/distributed.md says how without this preload).
    """
    import logging

    logging.getLogger("distributed.protocol.pickle").setLevel(logging.WARNING)
    with contextlib.suppress(ValueError):  # not the main thread: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
