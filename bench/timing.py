"""Timing commands for the benchmarks: wall clock, failures loud, warm-ups discarded."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def use_bytecode_cache(env: dict[str, str], prefix: Path) -> None:
    """Let the measured pythons keep compiled bytecode (in ``prefix``, not the source tree).

    Without it (PYTHONDONTWRITEBYTECODE=1 in the environment) every run compiles
    superbuild from source, which an installed superbuild never does.
    """
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(prefix)


def timed(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> float:
    """Wall seconds of ``argv``; SystemExit (with its stderr's end) if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()[-2000:]
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {detail}")
    return elapsed


def time_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    runs: int,
    warmup: int,
    *,
    cwd: Path | None = None,
    before: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """(median, minimum) wall seconds of ``argv``; ``before`` runs untimed before each run."""
    times = []
    for i in range(warmup + runs):
        if before is not None:
            before()
        elapsed = timed(argv, env, cwd)
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times), min(times)
