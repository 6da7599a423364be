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
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superbuild.proc import Session

__all__ = ["MARKER", "dask_setup", "marked_processes", "run", "terminate"]

#: Environment variable naming the job that started a build process.
MARKER = "SUPERBUILD_DASK_JOB"


def run(fn: Callable[..., Any], args: tuple[Any, ...], key: str) -> Any:
    """The Dask task: a job's work ``fn(*args, session=...)`` in a session of its own.

    Every process the work starts carries ``SUPERBUILD_DASK_JOB=<key>``.  What the work
    raises propagates, and Dask retries the task (``retries=``), possibly elsewhere.
    """
    return fn(*args, session=Session(env={MARKER: key}))


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
    """Dask preload hook: a worker ignores SIGINT.

    Ctrl-C in a terminal reaches the whole foreground process group, worker processes of
    an embedded LocalCluster included; the coordinator stops them (and their builds)
    itself, in order, instead of every process dying with a traceback at once.
    """
    with contextlib.suppress(ValueError):  # not the main thread: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
