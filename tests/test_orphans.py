"""Nothing outlives the run: a SIGKILLed coordinator's children and daemons are stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from superbuild import proc

COORDINATOR = """
import sys
from superbuild import proc
session = proc.Session()
session.start_watchdog()
with open(sys.argv[1], "wb") as log:
    session.run_logged(["sh", "-c", "setsid sleep 600 & sleep 600 & echo started; sleep 600"], log=log)
"""


def _marked(mark: str) -> list[int]:
    return proc.marked_pids("SB_TEST_MARK", mark)


def test_a_sigkilled_coordinators_children_and_daemons_stop(tmp_path: Path) -> None:
    mark = f"orphan-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SB_TEST_MARK": mark, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = tmp_path / "log"
    coordinator = subprocess.Popen(
        [sys.executable, "-c", COORDINATOR, str(log)], env=env, stdin=subprocess.DEVNULL
    )
    try:
        end = time.monotonic() + 30
        while b"started" not in (log.read_bytes() if log.exists() else b""):
            assert time.monotonic() < end, "the step never started"
            time.sleep(0.05)
        time.sleep(0.2)
        assert len(_marked(mark)) >= 4  # coordinator, sh, two sleeps, the daemon
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        end = time.monotonic() + 10
        while (left := _marked(mark)) and time.monotonic() < end:
            time.sleep(0.05)
        assert left == []
    finally:
        coordinator.kill()
        proc.kill_marked("SB_TEST_MARK", mark)
