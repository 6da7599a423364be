"""The build lock: one ``superbuild build`` at a time in a superproject.

:class:`BuildLock` holds an ``flock`` on ``.superbuild/build.lock`` for the whole run,
and a second build refuses to start (exit 2) with a message naming the running one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from superbuild import layout
from superbuild.errors import SuperbuildError
from superbuild.state.store import host, iso


class BuildLocked(SuperbuildError):
    """Another ``superbuild build`` runs in this superproject (exit 2)."""


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
            "started": iso(time.time()),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, os.fspath(self.path)) from exc
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
