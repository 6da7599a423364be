"""What runs on a Dask worker: build one package from its :class:`JobInputs`.

Importable wherever superbuild is installed (``pip install superbuild[dask]`` on every
build host); it imports Dask only inside :func:`dask_setup`, which Dask calls when the
module is given as a worker preload (``dask worker --preload superbuild.worker``, done
for you by the embedded LocalCluster).

The coordinator submits :func:`build` with a *job key*.  Every process the build starts
gets ``SUPERBUILD_DASK_JOB=<key>`` in its environment, so that :func:`terminate` can
find and stop a cancelled build's process tree on a host -- including the orphans of a
worker process that was killed (build processes run in their own sessions and outlive
it).  Keys start with the coordinator's run token, so one call stops a whole run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from superbuild import proc
from superbuild.pipelines import JobInputs, JobOutputs, build_from_inputs

__all__ = ["MARKER", "build", "dask_setup", "marked_processes", "terminate"]

#: Environment variable naming the job that started a build process.
MARKER = "SUPERBUILD_DASK_JOB"


class MarkedRunner:
    """A :class:`~superbuild.pipelines.Runner` that tags each command with the job key."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: IO[bytes],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> proc.Completed:
        tagged = dict(os.environ if env is None else env)
        tagged[MARKER] = self.key
        return proc.run_logged(cmd, log=log, cwd=cwd, env=tagged, timeout=timeout)


def build(inputs: JobInputs, key: str) -> JobOutputs:
    """The Dask task: build ``inputs`` in a temporary folder, return the outputs as bytes.

    A build failure comes back in :attr:`JobOutputs.failure` (with its logs); other
    exceptions propagate, and Dask retries the task (``retries=``) possibly elsewhere.
    """
    return build_from_inputs(inputs, MarkedRunner(key))


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
