"""Build options, resolved in one place: the flag, then the environment, then
``superbuild.yaml``, then the default.

- jobs: ``-j N``, else ``jobs:``;
- executor: ``--executor``, else ``$SUPERBUILD_EXECUTOR``, else ``executor:``, else local;
- scheduler address (Dask only): ``--scheduler-address``, else
  ``$SUPERBUILD_SCHEDULER_ADDRESS``, else ``scheduler_address:``, else an embedded cluster;
  ``--insecure`` allows a non-loopback address without TLS and a client certificate;
  ``$SUPERBUILD_DASK_NO_WORKER_TIMEOUT`` (seconds) how long a job may wait with no worker;
- builder: ``--builder``, else each manifest's (or settings ``defaults:``), else mock if
  installed, else rpmbuild (decided per package when the build is prepared);
- output: ``--output``, else ``output:``, else ``.superbuild/output``;
- fail-fast: ``--fail-fast``, else keep going.

Jobs 0 (``-j 0`` or ``jobs: 0``) means the CPU count, which is also the default.  A
scheduler address is an option of the Dask executor only.  Nothing here knows argparse:
the verb turns its arguments into :class:`BuildFlags`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superbuild.errors import UsageError
from superbuild.package import Settings

#: Environment variables that stand in for a flag.
EXECUTOR_ENV = "SUPERBUILD_EXECUTOR"
SCHEDULER_ADDRESS_ENV = "SUPERBUILD_SCHEDULER_ADDRESS"
NO_WORKER_TIMEOUT_ENV = "SUPERBUILD_DASK_NO_WORKER_TIMEOUT"


@dataclass(frozen=True)
class BuildFlags:
    """What the command line says; None: not given."""

    jobs: int | None = None
    builder: str | None = None
    output: str | None = None
    fail_fast: bool = False
    executor: str | None = None
    scheduler_address: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class BuildConfig:
    """The resolved options of a build."""

    jobs: int
    builder: str | None  # None: the manifest or settings, else mock if installed
    output: Path | None  # None: settings ``output:`` (relative to the superproject)
    fail_fast: bool
    executor: str
    executor_options: Mapping[str, Any] = field(default_factory=dict)


def cpu_count() -> int:
    return os.cpu_count() or 1


def resolve_jobs(flag: int | None, configured: int | None) -> int:
    """Packages built at a time: the flag, else settings, else (and for 0) the CPU count."""
    jobs = flag if flag is not None else configured
    if jobs is not None and jobs < 0:
        raise UsageError(f"-j must be at least 0 (0: the CPU count), not {jobs}")
    return jobs or cpu_count()


def resolve(
    flags: BuildFlags, settings: Settings, environ: Mapping[str, str] | None = None
) -> BuildConfig:
    """The build options of ``flags`` over ``environ`` (default: os.environ) over ``settings``."""
    env = os.environ if environ is None else environ
    executor = flags.executor or env.get(EXECUTOR_ENV) or settings.executor or "local"
    if flags.scheduler_address and executor != "dask":
        raise UsageError("--scheduler-address needs --executor dask")
    options: dict[str, Any] = {}
    if executor == "dask":
        address = flags.scheduler_address or env.get(SCHEDULER_ADDRESS_ENV)
        if not address and settings.scheduler_address:
            # The analysed commit may not send its own build elsewhere by itself.
            if not (flags.executor or env.get(EXECUTOR_ENV)):
                raise UsageError(
                    f"superbuild.yaml asks to send this build to {settings.scheduler_address} "
                    "(executor: dask, scheduler_address:): a commit cannot choose that by "
                    "itself; pass --executor dask to allow it (or --executor local)"
                )
            address = settings.scheduler_address
        if address:
            options["address"] = address
            if flags.insecure:
                options["insecure"] = True
        timeout = env.get(NO_WORKER_TIMEOUT_ENV)
        if timeout:
            try:
                options["no_worker_timeout"] = float(timeout)
            except ValueError:
                raise UsageError(
                    f"{NO_WORKER_TIMEOUT_ENV}={timeout!r} is not a number of seconds"
                ) from None
            if not options["no_worker_timeout"] > 0:
                raise UsageError(f"{NO_WORKER_TIMEOUT_ENV} must be more than 0 seconds")
    elif flags.insecure:
        raise UsageError("--insecure needs --executor dask with a scheduler address")
    return BuildConfig(
        jobs=resolve_jobs(flags.jobs, settings.jobs),
        builder=flags.builder,
        output=Path(flags.output).resolve() if flags.output else None,
        fail_fast=flags.fail_fast,
        executor=executor,
        executor_options=options,
    )
