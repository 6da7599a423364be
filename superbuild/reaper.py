"""The run's watchdog: ``python -m superbuild.reaper NAME VALUE``.

Started by :meth:`superbuild.proc.Session.start_watchdog` with stdin the read end of a
pipe whose write end only the coordinator holds.  When that pipe reads end-of-file (the
coordinator exited, was SIGKILLed, or closed it at the end of the run), every process
whose environment carries ``NAME=VALUE`` (the run's children and their descendants,
``setsid`` daemons included) is stopped: SIGTERM, SIGKILL after a grace.
"""

from __future__ import annotations

import os
import sys

from superbuild.proc import kill_marked


def main(argv: list[str]) -> int:
    name, value = argv
    while os.read(0, 4096):
        pass
    kill_marked(name, value, grace=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
